//! Streams and datagrams through `loop-net` (TCP with split halves, Unix, UDP), `wait_for`,
//! name resolution, and the faults a connection can meet: identical on every backend.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use loop_api::{EventLoop, wait_for};
use loop_net::{BindOptions, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern, run_once, tcp_pair};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

async fn read_to_end(
    read: impl Fn(
        Vec<u8>,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = loop_api::BufResult<usize>>>>,
) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (n, buf) = read(Vec::with_capacity(64 * 1024)).await;
        match n.expect("read") {
            0 => return all,
            _ => all.extend_from_slice(&buf),
        }
    }
}

/// A server task reads with one half and writes with the other (two tasks sharing a
/// connection); 256 KiB come back byte-exact, then end of stream after the client's half-close.
pub fn tcp_split_halves_echo(factory: Factory) {
    let lp = new_loop(factory);
    let got = block_on(&lp, async {
        let lp = loop_api::get_running_loop().expect("running loop");
        let listener = TcpListener::bind(loopback()).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = lp
            .create_task(async move {
                let (conn, _) = listener.accept().await.expect("accept");
                let (rd, wr) = conn.into_split();
                let chunks = Rc::new(RefCell::new(VecDeque::<Vec<u8>>::new()));
                let lp = loop_api::get_running_loop().expect("running loop");
                let q = chunks.clone();
                let writer = lp
                    .create_task(async move {
                        // Echo chunks in order until the reader says the stream ended.
                        loop {
                            let next = q.borrow_mut().pop_front();
                            match next {
                                Some(chunk) if chunk.is_empty() => return,
                                Some(chunk) => wr.send_all(chunk).await.0.expect("write_all"),
                                None => loop_api::yield_now().await,
                            }
                        }
                    })
                    .expect("create_task");
                loop {
                    let (n, buf) = rd.recv(Vec::with_capacity(16 * 1024)).await;
                    let n = n.expect("read");
                    // An empty chunk tells the writer the stream ended.
                    chunks
                        .borrow_mut()
                        .push_back(if n == 0 { Vec::new() } else { buf });
                    if n == 0 {
                        break;
                    }
                }
                writer.await.expect("writer task");
            })
            .expect("create_task");
        let client = TcpStream::connect(addr).await.expect("connect");
        let data = pattern(256 * 1024, 7);
        let sent = data.clone();
        let (rd, wr) = client.into_split();
        let lp2 = lp.clone();
        let sender = lp2
            .create_task(async move {
                wr.send_all(sent).await.0.expect("write_all");
                drop(wr); // half-close: the server reads end of stream
            })
            .expect("create_task");
        let rd = Rc::new(rd);
        let echoed = read_to_end(move |b| {
            let rd = rd.clone();
            Box::pin(async move { rd.recv(b).await })
        })
        .await;
        sender.await.expect("sender");
        server.await.expect("server");
        (echoed, data)
    });
    assert_eq!(got.0.len(), got.1.len(), "echoed length");
    assert!(
        got.0 == got.1,
        "256 KiB through split halves came back corrupted"
    );
    close(&lp);
}

/// `shutdown(Write)` is a half-close: the peer reads end of stream and can still answer;
/// addresses and `set_nodelay` work.
pub fn tcp_half_close_and_addresses(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let listener = TcpListener::bind(loopback()).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        assert_eq!(client.peer_addr().expect("peer_addr"), addr);
        assert_eq!(client.local_addr().expect("local_addr"), peer);
        client.set_nodelay(true).expect("set_nodelay");
        client
            .send_all(b"question".to_vec())
            .await
            .0
            .expect("write");
        client.shutdown(Shutdown::Write).expect("shutdown");
        let mut got = Vec::new();
        loop {
            let (n, buf) = server.recv(Vec::with_capacity(64)).await;
            if n.expect("read") == 0 {
                break;
            }
            got.extend_from_slice(&buf);
        }
        assert_eq!(got, b"question");
        server
            .send_all(b"answer".to_vec())
            .await
            .0
            .expect("answer after half-close");
        let (n, buf) = client.recv(Vec::with_capacity(64)).await;
        assert_eq!(n.expect("read"), 6);
        assert_eq!(buf, b"answer");
    });
    close(&lp);
}

