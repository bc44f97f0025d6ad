//! File descriptors: nothing leaks, loop-owned fds are close-on-exec, EMFILE is an error
//! (CONFORMANCE 14, 17, 23). These behaviours run alone ([`Isolation::Exclusive`]).
//!
//! [`Isolation::Exclusive`]: crate::Isolation::Exclusive

use std::collections::BTreeSet;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loop_api::EventLoop;

use crate::Factory;
use crate::util::{
    block_on, close, count_open_fds, fd_is_cloexec, listener, new_loop, open_fds, recv_exact,
    run_once, send_all, socketpair,
};

/// What an fd is, for messages (its `/proc/self/fd` link on Linux).
pub(crate) fn describe(fd: RawFd) -> String {
    match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        Ok(target) => format!("{fd} -> {}", target.display()),
        Err(_) => fd.to_string(),
    }
}

/// Panics with the fds in `after` that are not in `before`.
pub(crate) fn assert_no_new_fds(before: &BTreeSet<RawFd>, after: &BTreeSet<RawFd>, what: &str) {
    let leaked: Vec<String> = after.difference(before).map(|&fd| describe(fd)).collect();
    let gone: Vec<String> = before.difference(after).map(|fd| fd.to_string()).collect();
    assert!(
        leaked.is_empty(),
        "{what} leaked file descriptors: {leaked:?}"
    );
    assert!(
        gone.is_empty(),
        "{what} closed file descriptors it did not own: {gone:?}"
    );
}

/// Uses every part of a loop that might open a descriptor: timers, thread-safe calls, the
/// executor, a reader, sockets.
fn exercise(lp: &EventLoop) {
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    lp.add_reader(a.as_raw_fd(), || {}).expect("add_reader");
    run_once(lp);
    assert!(lp.remove_reader(a.as_raw_fd()));
    let (l, addr) = listener();
    let handle = lp.handle();
    std::thread::spawn(move || {
        handle
            .call_soon_threadsafe(|| {})
            .expect("call_soon_threadsafe")
    })
    .join()
    .expect("thread");
    let lp2 = lp.clone();
    block_on(lp, async move {
        loop_api::sleep(Duration::from_millis(1)).await;
        assert_eq!(lp2.run_in_executor(|| 5).await, Ok(5));
        let c = lp2.sock_connect(addr).await.expect("sock_connect");
        let (s, _) = lp2.sock_accept(&l).await.expect("sock_accept");
        send_all(&lp2, &c, b"ok".to_vec()).await;
        assert_eq!(recv_exact(&lp2, &s, 2).await, b"ok");
    });
}

/// Closing a loop releases every descriptor it opened (its selector, waker, ...), also after
/// it was used for timers, readers, the executor and sockets.
pub fn close_releases_loop_fds(factory: Factory) {
    let before = open_fds();
    let lp = new_loop(factory);
    exercise(&lp);
    close(&lp);
    assert_no_new_fds(&before, &open_fds(), "a closed loop");
    drop(lp);
    assert_no_new_fds(&before, &open_fds(), "a dropped loop");
}

/// 100 loops created, used and closed leak no descriptor.
pub fn hundred_loops_do_not_leak_fds(factory: Factory) {
    // A first loop, so that anything made once per process exists before counting.
    let warm = new_loop(factory);
    run_once(&warm);
    close(&warm);
    drop(warm);
    let before = count_open_fds();
    for _ in 0..100 {
        let lp = new_loop(factory);
        lp.call_soon(|| {}).expect("call_soon");
        let _ = lp.call_later(Duration::from_secs(60), || {});
        block_on(&lp, async {
            loop_api::sleep(Duration::from_micros(100)).await
        });
        close(&lp);
    }
    let after = count_open_fds();
    assert_eq!(
        after,
        before,
        "100 loops created and closed left {} more open descriptors",
        after as isize - before as isize
    );
}

/// Counts the guards dropped (from any thread).
type Freed = Arc<AtomicUsize>;

