//! `sock_accept`, `sock_connect`, `sock_recv`, `sock_sendall` (CONFORMANCE 19-22, 30).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use loop_api::{EventLoop, TaskError, yield_now};

use crate::Factory;
use crate::util::{
    block_on, close, closed_port, listener, new_loop, pattern, recv_exact, recv_to_end, send_all,
    tcp_pair, thread_sleep,
};

/// Sends `data` on `s`, then shuts down its write side.
async fn send_and_shutdown(lp: EventLoop, s: Rc<TcpStream>, data: Vec<u8>) {
    send_all(&lp, &s, data).await;
    s.shutdown(Shutdown::Write).expect("shutdown");
}

/// Both directions at once: sends `out` while receiving until the peer closes.
async fn exchange(lp: EventLoop, s: TcpStream, out: Vec<u8>) -> Vec<u8> {
    let s = Rc::new(s);
    let sender = lp
        .create_task(send_and_shutdown(lp.clone(), s.clone(), out))
        .expect("create_task");
    let got = recv_to_end(&lp, &s).await;
    sender.await.expect("sender task");
    got
}

/// 1 MiB `sock_sendall` beside `sock_recv` (each way at once, two tasks per side on the same
/// loop, over a loopback `TcpListener`) arrives byte-exact.
pub fn sock_sendall_1mib_arrives_byte_exact(factory: Factory) {
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let up = pattern(1 << 20, 1);
    let down = pattern(1 << 20, 2);
    let (up2, down2) = (up.clone(), down.clone());
    let lp2 = lp.clone();
    let (at_server, at_client) = block_on(&lp, async move {
        let lps = lp2.clone();
        let server = lp2
            .create_task(async move {
                let (s, _) = lps.sock_accept(&l).await.expect("sock_accept");
                exchange(lps, s, down2).await
            })
            .expect("create_task");
        let lpc = lp2.clone();
        let client = lp2
            .create_task(async move {
                let s = lpc.sock_connect(addr).await.expect("sock_connect");
                exchange(lpc, s, up2).await
            })
            .expect("create_task");
        (
            server.await.expect("server task"),
            client.await.expect("client task"),
        )
    });
    assert!(
        at_server == up,
        "client-to-server data differs (got {} of {} bytes)",
        at_server.len(),
        up.len()
    );
    assert!(
        at_client == down,
        "server-to-client data differs (got {} of {} bytes)",
        at_client.len(),
        down.len()
    );
    close(&lp);
}

/// `sock_recv` reads at most `buf.capacity()` bytes and sets `buf.len()` to the count.
pub fn sock_recv_fills_up_to_capacity(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let data = b"0123456789".to_vec();
    (&s).write_all(&data).expect("write");
    let lp2 = lp.clone();
    let chunks = block_on(&lp, async move {
        let mut chunks = Vec::new();
        let mut total = 0;
        while total < 10 {
            let (res, buf) = lp2.sock_recv(&c, Vec::with_capacity(4)).await;
            let n = res.expect("sock_recv");
            assert!(
                n >= 1 && n <= buf.capacity().min(4),
                "sock_recv gave {n} bytes into a 4-byte buffer"
            );
            assert_eq!(buf.len(), n, "sock_recv must set buf.len() to the count");
            total += n;
            chunks.push(buf);
        }
        chunks
    });
    assert_eq!(chunks.concat(), data);
    drop(s);
    close(&lp);
}

/// `sock_recv` gives 0 once the peer closed (also when it was already waiting), and again after.
pub fn sock_recv_gives_zero_at_peer_close(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    (&s).write_all(b"ab").expect("write");
    drop(s);
    let lp2 = lp.clone();
    let (data, again) = block_on(&lp, async move {
        let data = recv_to_end(&lp2, &c).await;
        let (again, _) = lp2.sock_recv(&c, Vec::with_capacity(8)).await;
        (data, again.expect("sock_recv after end of stream"))
    });
    assert_eq!(data, b"ab");
    assert_eq!(again, 0);
    // The peer closes while the receive is pending.
    let (c, s) = tcp_pair();
    let closer = std::thread::spawn(move || {
        thread_sleep(20);
        drop(s);
    });
    let lp2 = lp.clone();
    let n = block_on(&lp, async move {
        lp2.sock_recv(&c, Vec::with_capacity(8)).await.0
    });
    closer.join().expect("closer thread");
    assert_eq!(
        n.expect("sock_recv"),
        0,
        "a pending sock_recv must give 0 when the peer closes"
    );
    close(&lp);
}

