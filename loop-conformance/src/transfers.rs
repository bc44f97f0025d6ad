//! Whole-file and datagram transfers: `sock_sendfile` (zero-copy and its copying fallback),
//! a cancelled `sock_recvfrom` that loses no datagram, and split halves of a Unix stream.

use std::io::Write;
use std::net::UdpSocket;
use std::time::Duration;

use loop_api::{TaskError, yield_now};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern, recv_exact, tcp_pair};

fn temp_file(data: &[u8]) -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "loop-conformance-sendfile-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::File::create(&path).expect("create temp file");
    f.write_all(data).expect("write temp file");
    let f = std::fs::File::open(&path).expect("open temp file");
    let _ = std::fs::remove_file(&path);
    f
}

/// `sock_sendfile` sends a file range byte-exact (1 MiB from offset 1000, then the rest to
/// end of file), and so does its copying fallback.
pub fn sock_sendfile_sends_file_ranges(factory: Factory) {
    let lp = new_loop(factory);
    let data = pattern(1 << 20, 11);
    let file = temp_file(&data);
    let (c, s) = tcp_pair();
    let lp2 = lp.clone();
    let expected = data.clone();
    let got = block_on(&lp, async move {
        let total = (1 << 20) - 1000;
        let reader = lp2
            .create_task({
                let lp = lp2.clone();
                async move { recv_exact(&lp, &s, total).await }
            })
            .expect("create_task");
        let sent = lp2
            .sock_sendfile(&c, &file, 1000, Some(total as u64 - 10))
            .await
            .expect("sendfile");
        assert_eq!(sent, total as u64 - 10);
        let rest = lp2
            .sock_sendfile(&c, &file, (1 << 20) - 10, None)
            .await
            .expect("sendfile to eof");
        assert_eq!(rest, 10, "sendfile to end of file sends what is left");
        let fast = reader.await.expect("reader");
        // The copying fallback, over the same connection.
        let (c2, s2) = tcp_pair();
        let reader = lp2
            .create_task({
                let lp = lp2.clone();
                async move { recv_exact(&lp, &s2, 5000).await }
            })
            .expect("create_task");
        let sent = lp2
            .sock_sendfile_copying(&c2, &file, 7, Some(5000))
            .await
            .expect("copying");
        assert_eq!(sent, 5000);
        (fast, reader.await.expect("reader"))
    });
    assert!(got.0 == expected[1000..], "sendfile sent wrong bytes");
    assert!(
        got.1 == expected[7..5007],
        "the copying fallback sent wrong bytes"
    );
    close(&lp);
}

/// Cancelling a pending `sock_recvfrom`, with a datagram arriving around the cancellation,
/// loses no datagram: the next receive gets it, with its sender.
pub fn cancelled_recvfrom_loses_no_datagram(factory: Factory) {
    let lp = new_loop(factory);
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    rx.set_nonblocking(true).expect("nonblocking");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (rx_addr, tx_addr) = (
        rx.local_addr().expect("addr"),
        tx.local_addr().expect("addr"),
    );
    let rx = std::rc::Rc::new(rx);
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let mut got = Vec::new();
        for round in 0..8u8 {
            let r = rx.clone();
            let lp3 = lp2.clone();
            let pending = lp2
                .create_task(async move { lp3.sock_recvfrom(&*r, Vec::with_capacity(64)).await })
                .expect("create_task");
            yield_now().await;
            yield_now().await;
            tx.send_to(&[round; 3], rx_addr).expect("send_to");
            if round % 2 == 0 {
                // Give the datagram time to be received by the pending operation.
                loop_api::sleep(Duration::from_millis(2)).await;
            }
            pending.cancel();
            match pending.await {
                Ok((Ok((n, from)), buf)) => got.push((buf[..n].to_vec(), from.as_socket())),
                Err(TaskError::Cancelled) => {
                    let (r, buf) = lp2.sock_recvfrom(&*rx, Vec::with_capacity(64)).await;
                    let (n, from) = r.expect("recvfrom after cancel");
                    got.push((buf[..n].to_vec(), from.as_socket()));
                }
                other => panic!("round {round}: {:?}", other.map(|(r, _)| r.map(|(n, _)| n))),
            }
        }
        got
    });
    for (round, (bytes, from)) in got.iter().enumerate() {
        assert_eq!(
            bytes,
            &vec![round as u8; 3],
            "datagram {round} lost or reordered"
        );
        assert_eq!(*from, Some(tx_addr));
    }
    assert_eq!(got.len(), 8);
    close(&lp);
}

/// A Unix stream splits into halves like a TCP one; dropping the write half is a half-close.
pub fn unix_stream_split_halves(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let lp = loop_api::get_running_loop().expect("loop");
        let (a, b) = loop_net::UnixStream::pair_on(&lp).expect("pair");
        let (ar, aw) = a.into_split();
        aw.send_all(b"to b".to_vec()).await.0.expect("write");
        drop(aw);
        let (n, buf) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!((n.expect("read"), &buf[..]), (4, &b"to b"[..]));
        let (n, _) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!(
            n.expect("read"),
            0,
            "dropping the write half must half-close"
        );
        b.send_all(b"to a".to_vec()).await.0.expect("write back");
        let (n, buf) = ar.recv(Vec::with_capacity(16)).await;
        assert_eq!((n.expect("read"), &buf[..]), (4, &b"to a"[..]));
    });
    close(&lp);
}
