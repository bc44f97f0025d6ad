//! System calls per request at (nearly) full speed.
//!
//! `strace -c -f -p PID` stops the server at every system call, which slows it so much that
//! data is always waiting when it reads: a readiness server then never sees `EAGAIN` and never
//! re-arms, and its count looks like the ideal 2 per request. Here each class of calls is
//! counted in a run of its own, with the server started under `strace -f --seccomp-bpf -e
//! trace=CLASS`: only that class stops (the kernel's seccomp filter lets the others through),
//! so the server behaves as it does untraced except when making a call of that class. The sum
//! over the classes estimates the calls per request of an untraced server.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{self, EchoLoad};
use crate::echo::{CLIENT_CPU, Running, ServerSpec};
use crate::sys::parse_strace_summary;

/// The classes counted, each in its own run: (label, system calls).
pub const CLASSES: [(&str, &str); 5] = [
    ("recv", "recvfrom,read,recvmsg,readv"),
    ("send", "sendto,write,sendmsg,writev"),
    ("wait", "epoll_wait,epoll_pwait,epoll_pwait2,poll,ppoll"),
    ("epoll_ctl", "epoll_ctl"),
    ("io_uring_enter", "io_uring_enter"),
];

/// One server's calls per request, class by class.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NativeRow {
    /// The server.
    pub server: String,
    /// Connections.
    pub conns: usize,
    /// Requests per run (connection set-up and one warm-up round trip per connection are
    /// counted too: at most a few hundredths of a call per request).
    pub requests: u64,
    /// Calls of each class, in [`CLASSES`] order.
    pub calls: Vec<(String, u64)>,
}

impl NativeRow {
    /// Calls per request, all classes together.
    pub fn per_request(&self) -> f64 {
        self.calls.iter().map(|c| c.1).sum::<u64>() as f64 / self.requests.max(1) as f64
    }

    /// Calls per request of one class.
    pub fn class(&self, label: &str) -> f64 {
        self.calls
            .iter()
            .find(|c| c.0 == label)
            .map_or(0.0, |c| c.1 as f64 / self.requests.max(1) as f64)
    }
}

/// Stops a server started under strace: ends strace's child (the server), so strace writes
/// its summary and exits.
fn stop_traced(server: Running) {
    let tracer = server.pid();
    let children = std::fs::read_to_string(format!("/proc/{tracer}/task/{tracer}/children"))
        .unwrap_or_default();
    for pid in children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a child of a process we started; no memory is touched.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{tracer}/task")).exists()
        && std::fs::read_to_string(format!("/proc/{tracer}/stat")).is_ok_and(|s| !s.contains(") Z"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
}

/// Counts one class of calls of `spec` over `requests` 1 KiB echo requests on `conns`
/// connections.
fn count_class(
    spec: &ServerSpec,
    dir: &Path,
    class: (&str, &str),
    conns: usize,
    requests: usize,
) -> std::io::Result<(u64, u64)> {
    let out = dir.join(format!("native-{}-{conns}-{}.txt", spec.name, class.0));
    let mut argv = vec![
        "strace".to_string(),
        "-f".into(),
        "--seccomp-bpf".into(),
        "-c".into(),
        "-e".into(),
        format!("trace={}", class.1),
        "-o".into(),
        out.display().to_string(),
        "--".into(),
    ];
    argv.extend(spec.argv.iter().cloned());
    let traced = ServerSpec {
        name: format!("{}-strace-{}", spec.name, class.0),
        argv,
    };
    let server = Running::start(&traced, dir)?;
    let load = EchoLoad {
        addr: server.addr,
        conns,
        size: 1024,
        requests_per_conn: (requests / conns).max(20),
        cpu: Some(CLIENT_CPU),
    };
    let outcome = client::run_echo(load, || {});
    stop_traced(server);
    let outcome = outcome?;
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let calls = parse_strace_summary(&text).map_or(0, |(total, _)| total);
    Ok((calls, outcome.requests))
}

/// Calls per request of every server in `specs`, at each connection count.
///
/// # Errors
/// A server not starting under strace, or the load failing.
pub fn native_table(
    specs: &[ServerSpec],
    dir: &Path,
    conns: &[usize],
    quick: bool,
) -> std::io::Result<Vec<NativeRow>> {
    let requests = if quick { 4_000 } else { 16_000 };
    let mut rows = Vec::new();
    for spec in specs {
        for &c in conns {
            let mut calls = Vec::new();
            let mut made = 0;
            for class in CLASSES {
                let (n, reqs) = count_class(spec, dir, class, c, requests)?;
                calls.push((class.0.to_string(), n));
                made = reqs;
            }
            let row = NativeRow {
                server: spec.name.clone(),
                conns: c,
                requests: made,
                calls,
            };
            eprintln!(
                "native syscalls {:<11} x {:>3}: {:.2} per request {:?}",
                row.server,
                c,
                row.per_request(),
                row.calls
            );
            rows.push(row);
        }
    }
    Ok(rows)
}