/// Connecting to a port nobody listens on is `ConnectionRefused`.
pub fn sock_connect_refused(factory: Factory) {
    let lp = new_loop(factory);
    let addr = closed_port();
    let lp2 = lp.clone();
    let res = block_on(&lp, async move { lp2.sock_connect(addr).await });
    match res {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "got {e:?}"),
        Ok(s) => panic!("connected to a closed port: {s:?}"),
    }
    close(&lp);
}

/// `sock_accept` gives the peer's address, and the accepted socket works both ways.
pub fn sock_accept_returns_peer_address(factory: Factory) {
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let lp2 = lp.clone();
    block_on(&lp, async move {
        let lpc = lp2.clone();
        let client = lp2
            .create_task(async move { lpc.sock_connect(addr).await.expect("sock_connect") })
            .expect("create_task");
        let (s, peer) = lp2.sock_accept(&l).await.expect("sock_accept");
        let c = client.await.expect("client task");
        assert_eq!(
            peer,
            c.local_addr().expect("local_addr"),
            "sock_accept gave the wrong peer address"
        );
        assert_eq!(c.peer_addr().expect("peer_addr"), addr);
        send_all(&lp2, &c, b"hi".to_vec()).await;
        assert_eq!(recv_exact(&lp2, &s, 2).await, b"hi");
        send_all(&lp2, &s, b"yo".to_vec()).await;
        assert_eq!(recv_exact(&lp2, &c, 2).await, b"yo");
    });
    close(&lp);
}

/// Cancelling a pending `sock_recv` loses no data: the next receive gets the next byte
/// (data written after the cancel, and data written just before it).
pub fn cancelled_sock_recv_loses_no_data(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let (c, s) = (Rc::new(c), Rc::new(s));
    let lp2 = lp.clone();
    block_on(&lp, async move {
        for round in 0..6u8 {
            let pending = lp2
                .create_task(lp2.sock_recv(&c, Vec::with_capacity(1)))
                .expect("create_task");
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(
                !pending.done(),
                "round {round}: sock_recv finished with no data sent"
            );
            let msg = [b'a' + round, b'z'];
            if round % 2 == 1 {
                // Data arrives before the cancel takes effect: it must not be swallowed.
                (&*s).write_all(&msg).expect("write");
            }
            assert!(pending.cancel());
            match pending.await {
                Err(TaskError::Cancelled) => {}
                other => panic!(
                    "round {round}: a cancelled sock_recv gave {:?}",
                    other.map(|(r, b)| (r.ok(), b))
                ),
            }
            if round % 2 == 0 {
                (&*s).write_all(&msg).expect("write");
            }
            let got = recv_exact(&lp2, &c, 2).await;
            assert_eq!(
                got, msg,
                "round {round}: data was lost or reordered by the cancelled sock_recv"
            );
        }
    });
    close(&lp);
}

/// Two receives in flight on one socket, their futures dropped in the reverse of their order:
/// what they received comes back in the order the kernel delivered it, not in drop order.
pub fn dropped_receives_leave_bytes_in_delivery_order(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let lp2 = lp.clone();
    block_on(&lp, async move {
        for round in 0..3u8 {
            let msg: Vec<u8> = (0..8).map(|i| b'A' + round * 8 + i).collect();
            let mut first = Box::pin(lp2.sock_recv(&c, Vec::with_capacity(4)));
            let mut second = Box::pin(lp2.sock_recv(&c, Vec::with_capacity(4)));
            std::future::poll_fn(|cx| {
                assert!(first.as_mut().poll(cx).is_pending(), "nothing was sent yet");
                assert!(
                    second.as_mut().poll(cx).is_pending(),
                    "nothing was sent yet"
                );
                std::task::Poll::Ready(())
            })
            .await;
            (&s).write_all(&msg).expect("write");
            // Let the loop see the data (and complete both receives) without polling them.
            loop_api::sleep(std::time::Duration::from_millis(30)).await;
            drop(second);
            drop(first);
            let got = recv_exact(&lp2, &c, 8).await;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&msg),
                "round {round}: bytes of dropped receives came back out of stream order"
            );
        }
    });
    close(&lp);
}

