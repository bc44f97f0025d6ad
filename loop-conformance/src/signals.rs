//! Signal handlers: refused numbers, delivery exactly once on the loop's thread, the
//! disposition found at install (`SIG_DFL`, `SIG_IGN`) restored on removal and at close
//! (CONFORMANCE 26).
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

/// A signal's disposition, saved; put back on drop.
pub struct SavedDisposition {
    sig: i32,
    old: libc::sigaction,
}

impl SavedDisposition {
    /// Saves the disposition of `sig` and sets `handler` (`SIG_DFL`, `SIG_IGN`).
    ///
    /// # Panics
    /// If `sigaction` fails.
    pub fn set(sig: i32, handler: libc::sighandler_t) -> SavedDisposition {
        // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = handler;
        // SAFETY: as above, for the out-parameter.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid sigaction structs for the duration of the call.
        let rc = unsafe { libc::sigaction(sig, &new, &mut old) };
        assert_eq!(
            rc,
            0,
            "sigaction({sig}): {}",
            std::io::Error::last_os_error()
        );
        SavedDisposition { sig, old }
    }
}

impl std::fmt::Debug for SavedDisposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedDisposition")
            .field("sig", &self.sig)
            .field("handler", &self.old.sa_sigaction)
            .finish()
    }
}

impl Drop for SavedDisposition {
    fn drop(&mut self) {
        // SAFETY: restores the sigaction saved by `set`.
        unsafe { libc::sigaction(self.sig, &self.old, std::ptr::null_mut()) };
    }
}

/// The handler of `sig` now (`SIG_DFL`, `SIG_IGN` or a function's address).
pub fn current_handler(sig: i32) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid sigaction to receive the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid out-parameter.
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "sigaction({sig}) query failed");
    old.sa_sigaction
}

/// True if `sig` has its default disposition (`SIG_DFL`).
pub fn has_default_disposition(sig: i32) -> bool {
    current_handler(sig) == libc::SIG_DFL
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

/// Removing the handler of a signal found at `SIG_DFL` restores `SIG_DFL` (true, then
/// false); handling the signal again afterwards works.
pub fn remove_signal_handler_restores_the_disposition_found(factory: Factory) {
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

/// A signal found ignored (`SIG_IGN`, as the Rust runtime leaves SIGPIPE) is ignored again
/// once the last of two loops sharing it removes its handler, not put to `SIG_DFL`: raising
/// it then is harmless.
pub fn removal_restores_an_ignored_signal(factory: Factory) {
    let sig = libc::SIGUSR2;
    let _restore = SavedDisposition::set(sig, libc::SIG_IGN);
    let (a, b) = (new_loop(factory), new_loop(factory));
    a.add_signal_handler(sig, || {})
        .expect("add_signal_handler");
    b.add_signal_handler(sig, || {})
        .expect("add_signal_handler");
    assert_ne!(current_handler(sig), libc::SIG_IGN, "no handler installed");
    assert!(a.remove_signal_handler(sig));
    assert_ne!(
        current_handler(sig),
        libc::SIG_IGN,
        "restored while another loop still handles the signal"
    );
    assert!(b.remove_signal_handler(sig));
    assert_eq!(
        current_handler(sig),
        libc::SIG_IGN,
        "the last removal did not restore SIG_IGN"
    );
    // Added again and closed: the disposition found then (SIG_IGN still) comes back.
    a.add_signal_handler(sig, || {})
        .expect("add_signal_handler again");
    close(&a);
    assert_eq!(
        current_handler(sig),
        libc::SIG_IGN,
        "close did not restore SIG_IGN"
    );
    // SAFETY: raise takes a plain integer; SIGUSR2 is ignored (SIG_DFL would end the process).
    unsafe { libc::raise(sig) };
    close(&b);
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

/// Closing a loop removes its handlers (restoring the `SIG_DFL` found) and releases their descriptors;
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
