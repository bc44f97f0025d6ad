//! The ecosystem's I/O traits (`futures_io::AsyncRead`/`AsyncBufRead`/`AsyncWrite`) on
//! loop-net's streams and the loop's pipes: partial reads, end of stream, a write after
//! close, `read_line`, 1 MiB both ways at once, and `read`/`write` futures dropped mid-flight
//! without losing or duplicating a byte.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use loop_api::{EventLoop, get_running_loop, sleep};
use loop_net::{TcpListener, TcpStream, UnixStream};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern};

async fn tcp_pair_on_loop() -> (TcpStream, TcpStream) {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let listener = TcpListener::bind(addr).expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    (client, server)
}

fn running() -> EventLoop {
    get_running_loop().expect("a running loop")
}

/// `AsyncRead::read` gives what arrived even when the caller asked for more, a caller buffer
/// smaller than what arrived gets it in parts, and after the peer's close every read is 0.
pub fn trait_reads_are_partial_then_eof(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = UnixStream::pair_on(&running()).expect("pair");
        a.write_all(b"hello").await.expect("write_all");
        a.flush().await.expect("flush");
        let mut big = [0u8; 64];
        assert_eq!(b.read(&mut big).await.expect("read"), 5, "a partial read");
        assert_eq!(&big[..5], b"hello");
        a.write_all(b"world").await.expect("write_all");
        a.flush().await.expect("flush");
        let mut small = [0u8; 3];
        assert_eq!(b.read(&mut small).await.expect("read"), 3);
        assert_eq!(&small, b"wor");
        assert_eq!(b.read(&mut small).await.expect("read"), 2);
        assert_eq!(&small[..2], b"ld");
        a.close().await.expect("close");
        assert_eq!(b.read(&mut big).await.expect("read at eof"), 0);
        assert_eq!(b.read(&mut big).await.expect("read at eof again"), 0);
    });
    close(&lp);
}

/// `poll_close` shuts the write side down: the peer reads end of stream, a later write is a
/// `BrokenPipe` error naming the close, and the other direction still works.
pub fn trait_write_after_close_is_an_error(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = tcp_pair_on_loop().await;
        a.write_all(b"last words").await.expect("write_all");
        a.close().await.expect("close");
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.expect("read_to_end");
        assert_eq!(got, b"last words");
        let err = a
            .write(b"x")
            .await
            .expect_err("a write after close must fail");
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
        b.write_all(b"reply").await.expect("the other direction");
        b.flush().await.expect("flush");
        let mut reply = [0u8; 5];
        a.read_exact(&mut reply).await.expect("read_exact");
        assert_eq!(&reply, b"reply");
    });
    close(&lp);
}

/// Bytes `write` accepted reach the peer even if the writer never polls the stream again
/// (no flush, no more writes): what a TLS handshake does, writing its flight, then only
/// reading. Two writes back to back (the second accepted while the first send is in flight),
/// then the writer waits on the peer's answer.
pub fn trait_accepted_writes_go_out_without_a_flush(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = tcp_pair_on_loop().await;
        let (first, second) = (pattern(40_000, 26), pattern(20_000, 27));
        assert_eq!(a.write(&first).await.expect("write"), first.len());
        assert_eq!(a.write(&second).await.expect("write"), second.len());
        let mut got = vec![0u8; first.len() + second.len()];
        let read = loop_api::wait_for(Duration::from_secs(20), b.read_exact(&mut got)).await;
        read.expect("the accepted bytes never came: nothing sent them")
            .expect("read_exact");
        assert!(got[..first.len()] == first[..] && got[first.len()..] == second[..]);
        b.write_all(b"ok").await.expect("answer");
        b.flush().await.expect("flush");
        let mut answer = [0u8; 2];
        a.read_exact(&mut answer).await.expect("read the answer");
        assert_eq!(&answer, b"ok");
    });
    close(&lp);
}