/// A receive whose bytes arrived but whose future was dropped before it saw them, while a
/// later receive on the same socket waits: the waiting one gets those bytes at once (the
/// stream stays in order, nothing waits for more data), on a borrowed and on a registered
/// socket.
pub fn dropped_receive_hands_its_bytes_to_the_waiting_one(factory: Factory) {
    let lp = new_loop(factory);
    for registered in [false, true] {
        let (c, s) = tcp_pair();
        let lp2 = lp.clone();
        if registered {
            let c = Rc::new(lp.register_socket(c).expect("register_socket"));
            block_on(&lp, hand_over(lp2, c, s));
        } else {
            block_on(&lp, hand_over(lp2, Rc::new(Borrowed(c)), s));
        }
    }
    close(&lp);
}

/// A socket the loop only borrows (a [`TcpStream`] behind `Deref`, as a registered one is).
struct Borrowed(TcpStream);

impl std::ops::Deref for Borrowed {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

async fn hand_over<S>(lp: EventLoop, c: Rc<S>, s: TcpStream)
where
    S: std::ops::Deref<Target = TcpStream> + 'static,
{
    let mut first = Box::pin(lp.sock_recv(&c, Vec::with_capacity(64)));
    std::future::poll_fn(|cx| {
        assert!(first.as_mut().poll(cx).is_pending(), "nothing was sent yet");
        std::task::Poll::Ready(())
    })
    .await;
    let second = {
        let (lp2, c) = (lp.clone(), c.clone());
        lp.create_task(async move { lp2.sock_recv(&c, Vec::with_capacity(64)).await })
            .expect("create_task")
    };
    for _ in 0..3 {
        yield_now().await;
    }
    (&s).write_all(b"one").expect("write");
    // The bytes reach the first receive (or its socket) while nobody polls it.
    loop_api::sleep(std::time::Duration::from_millis(30)).await;
    drop(first);
    let waited = loop_api::wait_for(std::time::Duration::from_secs(10), second).await;
    let (res, got) = waited
        .expect("the waiting receive gets the bytes the dropped one left")
        .expect("task");
    res.expect("sock_recv");
    assert_eq!(got, b"one");
    (&s).write_all(b"two").expect("write");
    let (res, got) = lp.sock_recv(&c, Vec::with_capacity(64)).await;
    res.expect("sock_recv");
    assert_eq!(got, b"two");
}

/// Two tasks receiving on one socket, both cancelled (in creation order) after the data came:
/// the next receive gets the bytes in stream order, whichever task the kernel gave them to.
pub fn cancelled_receiving_tasks_leave_bytes_in_delivery_order(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let c = Rc::new(c);
    let lp2 = lp.clone();
    block_on(&lp, async move {
        for round in 0..3u8 {
            let msg: Vec<u8> = (0..8).map(|i| b'a' + round * 8 + i).collect();
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (lp3, c) = (lp2.clone(), c.clone());
                    lp2.create_task(async move { lp3.sock_recv(&c, Vec::with_capacity(4)).await })
                        .expect("create_task")
                })
                .collect();
            for _ in 0..3 {
                yield_now().await;
            }
            (&s).write_all(&msg).expect("write");
            // The data reaches the socket (and, on a completion backend, the receives) while
            // the loop is not looking; then both tasks are cancelled before they run again.
            thread_sleep(30);
            let cancelled: Vec<bool> = tasks.iter().map(|t| t.cancel()).collect();
            let mut received = Vec::new();
            for (task, cancelled) in tasks.into_iter().zip(cancelled) {
                match task.await {
                    Err(TaskError::Cancelled) if cancelled => {}
                    Ok((res, buf)) if !cancelled => {
                        received.extend_from_slice(&buf[..res.expect("sock_recv")]);
                    }
                    other => panic!(
                        "round {round}: cancel() said {cancelled}, the task gave {:?}",
                        other.map(|(r, b)| (r.ok(), b))
                    ),
                }
            }
            let rest = recv_exact(&lp2, &c, 8 - received.len()).await;
            received.extend_from_slice(&rest);
            assert_eq!(
                String::from_utf8_lossy(&received),
                String::from_utf8_lossy(&msg),
                "round {round}: bytes of cancelled receiving tasks came back out of stream order"
            );
        }
    });
    close(&lp);
}