/// Bumps its counter when dropped: tells that the loop freed what owned it.
struct DropGuard(Freed);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Starts, on `lp`, the pending work a dropped loop must free: a sleeping task, a task waiting
/// in `sock_recv`, one reading a loop-net stream, a far timer, a reader; each owns a guard.
/// The task and the timer hold the loop weakly, or, with `strong`, a handle of their own (a
/// reference cycle: the loop owns them). Gives the number of guards handed out.
fn leave_pending_work(lp: &EventLoop, freed: &Freed, strong: bool) -> usize {
    let guard = || DropGuard(freed.clone());
    let (g1, g2, g3, g4, g5) = (guard(), guard(), guard(), guard(), guard());
    lp.create_task(async move {
        let _g = g1;
        loop_api::sleep(Duration::from_secs(3600)).await;
    })
    .expect("create_task");
    let (c, s) = crate::util::tcp_pair();
    let (weak, held) = (lp.downgrade(), strong.then(|| lp.clone()));
    lp.create_task(async move {
        let (_g, _peer, _held) = (g2, s, held);
        let recv = weak
            .upgrade()
            .map(|lp| lp.sock_recv(&c, Vec::with_capacity(16)));
        if let Some(recv) = recv {
            let _ = recv.await;
        }
    })
    .expect("create_task");
    let (c, s) = crate::util::tcp_pair();
    let stream = loop_net::TcpStream::from_std_on(lp, c);
    lp.create_task(async move {
        let (_g, _peer) = (g3, s);
        let _ = stream.recv(Vec::with_capacity(16)).await;
    })
    .expect("create_task");
    let held = strong.then(|| lp.clone());
    lp.call_later(Duration::from_secs(3600), move || drop((g4, held)))
        .expect("call_later");
    let (r, w) = socketpair();
    lp.add_reader(r.as_raw_fd(), move || {
        let _ = (&g5, &r, &w);
    })
    .expect("add_reader");
    5
}

/// Runs `lp` a few iterations, so that every piece of pending work has started.
fn start_pending_work(lp: &EventLoop) {
    block_on(lp, async {
        for _ in 0..3 {
            loop_api::yield_now().await;
        }
    });
}

/// A loop dropped without `close()` while tasks, timers, socket operations and readers are
/// pending frees all of it (asyncio closes a loop it collects): its own fds, the sockets its
/// tasks own, the tasks themselves. Futures of the loop's own (sleep, sock_recv, loop-net
/// streams) hold it weakly, so no reference cycle keeps it alive.
pub fn dropped_loop_with_pending_work_leaks_nothing(factory: Factory) {
    let warm = new_loop(factory);
    run_once(&warm);
    close(&warm);
    drop(warm);
    let before = open_fds();
    let freed = Freed::default();
    let mut handed_out = 0;
    for round in 0..20 {
        let lp = new_loop(factory);
        handed_out += leave_pending_work(&lp, &freed, false);
        start_pending_work(&lp);
        assert!(!lp.is_closed());
        drop(lp);
        assert_eq!(
            freed.load(Ordering::SeqCst),
            handed_out,
            "round {round}: a dropped loop kept tasks, timers or readers alive"
        );
    }
    assert_no_new_fds(&before, &open_fds(), "20 loops dropped with pending work");
}

/// Loops kept alive by handles their own tasks and callbacks hold (a reference cycle no
/// handle can see) are closed when their thread exits: everything they hold is freed.
pub fn loops_in_a_reference_cycle_are_closed_at_thread_exit(factory: Factory) {
    let warm = new_loop(factory);
    run_once(&warm);
    close(&warm);
    drop(warm);
    let before = open_fds();
    let freed = Freed::default();
    let freed2 = freed.clone();
    let handed_out = std::thread::spawn(move || {
        let mut handed_out = 0;
        for _ in 0..10 {
            let lp = new_loop(factory);
            handed_out += leave_pending_work(&lp, &freed2, true);
            start_pending_work(&lp);
            drop(lp);
        }
        handed_out
    })
    .join()
    .expect("the loop thread");
    assert_eq!(
        freed.load(Ordering::SeqCst),
        handed_out,
        "loops kept alive by their own callbacks were not freed when their thread exited"
    );
    assert_no_new_fds(
        &before,
        &open_fds(),
        "10 loops in reference cycles, thread gone",
    );
}

