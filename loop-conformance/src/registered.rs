//! Sockets handed to the loop with `register_socket` (`RegisteredSocket`): a readiness backend keeps
//! them armed and trusts a short read to mean "drained". These behaviours check the edges of
//! that trust: the peer's FIN arriving with the last bytes, more data after a short read,
//! large transfers that fill the send buffer, fd numbers reused after a registered socket
//! closed, and giving a socket back with `into_inner`.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use loop_api::{EventLoop, RegisteredSocket, wait_for};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern, recv_exact, tcp_pair, thread_sleep};

/// Receives on a registered socket until the peer closes.
async fn recv_all(lp: &EventLoop, s: &RegisteredSocket<TcpStream>, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let (res, buf) = lp.sock_recv(s, Vec::with_capacity(cap)).await;
        match res {
            Ok(0) => return out,
            Ok(_) => out.extend_from_slice(&buf),
            Err(e) => panic!("sock_recv failed: {e}"),
        }
    }
}

/// The last bytes and the FIN in one event: after the short read that takes the bytes, the
/// next `sock_recv` gives 0 at once (it must not wait for an edge the FIN already gave), both
/// when they were there before the socket was registered and when they arrive while a
/// receive waits.
pub fn registered_socket_sees_fin_after_short_read(factory: Factory) {
    let lp = new_loop(factory);
    // Already there when the socket is registered.
    let (c, s) = tcp_pair();
    (&s).write_all(b"abc").expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let c = lp.register_socket(c).expect("register_socket");
    let lp2 = lp.clone();
    let got = block_on(&lp, async move { recv_all(&lp2, &c, 64).await });
    assert_eq!(got, b"abc");
    // Arriving together while the receive waits.
    for _ in 0..20 {
        let (c, s) = tcp_pair();
        let c = lp.register_socket(c).expect("register_socket");
        let writer = std::thread::spawn(move || {
            thread_sleep(5);
            (&s).write_all(b"xyz").expect("write");
            s.shutdown(Shutdown::Write).expect("shutdown");
            s
        });
        let lp2 = lp.clone();
        let got = block_on(&lp, async move { recv_all(&lp2, &c, 64).await });
        assert_eq!(got, b"xyz");
        drop(writer.join().expect("writer thread"));
    }
    close(&lp);
}

/// A short read does not lose later data: bytes sent after a pause arrive at the next
/// `sock_recv`, many times over.
pub fn registered_socket_receives_after_short_read(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let c = lp.register_socket(c).expect("register_socket");
    let writer = std::thread::spawn(move || {
        for i in 0..20u8 {
            (&s).write_all(&[i; 3]).expect("write");
            thread_sleep(2);
        }
        s.shutdown(Shutdown::Write).expect("shutdown");
        s
    });
    let lp2 = lp.clone();
    let got = block_on(&lp, async move { recv_all(&lp2, &c, 1024).await });
    let want: Vec<u8> = (0..20u8).flat_map(|i| [i; 3]).collect();
    assert_eq!(got, want);
    drop(writer.join().expect("writer thread"));
    close(&lp);
}

/// 4 MiB each way at once between two registered sockets on one loop: sends that fill the
/// send buffer wait for room and resume, receives keep up, every byte arrives in order.
pub fn registered_sockets_transfer_both_ways(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = tcp_pair();
    let a = Rc::new(lp.register_socket(a).expect("register_socket"));
    let b = Rc::new(lp.register_socket(b).expect("register_socket"));
    let up = pattern(4 << 20, 3);
    let down = pattern(4 << 20, 4);
    let (up2, down2) = (up.clone(), down.clone());
    let lp2 = lp.clone();
    let (at_b, at_a) = block_on(&lp, async move {
        let side = |me: Rc<RegisteredSocket<TcpStream>>, out: Vec<u8>| {
            let lp = lp2.clone();
            lp2.create_task(async move {
                let sender = {
                    let (lp, me) = (lp.clone(), me.clone());
                    lp.clone()
                        .create_task(async move {
                            let (res, _) = lp.sock_sendall(&me, out).await;
                            res.expect("sock_sendall");
                            me.shutdown(Shutdown::Write).expect("shutdown");
                        })
                        .expect("create_task")
                };
                let got = recv_all(&lp, &me, 16 * 1024).await;
                sender.await.expect("sender task");
                got
            })
            .expect("create_task")
        };
        let ta = side(a, up2);
        let tb = side(b, down2);
        (ta.await.expect("side a"), tb.await.expect("side b"))
    });
    assert!(at_b == down, "b->a data differs ({} bytes)", at_b.len());
    assert!(at_a == up, "a->b data differs ({} bytes)", at_a.len());
    close(&lp);
}