/// Two listeners with `reuse_port` share one port; without it the second bind is refused.
pub fn reuse_port_shares_a_port(factory: Factory) {
    let lp = new_loop(factory);
    let opts = BindOptions {
        reuse_port: true,
        ..BindOptions::default()
    };
    let a = TcpListener::bind_on(&lp, loopback(), opts).expect("first bind");
    let addr = a.local_addr().expect("local_addr");
    let b = TcpListener::bind_on(&lp, addr, opts).expect("second bind with SO_REUSEPORT");
    assert_eq!(b.local_addr().expect("local_addr"), addr);
    let plain = TcpListener::bind_on(&lp, addr, BindOptions::default());
    assert!(
        plain.is_err(),
        "a bind without SO_REUSEPORT must be refused"
    );
    drop((a, b));
    close(&lp);
}

/// A listener binds again to the port of a just-closed connection (SO_REUSEADDR by default).
pub fn listener_rebinds_after_close(factory: Factory) {
    let lp = new_loop(factory);
    let addr = block_on(&lp, async {
        let listener = TcpListener::bind(loopback()).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        // The server closes first, so its side of the connection sits in TIME_WAIT.
        drop(server);
        drop(client);
        drop(listener);
        addr
    });
    let again = TcpListener::bind_on(&lp, addr, BindOptions::default());
    assert!(again.is_ok(), "rebinding {addr} failed: {:?}", again.err());
    close(&lp);
}

/// How many times the restart behaviours stop a server and bind its port again.
const RESTARTS: usize = 20;

/// A server on `lp` at `addr` (port 0: any), as the examples run one: a task accepting
/// connections on a listener bound with the default options (`SO_REUSEADDR`), and a task
/// per connection with a receive in flight. With `with_client`, a client connects and is
/// accepted first. Returns once the next accept is in flight: the server's task, its
/// address, and the client (kept open).
fn start_server(
    lp: &EventLoop,
    addr: SocketAddr,
    with_client: bool,
    round: usize,
) -> (loop_api::Task<()>, SocketAddr, Option<std::net::TcpStream>) {
    let listener = TcpListener::bind_on(lp, addr, BindOptions::default())
        .unwrap_or_else(|e| panic!("round {round}: binding {addr} again at once: {e}"));
    let addr = listener.local_addr().expect("local_addr");
    let accepted = Rc::new(Cell::new(0usize));
    let (count, server) = (accepted.clone(), lp.clone());
    let task = lp
        .create_task(async move {
            loop {
                let (conn, _) = listener.accept().await.expect("accept");
                count.set(count.get() + 1);
                server
                    .create_task(async move { conn.recv(Vec::with_capacity(64)).await.0 })
                    .expect("create_task");
            }
        })
        .expect("create_task");
    let client = with_client.then(|| std::net::TcpStream::connect(addr).expect("connect"));
    while accepted.get() < usize::from(with_client) {
        run_once(lp);
    }
    // The next accept (and the connection's receive) are now in flight.
    run_once(lp);
    run_once(lp);
    (task, addr, client)
}

/// A server restarted at once gets its port back: once `close()` returned, the listener a
/// task was accepting on (an accept in flight) and the connections it had accepted (a
/// receive in flight; every other round) are really closed, so binding the same address
/// again with the same options succeeds, round after round. A completion backend must not
/// leave the kernel holding the listener for its cancelled accept after `close()`.
pub fn port_is_free_once_the_loop_is_closed(factory: Factory) {
    let mut addr = loopback();
    for round in 0..RESTARTS {
        let lp = new_loop(factory);
        let (_task, bound, client) = start_server(&lp, addr, round % 2 == 1, round);
        addr = bound;
        close(&lp);
        drop(client);
    }
    let again = std::net::TcpListener::bind(addr);
    assert!(
        again.is_ok(),
        "binding {addr} at the end: {:?}",
        again.err()
    );
}

