//! Fibonacci numbers for the numbers typed on stdin, computed without blocking the loop.
//!
//! ```text
//! cargo run --example fib_stdin                # type numbers, one per line; Ctrl-D ends
//! printf '100000\n10\n' | cargo run --example fib_stdin
//! cargo run --example fib_stdin -- --blocking  # naive fib in one task poll, debug mode on
//! LOOP_MONITOR=127.0.0.1:5000 cargo run --example fib_stdin -- --blocking
//!                                              # then `nc 127.0.0.1 5000` and type ps
//! ```
//!
//! The seed program watches stdin with a selector and computes `fib(n)` in the loop. Here
//! `add_reader` watches fd 0; each line becomes a task that computes `fib(n)` iteratively and
//! gives the loop back every few thousand digit additions (`examples::fib`), so a small number
//! typed after a huge one is answered first, and a heartbeat timer never runs late.
//!
//! With `--blocking` the number is computed the naive recursive way in one poll of its task
//! (named `fib(N)`), with the loop's debug mode on: try 35 or 40, and see the loop report the slow callback and
//! the heartbeat report how long the loop was frozen.

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use examples::fib::{self, FibSession, Mode};
use loop_api::EventLoop;

const USAGE: &str = "usage: fib_stdin [--blocking]   (numbers on stdin, one per line)";

/// How often the heartbeat checks that the loop is responsive, and how late counts as frozen.
const HEARTBEAT: Duration = Duration::from_millis(100);
const FROZEN: Duration = Duration::from_millis(50);

/// A timer every [`HEARTBEAT`] that says when the loop could not run it on time.
fn heartbeat(lp: &EventLoop, due: Instant) {
    let late = lp.time().saturating_duration_since(due);
    if late > FROZEN {
        println!(
            "(the heartbeat ran {} ms late: the loop was blocked)",
            late.as_millis()
        );
    }
    let next = lp.clone();
    let due = lp.time() + HEARTBEAT;
    // Only fails once the loop is closed, when no heartbeat is wanted.
    let _ = lp.call_at(due, move || heartbeat(&next, due));
}

/// A new handle on stdin (a `dup` of fd 0), owned so it can be handed to the loop.
fn stdin_file() -> std::io::Result<File> {
    Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
}

fn run(mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    let lp = loop_policy::get_event_loop()?;
    if mode == Mode::Blocking {
        lp.set_debug(true);
        println!(
            "debug mode: callbacks slower than {:?} are reported",
            lp.slow_callback_duration()
        );
    }
    if std::io::stdin().is_terminal() {
        println!("enter a number per line (Ctrl-D to end)");
    }
    let stopper = lp.clone();
    let session = FibSession::new(
        &lp,
        mode,
        |answer| println!("{answer}"),
        move || stopper.stop(),
    );
    if let Err(e) = fib::watch_reader(&session, stdin_file()?) {
        // epoll cannot watch a regular file or /dev/null: read those on the thread pool.
        eprintln!("(stdin cannot be watched: {e}; reading it on the thread pool instead)");
        lp.create_task(fib::read_in_executor(session.clone(), stdin_file()?))?;
    }
    heartbeat(&lp, lp.time());
    let ran = lp.run_forever();
    lp.close()?;
    Ok(ran?)
}

fn main() -> ExitCode {
    let mut mode = Mode::Chunked;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--blocking" => mode = Mode::Blocking,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("fib_stdin: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fib_stdin: {e}");
            ExitCode::FAILURE
        }
    }
}
