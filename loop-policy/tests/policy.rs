//! `DefaultLoopPolicy`'s per-thread rules, on a loop that does nothing (no backend needed).

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use loop_api::{LoopError, LoopPolicy};
use loop_policy::{Backend, DefaultLoopPolicy};
use util::null_loop;

/// Runs `f` on a new thread (named `name`, or unnamed for `None`) and returns its result.
fn on_thread<T: Send + 'static>(name: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let mut builder = thread::Builder::new();
    if let Some(name) = name {
        builder = builder.name(name.to_string());
    }
    builder.spawn(f).unwrap().join().unwrap()
}

fn null_policy() -> Arc<DefaultLoopPolicy> {
    Arc::new(DefaultLoopPolicy::with_factory(null_loop))
}

#[test]
fn worker_thread_gets_no_current_loop_naming_it() {
    let policy = null_policy();
    let p = policy.clone();
    let err = on_thread(Some("io-worker"), move || p.get_event_loop().unwrap_err());
    match &err {
        LoopError::NoCurrentLoop { thread } => assert_eq!(thread, "io-worker"),
        other => panic!("expected NoCurrentLoop, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "There is no current event loop in thread 'io-worker'."
    );
}

#[test]
fn unnamed_thread_is_named_by_its_id() {
    let policy = null_policy();
    let err = on_thread(None, move || {
        policy.get_event_loop().unwrap_err().to_string()
    });
    assert!(
        err.starts_with("There is no current event loop in thread 'Thread-"),
        "{err}"
    );
}

#[test]
fn set_event_loop_then_get_returns_it() {
    let policy = null_policy();
    on_thread(None, move || {
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone()));
        assert_eq!(policy.get_event_loop().unwrap(), lp);
        assert_eq!(policy.get_event_loop().unwrap(), lp);
        policy.set_event_loop(None);
        assert!(matches!(
            policy.get_event_loop(),
            Err(LoopError::NoCurrentLoop { .. })
        ));
    });
}

#[test]
fn closed_loop_is_returned_as_is_on_worker_threads() {
    let policy = null_policy();
    on_thread(None, move || {
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone()));
        lp.close().unwrap();
        let got = policy.get_event_loop().unwrap();
        assert_eq!(got, lp);
        assert!(got.is_closed());
    });
}

#[test]
fn loops_are_per_thread() {
    let policy = null_policy();
    let p = policy.clone();
    on_thread(None, move || {
        let lp = p.new_event_loop().unwrap();
        p.set_event_loop(Some(lp.clone()));
        let p2 = p.clone();
        // Another thread does not see this thread's loop.
        let other = on_thread(Some("other"), move || p2.get_event_loop().is_err());
        assert!(other);
        assert_eq!(p.get_event_loop().unwrap(), lp);
    });
}

#[test]
fn two_policies_never_share_loops() {
    let a = null_policy();
    let b = null_policy();
    on_thread(None, move || {
        let la = a.new_event_loop().unwrap();
        a.set_event_loop(Some(la.clone()));
        assert!(b.get_event_loop().is_err(), "b has no loop on this thread");
        let lb = b.new_event_loop().unwrap();
        b.set_event_loop(Some(lb.clone()));
        assert_ne!(la, lb);
        assert_eq!(a.get_event_loop().unwrap(), la);
        assert_eq!(b.get_event_loop().unwrap(), lb);
    });
}

#[test]
fn with_factory_makes_every_loop() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let policy = DefaultLoopPolicy::with_factory(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        null_loop()
    });
    let a = policy.new_event_loop().unwrap();
    let b = policy.new_event_loop().unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert_ne!(a, b);
    assert_eq!(a.backend_name(), "null");
    assert_eq!(policy.backend(), None);
}

#[test]
fn factory_errors_are_returned() {
    let policy =
        DefaultLoopPolicy::with_factory(|| Err(LoopError::NotSupported("no loops today".into())));
    match policy.new_event_loop() {
        Err(LoopError::NotSupported(msg)) => assert_eq!(msg, "no loops today"),
        other => panic!("expected the factory's error, got {other:?}"),
    }
}

#[test]
fn dropping_a_policy_releases_its_loops() {
    let policy = null_policy();
    let p = policy.clone();
    let (to_thread, from_main) = std::sync::mpsc::channel::<()>();
    let worker = thread::spawn(move || {
        let lp = p.new_event_loop().unwrap();
        p.set_event_loop(Some(lp.clone()));
        let weak = lp.downgrade();
        drop((lp, p));
        from_main.recv().unwrap();
        // The policy is gone; using any policy here releases its loop.
        let other = DefaultLoopPolicy::with_factory(null_loop);
        other.set_event_loop(None);
        weak.upgrade().is_none()
    });
    drop(policy);
    to_thread.send(()).unwrap();
    assert!(
        worker.join().unwrap(),
        "the dropped policy's loop was released"
    );

    // On the thread that drops the policy, at once.
    on_thread(None, || {
        let policy = DefaultLoopPolicy::with_factory(null_loop);
        let lp = policy.new_event_loop().unwrap();
        policy.set_event_loop(Some(lp.clone()));
        let weak = lp.downgrade();
        drop(lp);
        drop(policy);
        assert!(weak.upgrade().is_none());
    });
}

#[test]
fn policy_with_the_polling_backend_makes_polling_loops() {
    let policy = DefaultLoopPolicy::with_backend(Backend::Polling);
    assert_eq!(policy.backend(), Some(Backend::Polling));
    let lp = policy.new_event_loop().unwrap();
    assert_eq!(lp.backend_name(), "polling");
    lp.close().unwrap();
    assert!(format!("{policy:?}").contains("Polling"));
}

#[test]
fn unavailable_backend_is_an_error_not_a_panic() {
    // io_uring may or may not run here (tests/fallback.rs forces both cases in child
    // processes); either way the policy agrees with the probe and never panics.
    let policy = DefaultLoopPolicy::with_backend(Backend::Uring);
    util::assert_uring_agrees_with_probe(policy.new_event_loop());
}