/// In debug mode a loop dropped without `close()` says so once, through its exception
/// handler (asyncio's "unclosed event loop" ResourceWarning); a closed loop says nothing.
pub fn dropped_unclosed_loop_is_reported_in_debug_mode(factory: Factory) {
    let reports = crate::util::Log::default();
    for (debug, closed) in [(true, false), (true, true), (false, false)] {
        let lp = new_loop(factory);
        lp.set_debug(debug);
        let log = reports.clone();
        lp.set_exception_handler(Some(Box::new(move |ctx: &loop_api::ExceptionContext| {
            log.push(ctx.message.clone());
        })));
        let _ = lp.call_later(Duration::from_secs(3600), || {});
        run_once(&lp);
        if closed {
            close(&lp);
        }
        drop(lp);
    }
    let got = reports.get();
    assert_eq!(
        got.len(),
        1,
        "expected one unclosed-loop report, got {got:?}"
    );
    assert!(got[0].contains("unclosed event loop"), "{got:?}");
}

/// 100 connections accepted, connected, used and closed on one loop leak no descriptor.
pub fn hundred_connections_do_not_leak_fds(factory: Factory) {
    let lp = new_loop(factory);
    let (l, addr) = listener();
    let lp2 = lp.clone();
    let (before, after) = block_on(&lp, async move {
        let round = |lp: EventLoop, l: std::rc::Rc<std::net::TcpListener>| async move {
            let c = lp.sock_connect(addr).await.expect("sock_connect");
            let (s, _) = lp.sock_accept(&l).await.expect("sock_accept");
            send_all(&lp, &c, b"x".to_vec()).await;
            assert_eq!(recv_exact(&lp, &s, 1).await, b"x");
            send_all(&lp, &s, b"y".to_vec()).await;
            assert_eq!(recv_exact(&lp, &c, 1).await, b"y");
        };
        let l = std::rc::Rc::new(l);
        round(lp2.clone(), l.clone()).await; // warm-up
        let before = open_fds();
        for _ in 0..100 {
            round(lp2.clone(), l.clone()).await;
        }
        (before, open_fds())
    });
    assert_no_new_fds(&before, &after, "100 connections");
    close(&lp);
}

/// Adding a reader, removing it and closing its fd at once, 100 times, leaks nothing.
pub fn remove_reader_then_close_leaks_nothing(factory: Factory) {
    let lp = new_loop(factory);
    let cycle = |lp: &EventLoop| {
        let (a, b) = socketpair();
        (&b).write_all(b"x").expect("write");
        lp.add_reader(a.as_raw_fd(), || {}).expect("add_reader");
        lp.add_writer(b.as_raw_fd(), || {}).expect("add_writer");
        run_once(lp);
        assert!(lp.remove_reader(a.as_raw_fd()));
        assert!(lp.remove_writer(b.as_raw_fd()));
    };
    cycle(&lp);
    let before = open_fds();
    for _ in 0..100 {
        cycle(&lp);
    }
    run_once(&lp);
    assert_no_new_fds(&before, &open_fds(), "add_reader/remove_reader/close");
    close(&lp);
}

/// Every descriptor a loop opens is close-on-exec, and so are the sockets `sock_accept` and
/// `sock_connect` give.
pub fn loop_owned_fds_are_cloexec(factory: Factory) {
    let before = open_fds();
    let lp = new_loop(factory);
    exercise(&lp);
    let (l, addr) = listener();
    let lp2 = lp.clone();
    let (c, s) = block_on(&lp, async move {
        let c = lp2.sock_connect(addr).await.expect("sock_connect");
        let (s, _) = lp2.sock_accept(&l).await.expect("sock_accept");
        (c, s)
    });
    let mut bad: Vec<String> = open_fds()
        .difference(&before)
        .filter(|&&fd| fd != c.as_raw_fd() && fd != s.as_raw_fd() && !fd_is_cloexec(fd))
        .map(|&fd| describe(fd))
        .collect();
    for (what, fd) in [
        ("sock_connect", c.as_raw_fd()),
        ("sock_accept", s.as_raw_fd()),
    ] {
        if !fd_is_cloexec(fd) {
            bad.push(format!("{what}'s socket {}", describe(fd)));
        }
    }
    assert!(bad.is_empty(), "descriptors without FD_CLOEXEC: {bad:?}");
    drop((c, s));
    close(&lp);
}