/// Cancelling a pending `sock_accept` loses no connection: the next accept gets it.
pub fn cancelled_sock_accept_loses_no_connection(factory: Factory) {
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let l = Rc::new(l);
    let lp2 = lp.clone();
    block_on(&lp, async move {
        for round in 0..4 {
            let pending = lp2.create_task(lp2.sock_accept(&l)).expect("create_task");
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(
                !pending.done(),
                "round {round}: sock_accept finished with nobody connecting"
            );
            let mut client = None;
            if round % 2 == 1 {
                client = Some(TcpStream::connect(addr).expect("connect"));
            }
            assert!(pending.cancel());
            assert!(
                matches!(pending.await, Err(TaskError::Cancelled)),
                "round {round}: not cancelled"
            );
            let client = client.unwrap_or_else(|| TcpStream::connect(addr).expect("connect"));
            (&client).write_all(b"ping").expect("write");
            let (s, peer) = lp2.sock_accept(&l).await.expect("sock_accept");
            assert_eq!(
                peer,
                client.local_addr().expect("local_addr"),
                "round {round}: accepted another connection"
            );
            assert_eq!(recv_exact(&lp2, &s, 4).await, b"ping");
        }
    });
    close(&lp);
}

/// A cancelled `sock_connect` can be retried.
pub fn cancelled_sock_connect_can_be_retried(factory: Factory) {
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let lp2 = lp.clone();
    block_on(&lp, async move {
        let pending = lp2
            .create_task(lp2.sock_connect(addr))
            .expect("create_task");
        yield_now().await;
        pending.cancel();
        let _ = pending.await; // Cancelled, or connected before the cancel arrived.
        let c = lp2
            .sock_connect(addr)
            .await
            .expect("sock_connect after a cancelled one");
        let me = c.local_addr().expect("local_addr");
        // The cancelled attempt may have left a connection in the backlog first.
        let mut found = None;
        for _ in 0..2 {
            let (s, peer) = lp2.sock_accept(&l).await.expect("sock_accept");
            if peer == me {
                found = Some(s);
                break;
            }
        }
        let s = found.expect("the retried connection never arrived");
        send_all(&lp2, &c, b"again".to_vec()).await;
        assert_eq!(recv_exact(&lp2, &s, 5).await, b"again");
    });
    close(&lp);
}

/// A `sock_sendall` cancelled midway, then another send, gives the peer an uncorrupted
/// stream: a prefix of the first message followed by all of the second, nothing after.
pub fn cancelled_sock_sendall_keeps_stream_consistent(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let first = pattern(16 << 20, 7); // never contains 0xFF
    let second = vec![0xFFu8; 64 * 1024];
    let (first2, second2) = (first.clone(), second.clone());
    let lp2 = lp.clone();
    let reader = block_on(&lp, async move {
        let sending = lp2
            .create_task(lp2.sock_sendall(&c, first2))
            .expect("create_task");
        for _ in 0..10 {
            yield_now().await;
        }
        sending.cancel();
        let _ = sending.await;
        let reader = std::thread::spawn(move || {
            s.set_nonblocking(false).expect("set_nonblocking");
            let mut all = Vec::new();
            (&s).read_to_end(&mut all).expect("read_to_end");
            all
        });
        send_all(&lp2, &c, second2).await;
        c.shutdown(Shutdown::Write).expect("shutdown");
        reader
    });
    let got = reader.join().expect("reader thread");
    assert!(
        got.len() >= second.len(),
        "the peer got {} bytes, less than the second message",
        got.len()
    );
    let (head, tail) = got.split_at(got.len() - second.len());
    assert!(
        tail == &second[..],
        "the second message did not arrive intact at the end of the stream"
    );
    assert!(
        head.len() <= first.len(),
        "the peer got more bytes than were sent"
    );
    if let Some(i) = head.iter().zip(&first).position(|(a, b)| a != b) {
        panic!(
            "the stream is corrupted at byte {i} (of a {}-byte prefix of the first message)",
            head.len()
        );
    }
    close(&lp);
}

