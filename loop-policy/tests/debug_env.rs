//! `LOOP_DEBUG=1` turns debug mode on for the loops the default policy makes, on every
//! backend: a slow task poll is reported with the task's name and creation site, a task that
//! never ran is reported when the loop closes, a loop dropped without `close()` is reported
//! once. `LOOP_DEBUG=0` leaves it off; an unknown value turns it on and says so.
//!
//! Each case runs in a child process (this test binary again, with `DEBUG_ENV_CHILD` set and
//! `LOOP_BACKEND` naming the backend) whose stderr, where the default exception handler
//! prints, is read.

use std::future::pending;
use std::process::Command;
use std::time::Duration;

use loop_api::AnyTask;
use loop_policy::Backend;

const CHILD_VAR: &str = "DEBUG_ENV_CHILD";

/// The child: a loop from the default policy, a slow task, a task that never runs, then a
/// loop dropped unclosed. Prints each task's creation site on stdout.
fn child() {
    let backend = Backend::from_env().expect("LOOP_BACKEND");
    if !backend.is_available() {
        println!("SKIP: {} is not available here", backend.name());
        return;
    }
    let lp = loop_policy::new_event_loop().expect("new_event_loop");
    println!("debug: {}", lp.get_debug());
    lp.set_slow_callback_duration(Duration::from_millis(20));
    let slow = lp
        .create_task_named("slow-0x5eed", async {
            loop_api::yield_now().await;
            std::thread::sleep(Duration::from_millis(50));
        })
        .expect("create_task");
    println!("slow site: {}", AnyTask::from(&slow).created_at());
    lp.run_until_complete(slow)
        .expect("run")
        .expect("the slow task");
    let never = lp
        .create_task_named("never-0x5eed", pending::<()>())
        .expect("create_task");
    println!("never site: {}", AnyTask::from(&never).created_at());
    lp.close().expect("close");
    let unclosed = loop_policy::new_event_loop().expect("new_event_loop");
    drop(unclosed);
}

/// Runs the child on `backend` with `LOOP_DEBUG=debug`; gives (stdout, stderr).
fn run_child(backend: &str, debug: &str) -> (String, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["loop_debug_from_the_environment", "--exact", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_VAR, "1")
        .env(loop_policy::ENV_VAR, backend)
        .env(loop_policy::DEBUG_ENV_VAR, debug)
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

/// The value printed after `label` on stdout (the first line also has the harness's "test
/// ... " before it).
fn printed<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.split_once(label).map(|(_, value)| value))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

#[test]
fn loop_debug_from_the_environment() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return child();
    }
    for backend in ["mio", "polling", "uring"] {
        let (stdout, stderr) = run_child(backend, "1");
        if stdout.contains("SKIP:") {
            eprintln!("{backend}: skipped ({})", stdout.trim());
            continue;
        }
        let context = format!("on {backend}, stdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(printed(&stdout, "debug: "), "true", "{context}");
        let slow_site = printed(&stdout, "slow site: ");
        let never_site = printed(&stdout, "never site: ");
        let count = |what: &str| stderr.matches(what).count();
        let slow = format!("Executing task slow-0x5eed (created at {slow_site}) took");
        assert_eq!(count(&slow), 1, "the slow poll, {context}");
        let never =
            format!("Task never-0x5eed (created at {never_site}) was destroyed but it is pending");
        assert_eq!(count(&never), 1, "the task that never ran, {context}");
        assert_eq!(count("unclosed event loop"), 1, "{context}");

        let (stdout, stderr) = run_child(backend, "0");
        let context = format!("LOOP_DEBUG=0 on {backend}, stdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(printed(&stdout, "debug: "), "false", "{context}");
        assert!(!stderr.contains("0x5eed"), "{context}");
        assert!(!stderr.contains("unclosed event loop"), "{context}");

        let (stdout, stderr) = run_child(backend, "maybe");
        let context =
            format!("LOOP_DEBUG=maybe on {backend}, stdout:\n{stdout}\nstderr:\n{stderr}");
        assert_eq!(printed(&stdout, "debug: "), "true", "{context}");
        assert_eq!(
            stderr.matches("LOOP_DEBUG=\"maybe\" is not one of").count(),
            1,
            "an unknown value is named once, {context}"
        );
    }
}