/// A server task cancelled while its accept is in flight lets go of its listener in the
/// iteration that drops it: the port can be bound again right after, on a loop that keeps
/// running, round after round (on io_uring the cancelled accept must not keep the listener
/// until the loop's next wait).
pub fn port_is_free_once_the_server_task_is_cancelled(factory: Factory) {
    let lp = new_loop(factory);
    let mut addr = loopback();
    for round in 0..RESTARTS {
        let (task, bound, client) = start_server(&lp, addr, round % 2 == 1, round);
        addr = bound;
        task.cancel();
        run_once(&lp);
        drop(client);
    }
    close(&lp);
}

/// A Unix stream socket bound to a path accepts a connection and echoes.
pub fn unix_stream_echo(factory: Factory) {
    let lp = new_loop(factory);
    let dir = std::env::temp_dir().join(format!(
        "loop-conformance-{}-{}",
        std::process::id(),
        line!()
    ));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("sock-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    block_on(&lp, async move {
        let listener = UnixListener::bind(&p).expect("bind unix");
        let client = UnixStream::connect(&p).await.expect("connect unix");
        let (server, _) = listener.accept().await.expect("accept unix");
        client
            .send_all(b"over unix".to_vec())
            .await
            .0
            .expect("write");
        let (n, buf) = server.recv(Vec::with_capacity(64)).await;
        assert_eq!(n.expect("read"), 9);
        server.send_all(buf).await.0.expect("echo");
        let (n, buf) = client.recv(Vec::with_capacity(64)).await;
        assert_eq!(n.expect("read"), 9);
        assert_eq!(buf, b"over unix");
        let (a, b) =
            UnixStream::pair_on(&loop_api::get_running_loop().expect("loop")).expect("pair");
        a.send_all(b"pair".to_vec()).await.0.expect("write");
        assert_eq!(b.recv(Vec::with_capacity(8)).await.1, b"pair");
    });
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    close(&lp);
}

/// UDP: datagrams keep their boundaries and their sender's address, both unconnected
/// (send_to/recv_from) and connected (send/recv).
pub fn udp_datagrams(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let a = UdpSocket::bind(loopback()).expect("bind a");
        let b = UdpSocket::bind(loopback()).expect("bind b");
        let (a_addr, b_addr) = (a.local_addr().expect("addr"), b.local_addr().expect("addr"));
        for msg in [&b"one"[..], b"two two", b""] {
            let (n, _) = a.send_to(msg.to_vec(), b_addr).await;
            assert_eq!(n.expect("send_to"), msg.len());
        }
        for msg in [&b"one"[..], b"two two", b""] {
            let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
            let (n, from) = r.expect("recv_from");
            assert_eq!((n, &buf[..], from), (msg.len(), msg, a_addr));
        }
        a.connect(b_addr).expect("connect");
        b.connect(a_addr).expect("connect");
        assert_eq!(b.send(b"back".to_vec()).await.0.expect("send"), 4);
        let (n, buf) = a.recv(Vec::with_capacity(64)).await;
        assert_eq!((n.expect("recv"), &buf[..]), (4, &b"back"[..]));
    });
    close(&lp);
}

/// `wait_for` gives `Elapsed` no earlier than its limit when the future does not finish, and
/// the cancelled receive loses nothing: the next one gets the byte.
pub fn wait_for_times_out_without_losing_data(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    block_on(&lp, async move {
        let lp = loop_api::get_running_loop().expect("loop");
        let s = TcpStream::from_std_on(&lp, s);
        let t0 = lp.time();
        let r = wait_for(Duration::from_millis(30), s.recv(Vec::with_capacity(8))).await;
        assert!(r.is_err(), "nothing was sent, yet the read finished");
        assert!(
            lp.time() - t0 >= Duration::from_millis(30),
            "wait_for gave up early"
        );
        std::io::Write::write_all(&mut &c, b"x").expect("write");
        let r = wait_for(Duration::from_secs(30), s.recv(Vec::with_capacity(8))).await;
        let (n, buf) = r.expect("the byte arrives well before 30 s");
        assert_eq!((n.expect("read"), &buf[..]), (1, &b"x"[..]));
        let ok = wait_for(Duration::from_secs(30), async { 5 }).await;
        assert_eq!(ok, Ok(5));
    });
    close(&lp);
}

