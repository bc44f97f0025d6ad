//! The process-wide policy: get/set, the default made from `LOOP_BACKEND`, `install`.
//!
//! Every test here changes process-wide state, so each holds `GLOBAL` while it runs.

mod util;

use std::sync::{Arc, Mutex, MutexGuard};

use loop_api::{LoopError, LoopPolicy};
use loop_policy::{Backend, DefaultLoopPolicy, ENV_VAR};

static GLOBAL: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets (`Some`) or removes (`None`) `LOOP_BACKEND`.
fn set_env(value: Option<&str>) {
    // SAFETY: every test in this file holds GLOBAL while it runs, and only they read or change
    // the environment, so no other thread reads it while it changes.
    unsafe {
        match value {
            Some(v) => std::env::set_var(ENV_VAR, v),
            None => std::env::remove_var(ENV_VAR),
        }
    }
}

#[test]
fn default_policy_is_made_once_and_reset_by_none() {
    let _g = exclusive();
    loop_policy::set_event_loop_policy(None);
    let a = loop_policy::get_event_loop_policy();
    let b = loop_policy::get_event_loop_policy();
    assert!(Arc::ptr_eq(&a, &b));
    loop_policy::set_event_loop_policy(None);
    let c = loop_policy::get_event_loop_policy();
    assert!(!Arc::ptr_eq(&a, &c));
}

#[test]
fn set_event_loop_policy_replaces_the_policy() {
    let _g = exclusive();
    let mine: Arc<dyn LoopPolicy> = Arc::new(DefaultLoopPolicy::with_factory(util::null_loop));
    loop_policy::set_event_loop_policy(Some(mine.clone()));
    assert!(Arc::ptr_eq(&loop_policy::get_event_loop_policy(), &mine));
    assert_eq!(
        loop_policy::new_event_loop().unwrap().backend_name(),
        "null"
    );

    // The module-level functions use it: this test's thread is not the main thread.
    assert!(matches!(
        loop_policy::get_event_loop(),
        Err(LoopError::NoCurrentLoop { .. })
    ));
    let lp = loop_policy::new_event_loop().unwrap();
    loop_policy::set_event_loop(Some(lp.clone()));
    assert_eq!(loop_policy::get_event_loop().unwrap(), lp);
    assert_eq!(mine.get_event_loop().unwrap(), lp);
    loop_policy::set_event_loop(None);
    loop_policy::set_event_loop_policy(None);
}

#[test]
fn default_policy_follows_loop_backend() {
    let _g = exclusive();
    let saved = std::env::var(ENV_VAR).ok();

    set_env(Some("polling"));
    loop_policy::set_event_loop_policy(None);
    let lp = loop_policy::new_event_loop().unwrap();
    assert_eq!(lp.backend_name(), "polling");
    lp.close().unwrap();

    set_env(Some("uring"));
    loop_policy::set_event_loop_policy(None);
    util::assert_uring_agrees_with_probe(loop_policy::new_event_loop());

    set_env(Some("bogus"));
    loop_policy::set_event_loop_policy(None);
    match loop_policy::new_event_loop() {
        Err(LoopError::InvalidArgument(msg)) => assert!(msg.contains("bogus"), "{msg}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }

    set_env(Some("MIO"));
    loop_policy::set_event_loop_policy(None);
    let lp = loop_policy::new_event_loop().unwrap();
    assert_eq!(lp.backend_name(), "mio");
    lp.close().unwrap();

    set_env(saved.as_deref());
    loop_policy::set_event_loop_policy(None);
}

#[test]
fn install_overrides_the_environment() {
    let _g = exclusive();
    let saved = std::env::var(ENV_VAR).ok();
    set_env(Some("bogus"));
    loop_policy::install(Backend::Mio);
    let lp = loop_policy::new_event_loop().unwrap();
    assert_eq!(lp.backend_name(), "mio");
    lp.close().unwrap();

    loop_policy::install(Backend::Polling);
    let lp = loop_policy::new_event_loop().unwrap();
    assert_eq!(lp.backend_name(), "polling");
    lp.close().unwrap();
    set_env(saved.as_deref());
    loop_policy::set_event_loop_policy(None);
}