/// Writes `data` on `s` from another thread after a short pause.
fn write_later(s: &Rc<TcpStream>, data: &'static [u8]) {
    let s = s.try_clone().expect("try_clone");
    std::thread::spawn(move || {
        thread_sleep(5);
        (&s).write_all(data).expect("write");
    });
}

/// A registered socket's fd number, reused by a new socket after the first one was dropped,
/// works as the new socket, registered or borrowed; `into_inner` gives back a socket that
/// still works with the plain `sock_*` calls.
pub fn registered_fd_reuse_and_into_inner(factory: Factory) {
    let lp = new_loop(factory);
    for round in 0..10u8 {
        let (c, s) = tcp_pair();
        let fd = c.as_raw_fd();
        let c = lp.register_socket(c).expect("register_socket");
        (&s).write_all(&[round]).expect("write");
        let lp2 = lp.clone();
        let (n, c) = block_on(&lp, async move {
            let (res, _) = lp2.sock_recv(&c, Vec::with_capacity(8)).await;
            (res.expect("sock_recv"), c)
        });
        assert_eq!(n, 1);
        drop(c);
        drop(s);
        // The next socket most likely gets the same number; either way it must work.
        let (c2, s2) = tcp_pair();
        let reused = c2.as_raw_fd() == fd;
        let s2 = Rc::new(s2);
        let registered = round % 2 == 0;
        let lp2 = lp.clone();
        let got = block_on(&lp, async move {
            let mut got = Vec::new();
            if registered {
                let c2 = lp2.register_socket(c2).expect("register_socket");
                write_later(&s2, b"hello");
                got.extend(recv_exact(&lp2, &c2, 5).await);
                let back = c2.into_inner();
                write_later(&s2, b"world");
                got.extend(recv_exact(&lp2, &back, 5).await);
            } else {
                write_later(&s2, b"helloworld");
                got.extend(recv_exact(&lp2, &c2, 10).await);
            }
            got
        });
        assert_eq!(got, b"helloworld", "round {round} (fd reused: {reused})");
    }
    close(&lp);
}

/// A registered listener that was still blocking: `sock_accept` never blocks the loop (the
/// loop makes it non-blocking, once), times out cleanly when nobody connects, and accepts every
/// connection that comes.
pub fn registered_blocking_listener_accepts_without_blocking(factory: Factory) {
    let lp = new_loop(factory);
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("local_addr");
    let l = lp.register_socket(l).expect("register_socket");
    let lp2 = lp.clone();
    let peers = block_on(&lp, async move {
        // Nobody connects: a wait that times out (a blocked loop could not time out).
        let idle = wait_for(Duration::from_millis(30), lp2.sock_accept(&l)).await;
        assert!(idle.is_err(), "accepted a connection nobody made");
        let clients = std::thread::spawn(move || {
            (0..5)
                .map(|_| {
                    thread_sleep(2);
                    TcpStream::connect(addr).expect("connect")
                })
                .collect::<Vec<_>>()
        });
        let mut peers = Vec::new();
        for _ in 0..5 {
            let (s, peer) = lp2.sock_accept(&l).await.expect("sock_accept");
            assert_eq!(s.peer_addr().expect("peer_addr"), peer);
            peers.push(peer);
        }
        let clients = clients.join().expect("client thread");
        let mut mine: Vec<_> = clients
            .iter()
            .map(|c| c.local_addr().expect("local_addr"))
            .collect();
        mine.sort();
        (peers, mine)
    });
    let (mut peers, mine) = peers;
    peers.sort();
    assert_eq!(peers, mine, "the accepted peers are the clients");
    close(&lp);
}

/// `add_reader` on a registered socket: the reader fires when data arrives, and a `sock_recv`
/// after it gets the data at once (the watch does not make the loop believe the socket
/// drained).
pub fn registered_socket_with_a_reader(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let c = Rc::new(lp.register_socket(c).expect("register_socket"));
    let fd = c.as_raw_fd();
    let fired = Rc::new(std::cell::Cell::new(0));
    {
        let (lp2, fired) = (lp.clone(), fired.clone());
        lp.add_reader(fd, move || {
            fired.set(fired.get() + 1);
            lp2.remove_reader(fd);
            lp2.stop();
        })
        .expect("add_reader");
    }
    let writer = std::thread::spawn(move || {
        thread_sleep(5);
        (&s).write_all(b"ping").expect("write");
        s
    });
    lp.run_forever().expect("run_forever");
    assert_eq!(fired.get(), 1, "the reader fires once, then removes itself");
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let (res, buf) = lp2.sock_recv(&c, Vec::with_capacity(16)).await;
        res.expect("sock_recv");
        buf
    });
    assert_eq!(got, b"ping");
    drop(writer.join().expect("writer thread"));
    close(&lp);
}