/// `getaddrinfo("localhost")` resolves (in the executor) to a loopback address, and
/// `connect_host` reaches a listener through it.
pub fn getaddrinfo_and_connect_host(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let listener = TcpListener::bind(loopback()).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let addrs = loop_net::getaddrinfo("localhost", port)
            .await
            .expect("resolve localhost");
        assert!(
            addrs
                .iter()
                .any(|a| a.ip().is_loopback() && a.port() == port),
            "{addrs:?}"
        );
        let stream = loop_net::connect_host("localhost", port, Duration::from_secs(10))
            .await
            .expect("connect_host");
        let (_conn, peer) = listener.accept().await.expect("accept");
        assert_eq!(stream.local_addr().expect("addr"), peer);
        let bad = loop_net::getaddrinfo("no-such-host.invalid", 80).await;
        assert!(bad.is_err(), "an unknown host must be an error");
    });
    close(&lp);
}

/// Writing to a connection the peer closed is an error on that connection only (EPIPE or
/// ECONNRESET; no SIGPIPE kills the process), and a socket of the wrong kind is a clear
/// error: accept on a UDP socket, a zero-capacity buffer.
pub fn broken_pipe_and_wrong_kind_are_errors(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    block_on(&lp, async move {
        let lp = loop_api::get_running_loop().expect("loop");
        let c = TcpStream::from_std_on(&lp, c);
        drop(s);
        let mut failed = None;
        for _ in 0..100 {
            if let (Err(e), _) = c.send_all(vec![0u8; 64 * 1024]).await {
                failed = Some(e);
                break;
            }
            loop_api::sleep(Duration::from_millis(1)).await;
        }
        let e = failed.expect("writes to a closed peer must fail");
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "unexpected error {e:?}"
        );
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let accept = lp.sock_accept_raw(&udp).await;
        assert!(accept.is_err(), "accept on a UDP socket must be an error");
        let listener = TcpListener::bind(loopback()).expect("bind");
        let other = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (r, _) = other.recv(Vec::new()).await;
        assert_eq!(
            r.expect_err("zero capacity").kind(),
            std::io::ErrorKind::InvalidInput
        );
    });
    close(&lp);
}

/// Many clients on one loop through `loop-net` echo their own data (a stream server with a
/// task per connection).
pub fn stream_server_echoes_many_clients(factory: Factory) {
    let lp = new_loop(factory);
    let ok = block_on(&lp, async {
        let lp = loop_api::get_running_loop().expect("loop");
        let listener = Rc::new(TcpListener::bind(loopback()).expect("bind"));
        let addr = listener.local_addr().expect("addr");
        let l = listener.clone();
        let lp2 = lp.clone();
        let server = lp
            .create_task(async move {
                for _ in 0..50 {
                    let (conn, _) = l.accept().await.expect("accept");
                    lp2.create_task(async move {
                        loop {
                            let (n, buf) = conn.recv(Vec::with_capacity(4096)).await;
                            if n.expect("read") == 0 {
                                return;
                            }
                            conn.send_all(buf).await.0.expect("write");
                        }
                    })
                    .expect("create_task");
                }
            })
            .expect("create_task");
        let clients: Vec<_> = (0..50u64)
            .map(|i| {
                lp.create_task(echo_client(lp.clone(), addr, pattern(3000 + i as usize, i)))
                    .expect("create_task")
            })
            .collect();
        let mut ok = 0;
        for c in clients {
            ok += usize::from(c.await.expect("client"));
        }
        server.await.expect("server");
        ok
    });
    assert_eq!(ok, 50, "every client got its own bytes back");
    close(&lp);
}

