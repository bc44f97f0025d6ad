//! The small example programs run as a user runs them, and say what their docs say.
//! (The servers have tests of their own: echo.rs, net.rs, fib.rs, ...)

mod util;

use std::process::{Command, Output};

/// Runs example `name` with `args` and `LOOP_BACKEND=backend` (if given); `None` when the
/// example is not built (it is, under `cargo test`).
fn run(name: &str, args: &[&str], backend: Option<&str>) -> Option<Output> {
    let Some(bin) = util::example_binary(name) else {
        eprintln!("skipped: the {name} example is not built (run `cargo test -p examples`)");
        return None;
    };
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("LOOP_BACKEND");
    if let Some(b) = backend {
        cmd.env("LOOP_BACKEND", b);
    }
    Some(cmd.output().expect("start the example"))
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The backends a program can be asked for here (uring only where it runs).
fn backends() -> Vec<&'static str> {
    let mut all = vec!["mio", "polling"];
    if loop_policy::Backend::Uring.why_unavailable().is_none() {
        all.push("uring");
    }
    all
}

#[test]
fn hello_world_prints_and_stops() {
    for backend in backends() {
        let Some(out) = run("hello_world", &[], Some(backend)) else {
            return;
        };
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{backend}: {stderr}");
        assert_eq!(stdout, "Hello World\n", "{backend}");
    }
}

#[test]
fn sleep_timer_runs_two_sleepers_side_by_side() {
    let Some(out) = run("sleep_timer", &[], None) else {
        return;
    };
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // fast finishes both halves before slow's second half: they slept side by side.
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {stdout}"))
    };
    assert!(pos("fast: half 2") < pos("slow: half 2"), "{stdout}");
    assert!(pos("both woke up") > pos("slow: half 2"), "{stdout}");
}

#[test]
fn executor_keeps_the_loop_ticking() {
    let Some(out) = run("executor", &[], None) else {
        return;
    };
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("random bytes"), "{stdout}");
    assert!(stdout.contains("CPU-bound: "), "{stdout}");
    let ticks = stdout.lines().filter(|l| l.contains("tick")).count();
    // The blocking job sleeps 300 ms while the loop ticks every 100 ms.
    assert!(
        ticks >= 2,
        "the loop did not tick while the jobs ran: {stdout}"
    );
}

#[test]
fn choose_backend_runs_on_each_backend_asked_for() {
    for backend in backends() {
        for (args, env) in [(vec![backend], None), (vec![], Some(backend))] {
            let Some(out) = run("choose_backend", &args, env) else {
                return;
            };
            let (stdout, stderr) = text(&out);
            assert!(out.status.success(), "{backend}: {stderr}");
            assert!(
                stdout.contains(&format!("the loop runs on {backend}")),
                "{backend}: {stdout}"
            );
            assert!(stdout.contains("event loop backends:"), "{stdout}");
        }
    }
}

#[test]
fn choose_backend_explains_a_bad_name() {
    let Some(out) = run("choose_backend", &["epoll"], None) else {
        return;
    };
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("auto, mio, polling, uring"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
