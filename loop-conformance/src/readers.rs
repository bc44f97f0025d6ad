//! `add_reader`/`add_writer`: level-triggered fd watching (CONFORMANCE 17, 18).

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use loop_api::EventLoop;

use crate::Factory;
use crate::util::{
    Counter, Log, close, drain, fill, new_loop, pipe, run_forever, run_once, socketpair,
};

fn counting(c: &Counter) -> impl FnMut() + 'static {
    let c = c.clone();
    move || c.bump()
}

/// A reader runs on every iteration while its fd stays readable (level-triggered: the data is
/// never read), exactly once per iteration, also across stop/restart.
pub fn reader_runs_every_iteration_while_readable(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    let fd = a.as_raw_fd();
    let calls = Counter::new();
    lp.add_reader(fd, counting(&calls)).expect("add_reader");
    for k in 1..=5 {
        run_once(&lp);
        assert_eq!(
            calls.get(),
            k,
            "after {k} iterations with the fd readable the reader ran {} times",
            calls.get()
        );
    }
    // Run freely: the reader stops the loop on its 10th call; the iteration ends there.
    let (lp2, c) = (lp.clone(), calls.clone());
    lp.add_reader(fd, move || {
        c.bump();
        if c.get() == 10 {
            lp2.stop();
        }
    })
    .expect("add_reader");
    run_forever(&lp);
    assert_eq!(
        calls.get(),
        10,
        "a readable fd's reader ran more than once in an iteration"
    );
    assert!(lp.remove_reader(fd));
    assert_eq!(drain(&a).0, b"x", "the data was consumed by the loop");
    close(&lp);
}