async fn echo_client(lp: EventLoop, addr: SocketAddr, data: Vec<u8>) -> bool {
    let s = TcpStream::connect_on(&lp, addr).await.expect("connect");
    s.send_all(data.clone()).await.0.expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let mut got = Vec::new();
    loop {
        let (n, buf) = s.recv(Vec::with_capacity(4096)).await;
        if n.expect("read") == 0 {
            return got == data;
        }
        got.extend_from_slice(&buf);
    }
}

/// `connect_timeout` gives `TimedOut` when the server does not answer in time (its accept
/// queue is full, so the kernel drops the SYNs), no earlier than the limit; a connect that
/// answers in time succeeds.
pub fn connect_timeout_times_out(factory: Factory) {
    use std::os::fd::AsRawFd;
    let lp = new_loop(factory);
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: listen(2) on a socket this function owns; a backlog of 0 keeps the queue tiny.
    unsafe { libc::listen(l.as_raw_fd(), 0) };
    let addr = l.local_addr().expect("addr");
    // Fill the accept queue with connections nobody accepts.
    let fillers: Vec<_> = (0..6)
        .map(|_| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            s.set_nonblocking(true).expect("nonblocking");
            let _ = s.connect(&addr.into());
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    block_on(&lp, async move {
        let lp = loop_api::get_running_loop().expect("loop");
        let t0 = lp.time();
        let r = TcpStream::connect_timeout(addr, Duration::from_millis(200)).await;
        let e = r.expect_err("the connect must not succeed with a full accept queue");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(
            lp.time() - t0 >= Duration::from_millis(200),
            "gave up before the limit"
        );
        let ok = TcpListener::bind(loopback()).expect("bind");
        let s = TcpStream::connect_timeout(ok.local_addr().expect("addr"), Duration::from_secs(10))
            .await;
        assert!(
            s.is_ok(),
            "a listener that answers is reached: {:?}",
            s.err()
        );
    });
    drop((fillers, l));
    close(&lp);
}

/// A stream's socket stays registered while it lives (no re-arm per operation) and is
/// forgotten when it is dropped: a new socket that gets the same fd number, used through
/// `sock_recv` on a borrowed fd, still gets its data.
pub fn dropped_stream_fd_reuse_is_safe(factory: Factory) {
    use std::os::fd::AsRawFd;
    let lp = new_loop(factory);
    block_on(&lp, async {
        let lp = loop_api::get_running_loop().expect("loop");
        for round in 0..5 {
            let (a, b) = loop_net::UnixStream::pair_on(&lp).expect("pair");
            // A read that has to wait, so the socket is registered, then data.
            let reader = lp
                .create_task(async move {
                    let (n, buf) = a.recv(Vec::with_capacity(8)).await;
                    (n.expect("read"), buf, a)
                })
                .expect("create_task");
            loop_api::yield_now().await;
            b.send_all(vec![round; 3]).await.0.expect("write");
            let (n, _, a) = reader.await.expect("reader");
            assert_eq!(n, 3);
            let old_fd = a.as_std_fd();
            drop((a, b));
            // New sockets, most likely on the same fd numbers, used through borrowed fds.
            let (c, d) = std::os::unix::net::UnixStream::pair().expect("pair");
            c.set_nonblocking(true).expect("nonblocking");
            let reused = c.as_raw_fd() == old_fd || d.as_raw_fd() == old_fd;
            let lp2 = lp.clone();
            let cfd = c.as_raw_fd();
            let pending = lp
                .create_task(async move {
                    let recv = lp2.run_op(loop_api::Op::Recv {
                        fd: cfd,
                        buf: Vec::with_capacity(8),
                    });
                    loop_api::SockRecv::new(recv).await
                })
                .expect("create_task");
            loop_api::yield_now().await;
            std::io::Write::write_all(&mut &d, b"new").expect("write");
            let (n, buf) = pending.await.expect("recv task");
            assert_eq!(
                (n.expect("recv"), &buf[..]),
                (3, &b"new"[..]),
                "round {round} (fd reused: {reused})"
            );
        }
    });
    close(&lp);
}