/// `AbstractEventLoop::try_sock_send` on a registered socket sends at once from the caller's
/// slice (`Some(Ok(n))`: the peer gets those `n` bytes) or declines (`None`: nothing sent, as
/// io_uring always does). While a send of the socket waits, it declines on every loop, even
/// once the peer has made room the loop has not seen yet: the waiting send's bytes keep their
/// place.
pub fn try_sock_send_sends_at_once_or_declines_in_order(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let lp = running();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let a =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let mut b = listener.accept().expect("accept").0;
        a.set_nonblocking(true).expect("nonblocking");
        let fd = a.as_raw_fd();
        lp.as_abstract()
            .register_socket(fd)
            .expect("register_socket");
        let mut expect = Vec::new();
        match lp.as_abstract().try_sock_send(fd, b"first") {
            Some(Ok(n)) => expect.extend_from_slice(&b"first"[..n]),
            Some(Err(e)) => panic!("try_sock_send on a healthy socket failed: {e}"),
            None => {}
        }
        // 16 MiB, more than the socket and its peer buffer while nobody reads: the sender
        // ends up waiting for room.
        let big = pattern(16 << 20, 29);
        expect.extend_from_slice(&big);
        let sender = lp
            .create_task(async move {
                let lp = running();
                let mut pos = 0;
                while pos < big.len() {
                    let end = (pos + (1 << 20)).min(big.len());
                    let (res, _) = lp.sock_send(&a, big[pos..end].to_vec()).await;
                    pos += res.expect("sock_send");
                }
                a
            })
            .expect("create_task");
        sleep(Duration::from_millis(100)).await;
        // The peer makes room, blocking this thread: the loop does not see it yet, and the
        // waiting send is still waiting.
        let mut got = vec![0u8; 1 << 20];
        let head = std::io::Read::read(&mut b, &mut got).expect("blocking read");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            lp.as_abstract().try_sock_send(fd, b"jump").is_none(),
            "try_sock_send sent while a send of the socket waited"
        );
        got.truncate(head);
        b.set_nonblocking(true).expect("nonblocking");
        let mut b = TcpStream::from_std_on(&lp, b);
        let mut rest = vec![0u8; expect.len() - head];
        let read = loop_api::wait_for(Duration::from_secs(30), b.read_exact(&mut rest)).await;
        read.expect("the bytes never all came").expect("read_exact");
        got.extend_from_slice(&rest);
        assert!(got == expect, "bytes arrived out of order or changed");
        let a = sender.await.expect("sender");
        lp.as_abstract().release_socket(fd);
        drop(a);
    });
    close(&lp);
}

/// A stream dropped right after `write` accepted bytes (no flush, no close) still sends them,
/// then closes: nothing accepted is lost (asyncio's `transport.close()` flushes the buffer
/// asynchronously). Writes of 1 MiB in all, more than the write buffer and the socket take
/// at once, so some are still in flight or buffered when the stream goes.
pub fn dropped_stream_still_sends_what_it_accepted(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = tcp_pair_on_loop().await;
        let data = pattern(1 << 20, 28);
        let mut accepted = 0;
        while accepted < data.len() {
            accepted += a.write(&data[accepted..]).await.expect("write");
        }
        drop(a);
        let mut got = Vec::new();
        let read = loop_api::wait_for(Duration::from_secs(20), b.read_to_end(&mut got)).await;
        read.expect("the peer never saw the end of the stream")
            .expect("read_to_end");
        assert_eq!(
            got.len(),
            data.len(),
            "bytes accepted by write were lost at drop"
        );
        assert!(got == data, "bytes arrived out of order");
    });
    close(&lp);
}

/// `AsyncBufReadExt::read_line` straight on a socket (asyncio's `StreamReader.readline`):
/// lines split across writes, several lines in one write, a last line without `\n`.
pub fn trait_read_line_on_a_socket(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (client, mut server) = tcp_pair_on_loop().await;
        let writer = running()
            .create_task(async move {
                let mut client = client;
                for piece in [&b"one\ntw"[..], b"o\nthree\nfo", b"ur"] {
                    client.write_all(piece).await.expect("write_all");
                    client.flush().await.expect("flush");
                    sleep(Duration::from_millis(2)).await;
                }
                client.close().await.expect("close");
            })
            .expect("create_task");
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if server.read_line(&mut line).await.expect("read_line") == 0 {
                break;
            }
            lines.push(line);
        }
        writer.await.expect("writer");
        assert_eq!(lines, ["one\n", "two\n", "three\n", "four"]);
    });
    close(&lp);
}

/// 1 MiB each way at once over split halves, with `write_all` and `read_exact`: byte-exact.
pub fn trait_one_mib_both_ways_at_once(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (a, b) = tcp_pair_on_loop().await;
        let (mut ar, mut aw) = a.into_split();
        let (mut br, mut bw) = b.into_split();
        let (to_b, to_a) = (pattern(1 << 20, 21), pattern(1 << 20, 22));
        let lp = running();
        let send_a = lp
            .create_task({
                let data = to_b.clone();
                async move {
                    aw.write_all(&data).await.expect("a write_all");
                    aw.flush().await.expect("a flush");
                    aw
                }
            })
            .expect("create_task");
        let send_b = lp
            .create_task({
                let data = to_a.clone();
                async move {
                    bw.write_all(&data).await.expect("b write_all");
                    bw.flush().await.expect("b flush");
                    bw
                }
            })
            .expect("create_task");
        let recv_b = lp
            .create_task(async move {
                let mut got = vec![0u8; 1 << 20];
                br.read_exact(&mut got).await.expect("b read_exact");
                got
            })
            .expect("create_task");
        let mut got_a = vec![0u8; 1 << 20];
        ar.read_exact(&mut got_a).await.expect("a read_exact");
        let got_b = recv_b.await.expect("reader");
        let _halves = (send_a.await.expect("a"), send_b.await.expect("b"));
        assert!(got_a == to_a, "a received other bytes than b sent");
        assert!(got_b == to_b, "b received other bytes than a sent");
    });
    close(&lp);
}