/// Echoes everything received on `s` until the peer closes.
async fn echo(lp: EventLoop, s: TcpStream) {
    loop {
        let (res, buf) = lp.sock_recv(&s, Vec::with_capacity(16 * 1024)).await;
        match res.expect("server sock_recv") {
            0 => return,
            _ => send_all(&lp, &s, buf).await,
        }
    }
}

/// 200 concurrent connections each echo their own data back.
pub fn concurrent_connections_echo(factory: Factory) {
    const N: usize = 200;
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let lp2 = lp.clone();
    let bad = block_on(&lp, async move {
        let lps = lp2.clone();
        let server = lp2
            .create_task(async move {
                let mut echoes = Vec::new();
                for _ in 0..N {
                    let (s, _) = lps.sock_accept(&l).await.expect("sock_accept");
                    echoes.push(lps.create_task(echo(lps.clone(), s)).expect("create_task"));
                }
                for e in echoes {
                    e.await.expect("echo task");
                }
            })
            .expect("create_task");
        let mut clients = Vec::new();
        for i in 0..N {
            let lpc = lp2.clone();
            clients.push(
                lp2.create_task(async move {
                    let data = pattern(1000 + i * 13, i as u64 + 100);
                    let c = lpc.sock_connect(addr).await.expect("sock_connect");
                    let got = exchange(lpc, c, data.clone()).await;
                    got == data
                })
                .expect("create_task"),
            );
        }
        let mut bad = Vec::new();
        for (i, c) in clients.into_iter().enumerate() {
            if !c.await.expect("client task") {
                bad.push(i);
            }
        }
        server.await.expect("server task");
        bad
    });
    assert!(
        bad.is_empty(),
        "connections that did not get their own data back: {bad:?}"
    );
    close(&lp);
}

/// Sets SO_LINGER to zero, so closing `s` sends a reset.
fn set_linger_zero(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt(SO_LINGER): {}",
        std::io::Error::last_os_error()
    );
}

/// A reset by the peer is an error on that connection only (no crash, no SIGPIPE); another
/// connection of the same loop keeps working.
pub fn peer_reset_is_error_on_that_connection_only(factory: Factory) {
    let lp = new_loop(factory);
    let (c1, s1) = tcp_pair();
    let (c2, s2) = tcp_pair();
    set_linger_zero(&s1);
    drop(s1);
    let lp2 = lp.clone();
    let (recv_err, send_err) = block_on(&lp, async move {
        let (r, _) = lp2.sock_recv(&c1, Vec::with_capacity(16)).await;
        let mut send = Ok(());
        for _ in 0..4 {
            // The first send after a reset may still be accepted by the kernel.
            send = lp2.sock_sendall(&c1, vec![1u8; 64 * 1024]).await.0;
            if send.is_err() {
                break;
            }
        }
        (&s2).write_all(b"still").expect("write");
        assert_eq!(recv_exact(&lp2, &c2, 5).await, b"still");
        send_all(&lp2, &c2, b"fine".to_vec()).await;
        let mut back = [0u8; 4];
        s2.set_nonblocking(false).expect("set_nonblocking");
        (&s2).read_exact(&mut back).expect("read");
        assert_eq!(&back, b"fine");
        (r.map(|_| ()), send)
    });
    let e = recv_err.expect_err("sock_recv after a reset must fail");
    assert_eq!(
        e.kind(),
        ErrorKind::ConnectionReset,
        "sock_recv after a reset gave {e:?}"
    );
    assert!(
        send_err.is_err(),
        "sock_sendall to a reset peer kept succeeding"
    );
    close(&lp);
}