/// Lowers RLIMIT_NOFILE for as long as it lives.
pub(crate) struct NofileLimit {
    saved: libc::rlimit,
}

impl NofileLimit {
    pub(crate) fn lower_to(soft: libc::rlim_t) -> NofileLimit {
        let mut saved = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into the valid `saved`.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut saved) };
        assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
        let lowered = libc::rlimit {
            rlim_cur: soft.min(saved.rlim_cur),
            rlim_max: saved.rlim_max,
        };
        // SAFETY: setrlimit reads one valid `rlimit`.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lowered) };
        assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
        NofileLimit { saved }
    }
}

impl Drop for NofileLimit {
    fn drop(&mut self) {
        // SAFETY: setrlimit reads one valid `rlimit`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const self.saved) };
    }
}

/// Uses up every descriptor: lowers the limit just above the highest open one, then opens
/// `/dev/null` until the OS refuses with EMFILE. Dropping both gives everything back.
///
/// # Panics
/// If EMFILE cannot be reached.
pub(crate) fn exhaust_fds() -> (NofileLimit, Vec<std::fs::File>) {
    let highest = open_fds().into_iter().max().unwrap_or(0);
    let soft = highest as usize + 8;
    let limit = NofileLimit::lower_to(soft as libc::rlim_t);
    let mut fillers = Vec::new();
    // Lower numbers may be free too: open until the OS refuses.
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) if fillers.len() <= soft => fillers.push(f),
            Ok(_) => break None,
            Err(e) => break Some(e),
        }
    };
    let exhausted = exhausted.filter(|e| e.raw_os_error() == Some(libc::EMFILE));
    assert!(
        exhausted.is_some(),
        "could not use up the descriptors to test EMFILE"
    );
    (limit, fillers)
}

/// `sock_accept` when the process is out of descriptors (EMFILE) is an error, not a crash, a
/// spin or a hang; the pending connection is not lost and the listener keeps working.
pub fn accept_under_emfile_is_error(factory: Factory) {
    let lp = new_loop(factory);
    exercise(&lp);
    let (l, addr) = listener();
    let client = TcpStream::connect(addr).expect("connect");
    (&client).write_all(b"wait").expect("write");
    let l = std::rc::Rc::new(l);
    let lp2 = lp.clone();
    let l2 = l.clone();
    let first = block_on(&lp, async move {
        // Use up every descriptor: lower the limit just above the highest open one, then fill.
        // (Lower numbers may be free too: open until the OS refuses.)
        let (limit, fillers) = exhaust_fds();
        let accepting = lp2.create_task(lp2.sock_accept(&l2)).expect("create_task");
        // Give the accept time to fail; if it is still waiting (retrying, say) after that,
        // free the descriptors anyway so the process is not left crippled.
        for _ in 0..2000 {
            if accepting.done() {
                break;
            }
            loop_api::sleep(Duration::from_millis(5)).await;
        }
        drop(fillers);
        drop(limit);
        accepting.await.map(|r| r.map(|(s, _)| s))
    });
    match first {
        Ok(Err(e)) => assert_ne!(
            e.kind(),
            ErrorKind::WouldBlock,
            "sock_accept under EMFILE gave {e:?}"
        ),
        Ok(Ok(s)) => panic!(
            "sock_accept succeeded with no descriptor free ({s:?}), or kept waiting instead of failing"
        ),
        Err(e) => panic!("the accepting task ended with {e:?}"),
    }
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let (s, peer) = lp2.sock_accept(&l).await.expect("sock_accept after EMFILE");
        (peer, recv_exact(&lp2, &s, 4).await)
    });
    assert_eq!(
        got.0,
        client.local_addr().expect("local_addr"),
        "the pending connection was lost"
    );
    assert_eq!(got.1, b"wait");
    close(&lp);
}
