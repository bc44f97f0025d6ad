//! Runs one behaviour on its own thread, with a watchdog and the process-wide fd lock.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::Duration;

use crate::{BEHAVIOURS, Behaviour, Factory, Isolation};

/// How long a behaviour may run before the watchdog fails it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared by normal tests, exclusive for those that count the process's file descriptors.
static SUITE_LOCK: RwLock<()> = RwLock::new(());

/// A held [`SUITE_LOCK`] guard of either kind.
enum Held {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

fn acquire(isolation: Isolation) -> Held {
    match isolation {
        Isolation::Shared => Held::Shared(shared_lock()),
        Isolation::Exclusive => {
            Held::Exclusive(SUITE_LOCK.write().unwrap_or_else(|p| p.into_inner()))
        }
    }
}

/// Takes the suite's lock in shared mode: hold it in tests of your own (in the same test
/// binary as the suite) that open file descriptors, so the suite's fd-counting behaviours do
/// not run meanwhile.
pub fn shared_lock() -> RwLockReadGuard<'static, ()> {
    SUITE_LOCK.read().unwrap_or_else(|p| p.into_inner())
}

/// The watchdog's limit: `LOOP_CONFORMANCE_TIMEOUT_SECS` if set to a number, else
/// [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    std::env::var("LOOP_CONFORMANCE_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// Runs `behaviour` against loops made by `factory`.
///
/// The body runs on a fresh thread named `module::name` (it calls the factory itself, since
/// a loop is `!Send`) while this thread holds the suite lock and waits at most [`timeout`].
///
/// # Panics
/// When the behaviour fails (with its panic message) or does not finish in time.
pub fn run(factory: Factory, behaviour: &Behaviour) {
    let name = behaviour.full_name();
    let body = behaviour.body;
    let held = acquire(behaviour.isolation);
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let spawned = thread::Builder::new().name(name.clone()).spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| body(factory)));
        let reports = crate::util::take_unexpected_reports();
        let outcome = match (outcome, reports.is_empty()) {
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(format!(
                "the loop reported to its exception handler (a callback or task panicked?):\n{}",
                reports.join("\n---\n")
            )),
            (Err(p), true) => Err(loop_api::panic_message(&*p)),
            (Err(p), false) => Err(format!(
                "{}\n(the loop had also reported:\n{})",
                loop_api::panic_message(&*p),
                reports.join("\n---\n")
            )),
        };
        // The receiver is gone only if the watchdog already gave up on us.
        let _ = tx.send(outcome);
    });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            drop(held);
            panic!("{name}: could not start the test thread: {e}");
        }
    };
    let limit = timeout();
    let outcome = rx.recv_timeout(limit);
    // Released before failing, so a failure does not poison the lock for the other tests.
    drop(held);
    match outcome {
        Ok(Ok(())) => {
            let _ = handle.join();
        }
        Ok(Err(message)) => {
            let _ = handle.join();
            panic!("{name} failed: {message}");
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name} did not finish within {} s: the backend hung (a missed wakeup, an event \
             never delivered, a deadlock, or a cancellation that is not prompt). The test \
             thread is left running; set LOOP_CONFORMANCE_TIMEOUT_SECS to change the limit.",
            limit.as_secs()
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let _ = handle.join();
            panic!("{name}: the test thread ended without reporting (it was killed?)");
        }
    }
}

/// Like [`run`], unless `behaviour` is named (`module::name`) in `skip`: then it prints the
/// reason and returns.
pub fn run_or_skip(factory: Factory, behaviour: &Behaviour, skip: &[(&str, &str)]) {
    let name = behaviour.full_name();
    if let Some((_, reason)) = skip.iter().find(|(n, _)| *n == name) {
        eprintln!("{name}: skipped on this backend: {reason}");
        return;
    }
    run(factory, behaviour);
}

/// The behaviour named `module::name`, if the suite has it.
pub fn find(full_name: &str) -> Option<&'static Behaviour> {
    BEHAVIOURS.iter().find(|b| b.full_name() == full_name)
}

/// Checks that every name in a skip list is a behaviour of the suite and has a reason.
///
/// # Panics
/// On an unknown name or an empty reason.
pub fn check_skip_list(skip: &[(&str, &str)]) {
    for (name, reason) in skip {
        assert!(
            find(name).is_some(),
            "the skip list names `{name}`, which is not a behaviour of the suite (write it as module::name)"
        );
        assert!(
            !reason.trim().is_empty(),
            "skipping `{name}` needs a reason"
        );
    }
}
