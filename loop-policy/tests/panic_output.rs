//! A panic the loop catches and reports is printed once, by the report ("Exception in
//! callback ..." with the panic's message and location), not also by Rust's panic hook; one it
//! returns (`run_until_complete`'s) is printed once by the hook; one delivered as an executor
//! job's outcome is not printed at all. On every backend.
//!
//! The panics run in a child process (this test binary again, with `PANIC_OUTPUT_CHILD` set and
//! `LOOP_BACKEND` naming the backend) whose stderr is counted.

use std::process::Command;
use std::time::Duration;

use loop_api::{LoopError, TaskError};
use loop_policy::Backend;

const CHILD_VAR: &str = "PANIC_OUTPUT_CHILD";

/// The child: panics in a callback, a task, an executor job and `run_until_complete`'s future,
/// with the default exception handler.
fn child() {
    let backend = Backend::from_env().expect("LOOP_BACKEND");
    if !backend.is_available() {
        println!("SKIP: {} is not available here", backend.name());
        return;
    }
    let lp = backend.new_event_loop().expect("new_event_loop");
    lp.call_soon(|| panic!("callback-boom-0x5eed"))
        .expect("call_soon");
    let _task = lp
        .create_task(async {
            loop_api::yield_now().await;
            panic!("task-boom-0x5eed");
        })
        .expect("create_task");
    let lp2 = lp.clone();
    let job = lp.run_until_complete(async move {
        loop_api::sleep(Duration::from_millis(5)).await;
        lp2.run_in_executor(|| -> u32 { panic!("job-boom-0x5eed") })
            .await
    });
    match job {
        Ok(Err(TaskError::Panicked(m))) => println!("job outcome: {m}"),
        other => panic!("expected the job to end Panicked, got {other:?}"),
    }
    let main = lp.run_until_complete(async {
        loop_api::yield_now().await;
        panic!("main-boom-0x5eed");
    });
    match main {
        Err(LoopError::Panicked(m)) => println!("main outcome: {m}"),
        other => panic!("expected run_until_complete to give Panicked, got {other:?}"),
    }
    lp.close().expect("close");
}

/// Runs the child on `backend`; gives (stdout, stderr).
fn run_child(backend: &str) -> (String, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["panics_are_printed_once", "--exact", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_VAR, "1")
        .env(loop_policy::ENV_VAR, backend)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child on {backend} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn panics_are_printed_once() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return child();
    }
    for backend in ["mio", "polling", "uring"] {
        let (stdout, stderr) = run_child(backend);
        if stdout.contains("SKIP:") {
            eprintln!("{backend}: skipped ({})", stdout.trim());
            continue;
        }
        let count = |what: &str| stderr.matches(what).count();
        let context = format!("on {backend}, stderr was:\n{stderr}");
        assert_eq!(count("callback-boom-0x5eed"), 1, "{context}");
        assert_eq!(count("Exception in callback"), 1, "{context}");
        assert_eq!(count("task-boom-0x5eed"), 1, "{context}");
        assert_eq!(count("panicked\ntask: "), 1, "{context}");
        assert!(
            count("location: loop-policy/tests/panic_output.rs:") >= 2,
            "the reports name where the panics were raised, {context}"
        );
        // Delivered as the job's outcome, not printed.
        assert_eq!(count("job-boom-0x5eed"), 0, "{context}");
        assert!(stdout.contains("job outcome: job-boom-0x5eed"), "{stdout}");
        // Returned by run_until_complete, so printed by the hook, once.
        assert_eq!(count("main-boom-0x5eed"), 1, "{context}");
        assert!(
            stdout.contains("main outcome: main-boom-0x5eed"),
            "{stdout}"
        );
    }
}
