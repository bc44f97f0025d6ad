//! Signal handlers: refused numbers, delivery exactly once on the loop's thread, the default
//! disposition restored on removal and at close (CONFORMANCE 26).
//!
//! Dispositions are process-wide, so these behaviours run alone ([`Isolation::Exclusive`]),
//! each with its own signals, none that a test harness relies on (never SIGINT or SIGTERM).
//!
//! [`Isolation::Exclusive`]: crate::Isolation::Exclusive

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use loop_api::{EventLoop, LoopError};

use crate::Factory;
use crate::fds::assert_no_new_fds;
use crate::util::{Log, close, new_loop, open_fds, run_forever, run_once, thread_sleep};

/// True if `sig` has its default disposition (`SIG_DFL`).
pub fn has_default_disposition(sig: i32) -> bool {
    // SAFETY: all-zero is a valid sigaction to receive the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid out-parameter.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "sigaction({sig}) query failed");
    old.sa_sigaction == libc::SIG_DFL
}

/// Sends `sig` to this process (any thread may take it).
fn send_to_self(sig: i32) {
    // SAFETY: kill takes plain integers; the handler is installed (the callers check).
    let rc = unsafe { libc::kill(libc::getpid(), sig) };
    assert_eq!(rc, 0, "kill(getpid(), {sig}) failed");
}

/// Stops `lp` a little after now (so a duplicate delivery would have time to show).
fn stop_soon(lp: &EventLoop) {
    let stopper = lp.clone();
    lp.call_later(Duration::from_millis(50), move || stopper.stop())
        .expect("call_later");
}

/// Invalid numbers, SIGKILL and SIGSTOP are `InvalidArgument`; nothing is installed.
pub fn invalid_signals_are_refused(factory: Factory) {
    let lp = new_loop(factory);
    for sig in [0, -1, 65, 1000, i32::MAX, libc::SIGKILL, libc::SIGSTOP] {
        match lp.add_signal_handler(sig, || {}) {
            Err(LoopError::InvalidArgument(msg)) => {
                assert!(!msg.is_empty());
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    assert!(msg.contains("cannot be caught"), "message: {msg}");
                }
            }
            other => panic!("add_signal_handler({sig}) gave {other:?}, expected InvalidArgument"),
        }
        assert!(!lp.remove_signal_handler(sig));
    }
    assert!(has_default_disposition(libc::SIGKILL));
    close(&lp);
}

/// A signal sent from another thread while the loop is blocked (no timer, no ready work) runs
/// its handler exactly once, on the loop's thread.
pub fn signal_wakes_blocked_loop_once_on_its_thread(factory: Factory) {
    let sig = libc::SIGUSR1;
    let lp = new_loop(factory);
    let seen: Log<thread::ThreadId> = Log::new();
    let (s, stopper) = (seen.clone(), lp.clone());
    lp.add_signal_handler(sig, move || {
        s.push(thread::current().id());
        stop_soon(&stopper);
    })
    .expect("add_signal_handler");
    let sender = thread::spawn(move || {
        thread_sleep(50);
        send_to_self(sig);
    });
    run_forever(&lp); // blocks in the driver's wait until the signal arrives
    sender.join().expect("sender thread");
    assert_eq!(
        seen.get(),
        [thread::current().id()],
        "deliveries and their threads"
    );
    assert!(lp.remove_signal_handler(sig));
    assert!(has_default_disposition(sig));
    close(&lp);
}

/// A signal raised inside a callback does not run its handler inline: it runs once, later,
/// from the loop.
pub fn raised_signal_runs_handler_later(factory: Factory) {
    let sig = libc::SIGUSR2;
    let lp = new_loop(factory);
    let count = Rc::new(Cell::new(0));
    let (c, stopper) = (count.clone(), lp.clone());
    lp.add_signal_handler(sig, move || {
        c.set(c.get() + 1);
        stop_soon(&stopper);
    })
    .expect("add_signal_handler");
    let c = count.clone();
    lp.call_soon(move || {
        // SAFETY: raise takes a plain integer; the handler is installed.
        unsafe { libc::raise(sig) };
        assert_eq!(c.get(), 0, "the handler ran inside raise()");
    })
    .expect("call_soon");
    run_forever(&lp);
    assert_eq!(count.get(), 1);
    assert!(lp.remove_signal_handler(sig));
    close(&lp);
}

