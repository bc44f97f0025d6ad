//! The loop monitor on a real program: `fib_stdin --blocking` run with `LOOP_MONITOR` (and
//! `LOOP_BACKEND`, on every backend); while the naive fib blocks the loop, `ps` over TCP
//! shows its task `fib(N)` Running.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous limit for what should take a moment (the machine is shared and noisy).
const WATCHDOG: Duration = Duration::from_secs(60);

fn backends() -> Vec<&'static str> {
    let mut all = vec!["mio", "polling"];
    if loop_policy::Backend::Uring.why_unavailable().is_none() {
        all.push("uring");
    }
    all
}

/// Lines of `reader`, read on a thread of their own.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Sends `command`, reads the reply (up to an empty line).
fn ask(conn: &mut BufReader<TcpStream>, command: &str) -> Vec<String> {
    conn.get_mut()
        .write_all(format!("{command}\n").as_bytes())
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(conn.read_line(&mut line).unwrap() > 0, "monitor closed");
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn ps_shows_the_blocking_fib_task_running() {
    let Some(bin) = util::example_binary("fib_stdin") else {
        eprintln!("skipped: the fib_stdin example is not built (run `cargo test -p examples`)");
        return;
    };
    for backend in backends() {
        let mut child = Command::new(&bin)
            .arg("--blocking")
            .env("LOOP_BACKEND", backend)
            .env("LOOP_MONITOR", "127.0.0.1:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        let serving = stderr.recv_timeout(WATCHDOG).unwrap();
        let addr = serving
            .strip_prefix("loop monitor: serving on ")
            .and_then(|rest| rest.strip_suffix(" (LOOP_MONITOR)"))
            .unwrap_or_else(|| panic!("{backend}: {serving:?}"))
            .to_string();
        let mut conn = BufReader::new(TcpStream::connect(&addr).unwrap());
        let mut greeting = String::new();
        conn.read_line(&mut greeting).unwrap();
        conn.read_line(&mut String::new()).unwrap();
        assert!(greeting.contains("loop monitor"), "{greeting}");

        // A larger number each time, until one blocks the loop long enough to be seen.
        let mut seen = None;
        for n in [30, 34, 37, 40] {
            stdin.write_all(format!("{n}\n").as_bytes()).unwrap();
            let name = format!("fib({n})");
            let start = Instant::now();
            loop {
                let ps = ask(&mut conn, "ps");
                let running = ps.iter().find(|l| {
                    l.ends_with(&format!(" {name}"))
                        && l.split_whitespace().nth(2) == Some("Running")
                });
                if let Some(line) = running {
                    seen = Some((line.clone(), ps[0].clone()));
                    break;
                }
                let answered = stdout.try_iter().any(|l| l.starts_with(&name));
                if answered {
                    break;
                }
                assert!(
                    start.elapsed() < WATCHDOG,
                    "{backend}: {name} never answered"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            if seen.is_some() {
                break;
            }
        }
        let (line, header) = seen.unwrap_or_else(|| panic!("{backend}: no fib task seen Running"));
        assert!(header.trim_start().starts_with("ID"), "{header}");
        assert!(
            line.contains("examples/src/fib.rs"),
            "creation site: {line}"
        );
        let stats = ask(&mut conn, "stats");
        assert!(stats.contains(&format!("backend {backend}")), "{stats:?}");
        drop(stdin);
        let status = child.wait().unwrap();
        assert!(status.success(), "{backend}: {status}");
    }
}

#[test]
fn a_bad_loop_monitor_address_is_reported_and_the_program_runs_on() {
    let Some(bin) = util::example_binary("hello_world") else {
        eprintln!("skipped: the hello_world example is not built (run `cargo test -p examples`)");
        return;
    };
    let out = Command::new(bin)
        .env("LOOP_MONITOR", "no-such-address")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello World\n");
    assert!(
        stderr.contains("\"no-such-address\"") && stderr.contains("LOOP_MONITOR is ignored"),
        "{stderr}"
    );
}