/// A blocking listener that is only borrowed never blocks `sock_accept`, even when it took
/// the fd number of a registered listener released just before: the loop makes a borrowed
/// listener non-blocking every time (it may be another socket than last time) and forgets
/// what it knew of a registered one at release. Should the loop block in `accept(2)`, the
/// late client is what it accepts and the idle wait fails instead of hanging.
pub fn borrowed_blocking_listener_never_blocks_sock_accept(factory: Factory) {
    let lp = new_loop(factory);
    for round in 0..3 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let fd = l.as_raw_fd();
        let addr = l.local_addr().expect("local_addr");
        // The loop makes the registered listener non-blocking, accepts on it and releases it.
        let registered = lp.register_socket(l).expect("register_socket");
        let lp2 = lp.clone();
        block_on(&lp, async move {
            let idle = wait_for(Duration::from_millis(20), lp2.sock_accept(&registered)).await;
            assert!(
                idle.is_err(),
                "round {round}: accepted a connection nobody made"
            );
            drop(registered.into_inner());
        });
        // A new blocking listener, borrowed, most likely under the same fd number.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let reused = l.as_raw_fd() == fd;
        let addr2 = l.local_addr().expect("local_addr");
        assert_ne!(addr, addr2);
        let late = std::thread::spawn(move || {
            thread_sleep(500);
            TcpStream::connect(addr2).expect("connect")
        });
        let lp2 = lp.clone();
        block_on(&lp, async move {
            let idle = wait_for(Duration::from_millis(30), lp2.sock_accept(&l)).await;
            assert!(
                idle.is_err(),
                "round {round} (fd reused: {reused}): sock_accept blocked the loop"
            );
            let (s, _) = lp2.sock_accept(&l).await.expect("sock_accept");
            drop(s);
        });
        drop(late.join().expect("client thread"));
    }
    close(&lp);
}

/// A task that receives once (up to 64 bytes) on `c` and gives what it got.
fn spawn_recv(lp: &EventLoop, c: &Rc<RegisteredSocket<TcpStream>>) -> loop_api::Task<Vec<u8>> {
    let (lp2, c) = (lp.clone(), c.clone());
    lp.create_task(async move {
        let (res, buf) = lp2.sock_recv(&c, Vec::with_capacity(64)).await;
        res.expect("sock_recv");
        buf
    })
    .expect("create_task")
}

/// Two receives waiting together on one registered socket complete in the order they were
/// started, each with its own chunk (a readiness loop parks the first in its future and
/// queues the second behind it).
pub fn registered_receives_waiting_together_complete_in_order(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let c = Rc::new(lp.register_socket(c).expect("register_socket"));
    let lp2 = lp.clone();
    let (first, second) = block_on(&lp, async move {
        let first = spawn_recv(&lp2, &c);
        // Let the first start (and wait) before the second does.
        loop_api::sleep(Duration::from_millis(10)).await;
        let second = spawn_recv(&lp2, &c);
        loop_api::sleep(Duration::from_millis(10)).await;
        (&s).write_all(b"one").expect("write");
        let first = wait_for(Duration::from_secs(10), first).await;
        let first = first.expect("the first receive completes").expect("task");
        (&s).write_all(b"two").expect("write");
        let second = wait_for(Duration::from_secs(10), second).await;
        let second = second.expect("the second receive completes").expect("task");
        (first, second)
    });
    assert_eq!(first, b"one");
    assert_eq!(second, b"two");
    close(&lp);
}

/// A waiting receive whose task is cancelled hands its turn to the receive started after it
/// on the same registered socket: that one gets the bytes that arrive next.
pub fn registered_cancelled_waiting_receive_passes_its_turn(factory: Factory) {
    let lp = new_loop(factory);
    let (c, s) = tcp_pair();
    let c = Rc::new(lp.register_socket(c).expect("register_socket"));
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let first = spawn_recv(&lp2, &c);
        loop_api::sleep(Duration::from_millis(10)).await;
        let second = spawn_recv(&lp2, &c);
        loop_api::sleep(Duration::from_millis(10)).await;
        first.cancel();
        loop_api::sleep(Duration::from_millis(10)).await;
        (&s).write_all(b"after").expect("write");
        let second = wait_for(Duration::from_secs(10), second).await;
        second.expect("the second receive completes").expect("task")
    });
    assert_eq!(got, b"after");
    close(&lp);
}
