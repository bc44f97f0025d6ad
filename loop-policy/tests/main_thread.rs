//! What only the main thread gets from `DefaultLoopPolicy`: a loop made on first use.
//!
//! `cargo test` runs tests on worker threads, so this file has no test harness
//! (`harness = false` in Cargo.toml): `main` below runs on the process's main thread. It is the
//! only thread until it spawns one, so setting `LOOP_BACKEND` here races with nothing.

use loop_api::{LoopError, LoopPolicy};
use loop_policy::{Backend, DefaultLoopPolicy};

fn main() {
    let checks: [(&str, fn()); 6] = [
        (
            "main thread gets a loop made on first use",
            first_use_makes_a_loop,
        ),
        (
            "a closed loop is replaced on the main thread",
            closed_loop_is_replaced,
        ),
        ("set_event_loop(None) means no loop", set_none_means_no_loop),
        ("other threads get NoCurrentLoop", other_threads_get_no_loop),
        (
            "a bad LOOP_BACKEND is an error, not a panic",
            bad_env_is_an_error,
        ),
        (
            "run() leaves the main thread without a loop",
            run_unsets_the_loop,
        ),
    ];
    for (name, check) in checks {
        check();
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", checks.len());
}

fn first_use_makes_a_loop() {
    let policy = DefaultLoopPolicy::with_backend(Backend::Mio);
    let a = policy
        .get_event_loop()
        .expect("the main thread gets a loop");
    let b = policy.get_event_loop().unwrap();
    assert_eq!(a, b, "the same loop every time");
    assert_eq!(a.backend_name(), "mio");
    let other = DefaultLoopPolicy::with_backend(Backend::Mio);
    assert_ne!(
        other.get_event_loop().unwrap(),
        a,
        "two policies never share loops"
    );
    a.close().unwrap();
}

fn closed_loop_is_replaced() {
    let policy = DefaultLoopPolicy::with_backend(Backend::Mio);
    let first = policy.get_event_loop().unwrap();
    first.close().unwrap();
    let second = policy.get_event_loop().unwrap();
    assert_ne!(first, second);
    assert!(!second.is_closed());
    assert_eq!(second.run_until_complete(async { 5 }).unwrap(), 5);
    second.close().unwrap();
}

fn set_none_means_no_loop() {
    let policy = DefaultLoopPolicy::with_backend(Backend::Mio);
    policy.set_event_loop(None);
    match policy.get_event_loop() {
        Err(LoopError::NoCurrentLoop { thread }) => assert_eq!(thread, "main"),
        other => panic!("expected NoCurrentLoop, got {other:?}"),
    }
    let lp = policy.new_event_loop().unwrap();
    policy.set_event_loop(Some(lp.clone()));
    assert_eq!(policy.get_event_loop().unwrap(), lp);
    lp.close().unwrap();
}

fn other_threads_get_no_loop() {
    let policy = std::sync::Arc::new(DefaultLoopPolicy::with_backend(Backend::Mio));
    let main_loop = policy.get_event_loop().unwrap();
    let p = policy.clone();
    let err = std::thread::Builder::new()
        .name("helper".into())
        .spawn(move || p.get_event_loop().unwrap_err().to_string())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(err, "There is no current event loop in thread 'helper'.");
    assert_eq!(policy.get_event_loop().unwrap(), main_loop);
    main_loop.close().unwrap();
}

fn bad_env_is_an_error() {
    // SAFETY: no other thread runs now (the helper thread above was joined), so nothing reads
    // the environment while it changes.
    unsafe { std::env::set_var(loop_policy::ENV_VAR, "not-a-backend") };
    let policy = DefaultLoopPolicy::new();
    // SAFETY: as above.
    unsafe { std::env::remove_var(loop_policy::ENV_VAR) };
    for result in [policy.get_event_loop(), policy.new_event_loop()] {
        match result {
            Err(LoopError::InvalidArgument(msg)) => {
                assert!(msg.contains("not-a-backend"), "{msg}");
                assert!(msg.contains("auto, mio, polling, uring"), "{msg}");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
}

fn run_unsets_the_loop() {
    loop_policy::install(Backend::Mio);
    let inside =
        loop_policy::run(async { loop_policy::get_event_loop().map(|lp| lp.backend_name()) });
    assert_eq!(inside.unwrap().unwrap(), "mio");
    assert!(matches!(
        loop_policy::get_event_loop(),
        Err(LoopError::NoCurrentLoop { .. })
    ));
    loop_policy::set_event_loop_policy(None);
}