/// Removing restores `SIG_DFL` (true, then false); handling the signal again afterwards works.
pub fn remove_signal_handler_restores_default(factory: Factory) {
    let sig = libc::SIGWINCH;
    let lp = new_loop(factory);
    assert!(
        has_default_disposition(sig),
        "precondition: SIGWINCH has SIG_DFL"
    );
    lp.add_signal_handler(sig, || {})
        .expect("add_signal_handler");
    assert!(!has_default_disposition(sig), "no handler installed");
    assert!(lp.remove_signal_handler(sig));
    assert!(
        has_default_disposition(sig),
        "removal did not restore SIG_DFL"
    );
    assert!(!lp.remove_signal_handler(sig), "second removal");
    // Installed again after a restore, it is delivered again.
    let count = Rc::new(Cell::new(0));
    let (c, stopper) = (count.clone(), lp.clone());
    lp.add_signal_handler(sig, move || {
        c.set(c.get() + 1);
        stop_soon(&stopper);
    })
    .expect("add_signal_handler again");
    assert!(!has_default_disposition(sig));
    send_to_self(sig);
    run_forever(&lp);
    assert_eq!(count.get(), 1, "deliveries after re-adding the handler");
    assert!(lp.remove_signal_handler(sig));
    assert!(has_default_disposition(sig));
    close(&lp);
}

/// Adding a handler for a signal that has one replaces it.
pub fn re_adding_signal_handler_replaces_it(factory: Factory) {
    let sig = libc::SIGURG;
    let lp = new_loop(factory);
    let log: Log<&'static str> = Log::new();
    let l = log.clone();
    lp.add_signal_handler(sig, move || l.push("first"))
        .expect("add_signal_handler");
    let (l, stopper) = (log.clone(), lp.clone());
    lp.add_signal_handler(sig, move || {
        l.push("second");
        stop_soon(&stopper);
    })
    .expect("add_signal_handler again");
    send_to_self(sig);
    run_forever(&lp);
    assert_eq!(log.get(), ["second"]);
    assert!(lp.remove_signal_handler(sig));
    assert!(!lp.remove_signal_handler(sig));
    close(&lp);
}

/// Two loops handling one signal both get it; the disposition is restored only when the last
/// one removes its handler.
pub fn two_loops_share_a_signal(factory: Factory) {
    let sig = libc::SIGUSR1;
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let other = thread::spawn(move || {
        let lp = new_loop(factory);
        let stopper = lp.clone();
        lp.add_signal_handler(sig, move || stop_soon(&stopper))
            .expect("add_signal_handler on the other loop");
        ready_tx.send(()).expect("send");
        run_forever(&lp); // until the signal
        go_rx.recv().expect("recv");
        let removed = lp.remove_signal_handler(sig);
        close(&lp);
        removed
    });
    let lp = new_loop(factory);
    let count = Rc::new(Cell::new(0));
    let (c, stopper) = (count.clone(), lp.clone());
    lp.add_signal_handler(sig, move || {
        c.set(c.get() + 1);
        stop_soon(&stopper);
    })
    .expect("add_signal_handler");
    ready_rx.recv().expect("recv");
    send_to_self(sig);
    run_forever(&lp);
    assert_eq!(count.get(), 1);
    assert!(lp.remove_signal_handler(sig));
    assert!(
        !has_default_disposition(sig),
        "SIG_DFL restored while another loop still handles the signal"
    );
    go_tx.send(()).expect("send");
    assert!(
        other.join().expect("other loop's thread"),
        "the other loop's removal"
    );
    assert!(
        has_default_disposition(sig),
        "SIG_DFL not restored after the last removal"
    );
    close(&lp);
}

/// Closing a loop removes its handlers (restoring `SIG_DFL`) and releases their descriptors;
/// a closed loop refuses new handlers.
pub fn close_releases_signal_handlers(factory: Factory) {
    let sig = libc::SIGVTALRM;
    let before = open_fds();
    let lp = new_loop(factory);
    lp.add_signal_handler(sig, || {})
        .expect("add_signal_handler");
    lp.add_signal_handler(libc::SIGWINCH, || {})
        .expect("add_signal_handler");
    run_once(&lp);
    close(&lp);
    assert!(has_default_disposition(sig));
    assert!(has_default_disposition(libc::SIGWINCH));
    assert_no_new_fds(&before, &open_fds(), "a closed loop with signal handlers");
    match lp.add_signal_handler(sig, || {}) {
        Err(LoopError::Closed) => {}
        other => panic!("add_signal_handler on a closed loop gave {other:?}"),
    }
    assert!(!lp.remove_signal_handler(sig));
    assert!(has_default_disposition(sig));
}