/// A `read` future dropped while its receive is in flight (raced against a short sleep
/// before anything was sent) loses nothing: the bytes that arrive afterwards, and those
/// that arrive while no read future exists, all reach the next reads, in order.
pub fn cancelled_trait_reads_lose_nothing(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = tcp_pair_on_loop().await;
        let data = pattern(200 * 1024, 23);
        let (mut got, mut buf) = (Vec::new(), vec![0u8; 7000]);
        for chunk in data.chunks(20 * 1024) {
            // Nothing is on the way: the read is in flight when the sleep wins.
            match select(b.read(&mut buf), sleep(Duration::from_millis(2))).await {
                Either::Left((n, _)) => panic!("a read with nothing sent gave {n:?}"),
                Either::Right(_) => {}
            }
            a.write_all(chunk).await.expect("write_all");
            a.flush().await.expect("flush");
            // The bytes arrive while no read future exists.
            sleep(Duration::from_millis(1)).await;
            let want = got.len() + chunk.len();
            while got.len() < want {
                let n = b.read(&mut buf).await.expect("read");
                assert_ne!(n, 0, "end of stream before every byte came");
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got.len(), data.len(), "bytes lost or duplicated");
        assert!(got == data, "bytes reordered or corrupted");
    });
    close(&lp);
}

/// A `write` future dropped before it was ready (raced against a short sleep while the
/// socket is full) wrote nothing, and one that was ready wrote exactly its count: 2 MiB
/// written that way, read while the writes keep being cancelled, arrive byte-exact.
pub fn cancelled_trait_writes_lose_nothing(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let (mut a, mut b) = UnixStream::pair_on(&running()).expect("pair");
        let data = pattern(2 << 20, 25);
        let (mut pos, mut cancelled) = (0, 0u32);
        let (mut got, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
        while pos < data.len() {
            match select(a.write(&data[pos..]), sleep(Duration::from_millis(1))).await {
                Either::Left((n, _)) => pos += n.expect("write"),
                Either::Right(_) => {
                    // The socket is full: the reader takes some, the next write goes on.
                    cancelled += 1;
                    let n = b.read(&mut buf).await.expect("read");
                    got.extend_from_slice(&buf[..n]);
                }
            }
        }
        // The close flushes what is accepted, which needs the reader: a task of its own.
        let closer = running()
            .create_task(async move { a.close().await.expect("close") })
            .expect("create_task");
        b.read_to_end(&mut got).await.expect("read_to_end");
        closer.await.expect("closer");
        assert!(
            cancelled > 0,
            "no write was ever cancelled: the test proved nothing"
        );
        assert_eq!(got.len(), data.len(), "bytes lost or duplicated");
        assert!(got == data, "bytes reordered or corrupted");
    });
    close(&lp);
}

fn os_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is an array of two ints, as pipe(2) needs.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
    use std::os::fd::FromRawFd;
    // SAFETY: pipe(2) just gave us these two fds; nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The loop's pipes implement the traits too: `read_line`, then 256 KiB byte-exact, and
/// `poll_close` of the writer is the reader's end of file.
pub fn pipe_traits_read_line_and_bulk(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let lp = running();
        let (r, w) = os_pipe();
        let mut reader = futures_util::io::BufReader::new(lp.connect_read_pipe(r).expect("rd"));
        let mut writer = lp.connect_write_pipe(w).expect("wr");
        let bulk = pattern(256 * 1024, 24);
        let sent = bulk.clone();
        let task = lp
            .create_task(async move {
                writer.write_all(b"first\nsecond\n").await.expect("write");
                writer.write_all(&sent).await.expect("write bulk");
                writer.close().await.expect("close");
                let err = writer.write(b"x").await.expect_err("write after close");
                assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
            })
            .expect("create_task");
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("line 1");
        assert_eq!(line, "first\n");
        line.clear();
        reader.read_line(&mut line).await.expect("line 2");
        assert_eq!(line, "second\n");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.expect("read_to_end");
        assert!(rest == bulk, "the pipe's bulk bytes differ");
        task.await.expect("writer");
    });
    close(&lp);
}