/// A reader called when there is nothing to read (an edge that was consumed) is tolerated:
/// the loop does not spin on it, and data arriving later is delivered.
pub fn reader_tolerates_spurious_readiness(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    let a = Rc::new(a);
    let fd = a.as_raw_fd();
    let got: Log<u8> = Log::new();
    let spurious = Counter::new();
    let (lp2, a2, g, s) = (lp.clone(), a.clone(), got.clone(), spurious.clone());
    lp.add_reader(fd, move || {
        let mut buf = [0u8; 64];
        match (&*a2).read(&mut buf) {
            Ok(n) => {
                buf[..n].iter().for_each(|&x| g.push(x));
                if n > 0 {
                    lp2.stop();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.bump(),
            Err(e) => panic!("read failed: {e}"),
        }
    })
    .expect("add_reader");
    run_once(&lp);
    // Make the fd readable, then consume the data behind the loop's back.
    (&b).write_all(b"gone").expect("write");
    assert_eq!(drain(&*a).0, b"gone");
    for _ in 0..5 {
        run_once(&lp);
    }
    assert!(got.is_empty());
    assert!(
        spurious.get() <= 2,
        "the reader of an fd with nothing to read ran in {} of 5 iterations (the loop spins on it)",
        spurious.get()
    );
    (&b).write_all(b"real").expect("write");
    run_forever(&lp);
    assert_eq!(got.get(), b"real");
    assert!(lp.remove_reader(fd));
    close(&lp);
}

/// Adding a reader for an fd that has one replaces it.
pub fn re_adding_reader_replaces_it(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    let fd = a.as_raw_fd();
    let (first, second) = (Counter::new(), Counter::new());
    lp.add_reader(fd, counting(&first)).expect("add_reader");
    lp.add_reader(fd, counting(&second)).expect("add_reader");
    run_once(&lp);
    run_once(&lp);
    assert_eq!(first.get(), 0, "the replaced reader still ran");
    assert_eq!(second.get(), 2);
    // Same for writers.
    let (w1, w2) = (Counter::new(), Counter::new());
    lp.add_writer(fd, counting(&w1)).expect("add_writer");
    lp.add_writer(fd, counting(&w2)).expect("add_writer");
    run_once(&lp);
    assert_eq!(
        (w1.get(), w2.get()),
        (0, 1),
        "the replaced writer still ran"
    );
    assert!(lp.remove_reader(fd));
    assert!(lp.remove_writer(fd));
    close(&lp);
}

/// `remove_reader` is true, then false; a removed reader no longer runs, also when it removes
/// itself from its own callback. `remove_*` of an fd never watched is false.
pub fn remove_reader_true_then_false(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    let fd = a.as_raw_fd();
    assert!(
        !lp.remove_reader(fd),
        "remove_reader of an fd never watched must be false"
    );
    assert!(
        !lp.remove_writer(fd),
        "remove_writer of an fd never watched must be false"
    );
    let calls = Counter::new();
    lp.add_reader(fd, counting(&calls)).expect("add_reader");
    assert!(
        lp.remove_reader(fd),
        "remove_reader of a watched fd must be true"
    );
    assert!(
        !lp.remove_reader(fd),
        "a second remove_reader must be false"
    );
    run_once(&lp);
    run_once(&lp);
    assert_eq!(calls.get(), 0, "a removed reader ran");

    let removed = Log::new();
    let (lp2, c, r) = (lp.clone(), calls.clone(), removed.clone());
    lp.add_reader(fd, move || {
        c.bump();
        r.push(lp2.remove_reader(fd));
    })
    .expect("add_reader");
    for _ in 0..3 {
        run_once(&lp);
    }
    assert_eq!(calls.get(), 1, "a reader that removed itself ran again");
    assert_eq!(removed.get(), [true]);
    assert!(!lp.remove_reader(fd));
    close(&lp);
}

/// Removing a reader and closing its fd at once is safe, also from inside the reader; a new
/// fd that reuses the number gets its own reader.
pub fn remove_reader_then_close_is_safe(factory: Factory) {
    let lp = new_loop(factory);
    for round in 0..30 {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        let calls = Counter::new();
        lp.add_reader(fd, counting(&calls)).expect("add_reader");
        (&b).write_all(b"x").expect("write");
        run_once(&lp);
        assert_eq!(calls.get(), 1, "round {round}: reader did not run once");
        assert!(lp.remove_reader(fd));
        drop(a);
        drop(b);
        run_once(&lp);
        assert_eq!(
            calls.get(),
            1,
            "round {round}: a removed reader ran after its fd was closed"
        );
    }
    // From inside the reader: remove, close, and watch a new pair (likely the same number).
    let next: Rc<RefCell<Option<(UnixStream, UnixStream)>>> = Rc::default();
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    let fd = a.as_raw_fd();
    let held = Rc::new(RefCell::new(Some((a, b))));
    let new_calls = Counter::new();
    let (lp2, h, n, nc) = (lp.clone(), held.clone(), next.clone(), new_calls.clone());
    lp.add_reader(fd, move || {
        assert!(lp2.remove_reader(fd));
        drop(h.borrow_mut().take());
        let (c, d) = socketpair();
        (&d).write_all(b"y").expect("write");
        let nc = nc.clone();
        lp2.add_reader(c.as_raw_fd(), move || nc.bump())
            .expect("add_reader");
        *n.borrow_mut() = Some((c, d));
    })
    .expect("add_reader");
    run_once(&lp);
    assert!(held.borrow().is_none(), "the first reader did not run");
    run_once(&lp);
    run_once(&lp);
    assert!(new_calls.get() >= 1, "the new fd's reader never ran");
    let (c, _d) = next.borrow_mut().take().expect("new pair");
    assert!(lp.remove_reader(c.as_raw_fd()));
    close(&lp);
}

/// Readiness comes back after the fd was drained to `WouldBlock` and more data arrives
/// (from the loop's thread and from another thread).
pub fn readiness_returns_after_drain(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    let (a, b) = (Rc::new(a), Rc::new(b));
    let fd = a.as_raw_fd();
    let messages: Vec<Vec<u8>> = (0..6).map(|i| format!("round {i}").into_bytes()).collect();
    let got = Rc::new(RefCell::new(Vec::<u8>::new()));
    let round = Rc::new(std::cell::Cell::new(0usize));
    type Writers = Rc<RefCell<Vec<std::thread::JoinHandle<()>>>>;
    fn send(lp: &EventLoop, b: &Rc<UnixStream>, msg: Vec<u8>, writers: Option<&Writers>) {
        if let Some(writers) = writers {
            let peer = b.try_clone().expect("try_clone");
            writers.borrow_mut().push(std::thread::spawn(move || {
                crate::util::thread_sleep(10);
                (&peer).write_all(&msg).expect("write");
            }));
        } else {
            let b = b.clone();
            lp.call_later(Duration::from_millis(1), move || {
                (&*b).write_all(&msg).expect("write")
            })
            .expect("call_later");
        }
    }
    let writers: Writers = Rc::default();
    let (lp2, a2, b2, g, r, msgs, w) = (
        lp.clone(),
        a.clone(),
        b.clone(),
        got.clone(),
        round.clone(),
        messages.clone(),
        writers.clone(),
    );
    lp.add_reader(fd, move || {
        let (data, eof) = drain(&*a2);
        assert!(!eof);
        g.borrow_mut().extend_from_slice(&data);
        let want: usize = msgs[..=r.get()].iter().map(Vec::len).sum();
        if g.borrow().len() == want {
            r.set(r.get() + 1);
            if r.get() == msgs.len() {
                lp2.stop();
            } else {
                let from_thread = (r.get() % 2 == 1).then_some(&w);
                send(&lp2, &b2, msgs[r.get()].clone(), from_thread);
            }
        }
    })
    .expect("add_reader");
    send(&lp, &b, messages[0].clone(), None);
    run_forever(&lp);
    for t in writers.borrow_mut().drain(..) {
        t.join().expect("writer thread");
    }
    assert_eq!(*got.borrow(), messages.concat());
    assert!(lp.remove_reader(fd));
    close(&lp);
}

/// A writer runs when its fd is writable, and again once a full send buffer drains.
pub fn writer_fires_when_writable(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    let fd = a.as_raw_fd();
    let calls = Counter::new();
    let (lp2, c) = (lp.clone(), calls.clone());
    lp.add_writer(fd, move || {
        c.bump();
        assert!(lp2.remove_writer(fd));
        lp2.stop();
    })
    .expect("add_writer");
    run_forever(&lp);
    assert_eq!(calls.get(), 1);

    let filled = fill(&a);
    assert!(filled > 0);
    let a = Rc::new(a);
    let wrote = Counter::new();
    let (lp2, a2, w) = (lp.clone(), a.clone(), wrote.clone());
    lp.add_writer(fd, move || match (&*a2).write(b"!") {
        Ok(_) => {
            w.bump();
            assert!(lp2.remove_writer(fd));
            lp2.stop();
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("write failed: {e}"),
    })
    .expect("add_writer");
    let reader = std::thread::spawn(move || {
        crate::util::thread_sleep(20);
        b.set_nonblocking(false).expect("set_nonblocking");
        let mut sink = vec![0u8; filled];
        (&b).read_exact(&mut sink).expect("read");
        b
    });
    run_forever(&lp);
    let _b = reader.join().expect("reader thread");
    assert_eq!(
        wrote.get(),
        1,
        "the writer did not run after the send buffer drained"
    );
    close(&lp);
}

/// A reader and a writer on the same fd are independent: removing one keeps the other.
pub fn reader_and_writer_share_an_fd(factory: Factory) {
    let lp = new_loop(factory);
    let (a, b) = socketpair();
    (&b).write_all(b"x").expect("write");
    let fd = a.as_raw_fd();
    let (r, w) = (Counter::new(), Counter::new());
    lp.add_reader(fd, counting(&r)).expect("add_reader");
    lp.add_writer(fd, counting(&w)).expect("add_writer");
    run_once(&lp);
    assert_eq!((r.get(), w.get()), (1, 1), "(reader, writer) calls");
    assert!(lp.remove_writer(fd));
    run_once(&lp);
    assert_eq!(
        (r.get(), w.get()),
        (2, 1),
        "removing the writer disturbed the reader"
    );
    lp.add_writer(fd, counting(&w)).expect("add_writer");
    assert!(lp.remove_reader(fd));
    run_once(&lp);
    assert_eq!(
        (r.get(), w.get()),
        (2, 2),
        "removing the reader disturbed the writer"
    );
    assert!(lp.remove_writer(fd));
    run_once(&lp);
    assert_eq!((r.get(), w.get()), (2, 2));
    close(&lp);
}

/// A reader on a pipe sees the data, then the end of file when the write end closes.
pub fn reader_on_pipe_sees_data_and_eof(factory: Factory) {
    let lp = new_loop(factory);
    let (rd, wr) = pipe();
    let fd = rd.as_raw_fd();
    let got = Rc::new(RefCell::new(Vec::new()));
    let (lp2, g) = (lp.clone(), got.clone());
    lp.add_reader(fd, move || {
        let (data, eof) = drain(&rd);
        g.borrow_mut().extend_from_slice(&data);
        if eof {
            assert!(lp2.remove_reader(fd));
            lp2.stop();
        }
    })
    .expect("add_reader on a pipe");
    let writer = std::thread::spawn(move || {
        for chunk in [&b"hello "[..], b"pipe"] {
            crate::util::thread_sleep(5);
            (&wr).write_all(chunk).expect("write");
        }
        drop(wr);
    });
    run_forever(&lp);
    writer.join().expect("writer thread");
    assert_eq!(*got.borrow(), b"hello pipe");
    close(&lp);
}

/// Watching a bad fd is an error, not a panic; the loop keeps working.
pub fn add_reader_bad_fd_is_error(factory: Factory) {
    let lp = new_loop(factory);
    let unused: RawFd = (1_000_000..1_000_100)
        .find(|&fd| !crate::util::fd_is_open(fd))
        .expect("a free fd number");
    for fd in [-1, unused] {
        assert!(
            lp.add_reader(fd, || {}).is_err(),
            "add_reader({fd}) must fail"
        );
        assert!(
            lp.add_writer(fd, || {}).is_err(),
            "add_writer({fd}) must fail"
        );
        assert!(!lp.remove_reader(fd));
        assert!(!lp.remove_writer(fd));
    }
    run_once(&lp);
    assert_eq!(crate::util::block_on(&lp, async { 2 }), 2);
    close(&lp);
}

/// `add_reader`/`add_writer` on a regular file or a directory fail with EPERM on every backend,
/// as epoll and asyncio's selectors refuse them (they would be "ready" forever).
pub fn add_reader_on_regular_file_is_refused(factory: Factory) {
    let lp = new_loop(factory);
    let dir = std::env::temp_dir();
    let file = tempfile_in(&dir);
    let dir_fd = std::fs::File::open(&dir).expect("open the temp directory");
    for fd in [file.as_raw_fd(), dir_fd.as_raw_fd()] {
        for (what, res) in [
            ("add_reader", lp.add_reader(fd, || panic!("called"))),
            ("add_writer", lp.add_writer(fd, || panic!("called"))),
        ] {
            match res {
                Err(loop_api::LoopError::Io(e)) if e.raw_os_error() == Some(libc::EPERM) => {}
                other => panic!("{what} on a regular file or directory gave {other:?}, not EPERM"),
            }
        }
        assert!(!lp.remove_reader(fd));
        assert!(!lp.remove_writer(fd));
    }
    run_once(&lp);
    close(&lp);
}

/// A regular file of our own in `dir` (removed at once; the open fd keeps it).
fn tempfile_in(dir: &std::path::Path) -> std::fs::File {
    let path = dir.join(format!(
        "loop-conformance-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let file = std::fs::File::create(&path).expect("create a temp file");
    std::fs::remove_file(&path).expect("remove the temp file");
    file
}

/// A reader (or writer) whose fd is closed without `remove_reader` is never called again,
/// whatever happens to the socket behind it, and the loop does not spin: as on epoll, where a
/// closed fd leaves the set. (Closing first is the user's mistake; asyncio says remove first.)
pub fn watch_of_a_closed_fd_is_never_called(factory: Factory) {
    let lp = new_loop(factory);
    // Closed inside its own callback while readable.
    let (a, mut b) = socketpair();
    b.write_all(b"x").expect("write");
    let calls = Counter::default();
    let a = Rc::new(RefCell::new(Some(a)));
    {
        let (calls, a) = (calls.clone(), a.clone());
        let fd = a.borrow().as_ref().map(|s| s.as_raw_fd()).expect("socket");
        lp.add_reader(fd, move || {
            calls.bump();
            drop(a.borrow_mut().take());
        })
        .expect("add_reader");
    }
    // Closed while waiting (nothing to read yet), then the peer writes and closes.
    let (c, mut d) = socketpair();
    let waiting = Counter::default();
    lp.add_reader(c.as_raw_fd(), counting(&waiting))
        .expect("add_reader");
    let (e, f) = socketpair();
    let writing = Counter::default();
    fill(&e);
    lp.add_writer(e.as_raw_fd(), counting(&writing))
        .expect("add_writer");
    run_once(&lp);
    drop(c);
    drop(e);
    let _ = d.write_all(b"late"); // EPIPE where closing `c` closed the socket at once
    drop(d);
    drop(f);
    let iterations = Counter::default();
    for _ in 0..50 {
        run_once(&lp);
        iterations.bump();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        calls.get(),
        1,
        "the reader ran after its fd was closed in it"
    );
    assert_eq!(waiting.get(), 0, "the reader of a closed fd was called");
    assert_eq!(writing.get(), 0, "the writer of a closed fd was called");
    assert_eq!(iterations.get(), 50);
    close(&lp);
}
