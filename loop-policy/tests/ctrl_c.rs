//! Ctrl-C during `run()`, as `asyncio.run` handles it: the first SIGINT cancels the main
//! future (`LoopError::Interrupted`), the second ends the process; a SIGINT handler of the
//! program's own is left alone.
//!
//! Signals are process-wide, so each scenario runs in a child process: this test binary runs
//! itself with `CTRL_C_SCENARIO` set (no test harness: `main` is on the main thread, where
//! `run()` installs its handler).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use loop_api::{LoopError, get_running_loop, sleep};
use loop_policy::Backend;

const SCENARIO: &str = "CTRL_C_SCENARIO";

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        child(&scenario);
        return;
    }
    let checks: [(&str, fn()); 5] = [
        ("first Ctrl-C cancels the main future", first_cancels),
        ("second Ctrl-C ends the process", second_exits),
        (
            "a SIGINT handler of the program's own wins",
            user_handler_wins,
        ),
        (
            "run_per_core: Ctrl-C stops every loop, on every backend",
            per_core_first_stops_all,
        ),
        (
            "run_per_core: a second Ctrl-C ends the process",
            per_core_second_exits,
        ),
    ];
    for (name, check) in checks {
        check();
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", checks.len());
}

/// The main future's guard: prints when dropped (cancelled), then blocks the loop's thread
/// for the given time (so only a second Ctrl-C can end the process meanwhile).
struct Cancelled(Duration);

impl Drop for Cancelled {
    fn drop(&mut self) {
        println!("cancelled");
        std::thread::sleep(self.0);
    }
}

/// Threads of the `run_per_core` scenarios.
const PER_CORE: usize = 3;

fn child(scenario: &str) {
    if let Some(rest) = scenario.strip_prefix("per_core_") {
        return per_core_child(rest);
    }
    loop_policy::install(Backend::Mio);
    let out = match scenario {
        "first" | "second" => {
            let block = if scenario == "second" { 30 } else { 0 };
            loop_policy::run(async move {
                let _guard = Cancelled(Duration::from_secs(block));
                println!("ready");
                sleep(Duration::from_secs(30)).await;
            })
        }
        "user" => loop_policy::run(async {
            let lp = get_running_loop().unwrap();
            let hit = std::rc::Rc::new(std::cell::Cell::new(false));
            let h = hit.clone();
            lp.add_signal_handler(libc::SIGINT, move || h.set(true))
                .unwrap();
            println!("ready");
            while !hit.get() {
                sleep(Duration::from_millis(5)).await;
            }
            println!("user handler ran");
        }),
        other => panic!("unknown scenario {other}"),
    };
    match out {
        Ok(()) => println!("finished"),
        Err(LoopError::Interrupted) => println!("interrupted"),
        Err(e) => println!("error: {e}"),
    }
}

/// Runs a scenario: sends SIGINT after each line in `signal_after`; gives the lines printed
/// and the exit status.
fn scenario(name: &str, signal_after: &[&str]) -> (Vec<String>, std::process::ExitStatus) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(SCENARIO, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if signal_after.contains(&line.as_str()) {
            // SAFETY: kill takes plain integers; `pid` is our child, not yet reaped.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        }
        lines.push(line);
    }
    (lines, child.wait().unwrap())
}

fn first_cancels() {
    let (lines, status) = scenario("first", &["ready"]);
    assert_eq!(lines, ["ready", "cancelled", "interrupted"]);
    assert!(status.success(), "{status:?}");
}

fn second_exits() {
    let (lines, status) = scenario("second", &["ready", "cancelled"]);
    assert_eq!(lines, ["ready", "cancelled"]);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

fn user_handler_wins() {
    let (lines, status) = scenario("user", &["ready"]);
    assert_eq!(lines, ["ready", "user handler ran", "finished"]);
    assert!(status.success(), "{status:?}");
}

/// `per_core_{first|second}_{BACKEND}`: `PER_CORE` loops on `BACKEND`, each printing `ready`
/// and waiting; each prints `cancelled` when its future is dropped (and with `second`, then
/// blocks its thread, so only a second Ctrl-C can end the process).
fn per_core_child(scenario: &str) {
    let (which, backend) = scenario.split_once('_').expect("per_core_WHICH_BACKEND");
    loop_policy::install(backend.parse().expect("a backend name"));
    let block = if which == "second" { 30 } else { 0 };
    let out = loop_policy::run_per_core(PER_CORE, move |_| async move {
        let _guard = Cancelled(Duration::from_secs(block));
        println!("ready");
        sleep(Duration::from_secs(30)).await;
    });
    match out {
        Ok(_) => println!("finished"),
        Err(LoopError::Interrupted) => println!("interrupted"),
        Err(e) => println!("error: {e}"),
    }
}

/// Runs a `run_per_core` scenario: one SIGINT once all threads are ready and (with
/// `second`) another once all were cancelled.
fn per_core_scenario(name: &str) -> (Vec<String>, std::process::ExitStatus) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(SCENARIO, name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let second = name.starts_with("per_core_second");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        lines.push(line.clone());
        let count = lines.iter().filter(|l| **l == line).count();
        if (line == "ready" || (second && line == "cancelled")) && count == PER_CORE {
            // SAFETY: kill takes plain integers; `pid` is our child, not yet reaped.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        }
    }
    (lines, child.wait().unwrap())
}

fn per_core_backends() -> Vec<Backend> {
    [Backend::Mio, Backend::Polling, Backend::Uring]
        .into_iter()
        .filter(|b| b.why_unavailable().is_none())
        .collect()
}

fn per_core_first_stops_all() {
    for backend in per_core_backends() {
        let (lines, status) = per_core_scenario(&format!("per_core_first_{backend}"));
        let mut expected = vec!["ready"; PER_CORE];
        expected.extend(vec!["cancelled"; PER_CORE]);
        expected.push("interrupted");
        assert_eq!(lines, expected, "{backend}");
        assert!(status.success(), "{backend}: {status:?}");
    }
}

fn per_core_second_exits() {
    for backend in per_core_backends() {
        let (lines, status) = per_core_scenario(&format!("per_core_second_{backend}"));
        let mut expected = vec!["ready"; PER_CORE];
        expected.extend(vec!["cancelled"; PER_CORE]);
        assert_eq!(lines, expected, "{backend}");
        assert_eq!(status.signal(), Some(libc::SIGINT), "{backend}: {status:?}");
    }
}
