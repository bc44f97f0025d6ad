//! The `echo_server` program stops cleanly on SIGTERM and SIGINT, and can be restarted on the
//! same port at once, on every backend it can select (`LOOP_BACKEND=mio|polling|uring`).
//!
//! Each round starts the compiled example, has a client connected (so a connection is open
//! and an accept is in flight when the signal comes), sends the signal, expects the program
//! to exit with success, and starts the next round on the same address right away: a server
//! whose listener the kernel still held would fail to bind ("Address already in use").

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use loop_policy::Backend;

/// How long a signalled server may take to exit before the test gives up on it.
const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// Restarts per backend (the signal alternates between SIGTERM and SIGINT).
const ROUNDS: usize = 4;

/// The compiled `echo_server` example, next to this test's executable (cargo builds examples
/// for `cargo test`, but sets no `CARGO_BIN_EXE_` for them).
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("echo_server");
    path.is_file().then_some(path)
}

/// Starts the example on `addr` with `LOOP_BACKEND=backend`; gives the child and the
/// address it listens on.
///
/// # Panics
/// If it does not say it is listening (its stderr is in the message).
fn start(bin: &Path, backend: &str, addr: &str, extra: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(bin)
        .args(extra)
        .arg(addr)
        .env("LOOP_BACKEND", backend)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the echo_server example");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().expect("stdout was piped"))
        .read_line(&mut first_line)
        .expect("read the example's first line");
    let listening = first_line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok());
    match listening {
        Some(addr) => (child, addr),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .map(|mut e| e.read_to_string(&mut stderr));
            panic!("{backend}: the server did not start on {addr}: {first_line:?} {stderr:?}")
        }
    }
}

/// One echo round trip on a new connection, which is returned still open.
fn connect_and_echo(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect to the echo server");
    s.set_read_timeout(Some(EXIT_LIMIT)).unwrap();
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).expect("read the echo");
    assert_eq!(&back, b"ping");
    s
}

/// Sends `sig` to `child` and waits (at most [`EXIT_LIMIT`]) for it to exit; gives its
/// status and stderr.
fn signal_and_wait(child: &mut Child, sig: i32) -> (std::process::ExitStatus, String) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    // SAFETY: kill takes plain integers; `pid` is our child, not yet waited for.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    let deadline = Instant::now() + EXIT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit within {EXIT_LIMIT:?} of signal {sig}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    (status, stderr)
}

/// `ROUNDS` starts on one address for `backend` (with `extra` arguments), each ended by a
/// signal.
fn restart_rounds(bin: &Path, backend: &str, extra: &[&str]) {
    let mut addr = "127.0.0.1:0".to_string();
    for round in 0..ROUNDS {
        let (mut child, bound) = start(bin, backend, &addr, extra);
        addr = bound.to_string();
        let client = connect_and_echo(bound);
        let (sig, name) = match round % 2 {
            0 => (libc::SIGTERM, "SIGTERM"),
            _ => (libc::SIGINT, "SIGINT"),
        };
        let (status, stderr) = signal_and_wait(&mut child, sig);
        assert!(
            status.success(),
            "{backend}, round {round}: {name} ended the server with {status} (stderr: {stderr:?})"
        );
        assert!(
            stderr.contains(&format!("{name} received")),
            "{backend}, round {round}: {stderr:?}"
        );
        drop(client);
    }
    // Once more, right after the last stop.
    let (mut child, _) = start(bin, backend, &addr, extra);
    let (status, stderr) = signal_and_wait(&mut child, libc::SIGTERM);
    assert!(status.success(), "{backend}: {status} {stderr:?}");
}

#[test]
fn echo_server_stops_on_sigterm_and_sigint_and_restarts_on_its_port_at_once() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: the echo_server example is not built (run `cargo test -p examples`)");
        return;
    };
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if let Some(reason) = backend.why_unavailable() {
            eprintln!("{backend}: skipped, unavailable here: {reason}");
            continue;
        }
        restart_rounds(&bin, &backend.to_string(), &[]);
    }
}

/// The same with `--threads 2` (`run_per_core`: two loops, two `SO_REUSEPORT` listeners):
/// SIGINT stops both loops through `run_per_core`, SIGTERM through each loop's handler.
#[test]
fn echo_server_on_two_loops_stops_on_sigterm_and_sigint_and_restarts_on_its_port_at_once() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: the echo_server example is not built (run `cargo test -p examples`)");
        return;
    };
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if let Some(reason) = backend.why_unavailable() {
            eprintln!("{backend}: skipped, unavailable here: {reason}");
            continue;
        }
        restart_rounds(&bin, &backend.to_string(), &["--threads", "2"]);
    }
}
