//! What the OS sees of a server: system calls per request (`strace -c -f -p PID` attached
//! over a fixed number of echo requests), resident memory per idle connection (RSS before and
//! after 10,000 idle connections), and instructions per operation of the micro-benchmarks
//! (`valgrind --tool=callgrind`, repeatable on a shared machine).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{self, EchoLoad};
use crate::echo::{CLIENT_CPU, Running, ServerSpec};
use crate::procfs;

/// System calls of one server over a fixed load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyscallRow {
    /// The server.
    pub server: String,
    /// Connections.
    pub conns: usize,
    /// Message size.
    pub size: usize,
    /// Requests made while strace was attached.
    pub requests: u64,
    /// Every system call strace counted.
    pub calls: u64,
    /// The most frequent calls, `(name, count)`, most first.
    pub top: Vec<(String, u64)>,
}

impl SyscallRow {
    /// System calls per request.
    pub fn per_request(&self) -> f64 {
        self.calls as f64 / self.requests.max(1) as f64
    }
}

/// Parses `strace -c` output: the total and the per-call counts.
pub fn parse_strace_summary(text: &str) -> Option<(u64, Vec<(String, u64)>)> {
    let mut rows = Vec::new();
    let mut total = None;
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 5 || t[0].parse::<f64>().is_err() {
            continue;
        }
        let Ok(calls) = t[3].parse::<u64>() else {
            continue;
        };
        let name = t[t.len() - 1];
        if name == "total" {
            total = Some(calls);
        } else {
            rows.push((name.to_string(), calls));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    total.map(|t| (t, rows))
}

/// Attaches `strace -c -f` to `server` over `load` (after the warm-up) and counts.
///
/// # Errors
/// strace missing or failing, the load failing.
pub fn count_syscalls(
    server: &Running,
    load: EchoLoad,
    out_dir: &Path,
) -> std::io::Result<SyscallRow> {
    let out = out_dir.join(format!("strace-{}-{}.txt", server.name, load.conns));
    let strace = std::sync::Mutex::new(None);
    let pid = server.pid();
    let outcome = client::run_echo(load, || {
        let child = Command::new("strace")
            .args(["-c", "-f", "-p", &pid.to_string(), "-o"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        // strace needs a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(700));
        *strace.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    });
    let child = strace.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut child = child.ok_or_else(|| std::io::Error::other("strace did not start"))??;
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    child.wait()?;
    let outcome = outcome?;
    let text = std::fs::read_to_string(&out)?;
    let (calls, top) = parse_strace_summary(&text)
        .ok_or_else(|| std::io::Error::other(format!("no strace summary in {}", out.display())))?;
    Ok(SyscallRow {
        server: server.name.clone(),
        conns: load.conns,
        size: load.size,
        requests: outcome.requests,
        calls,
        top: top.into_iter().take(6).collect(),
    })
}

/// Syscalls per request of every server at each connection count in `conns` (1 KiB messages).
///
/// # Errors
/// A server not starting, strace failing.
pub fn syscall_table(
    specs: &[ServerSpec],
    log_dir: &Path,
    conns: &[usize],
    quick: bool,
) -> std::io::Result<Vec<SyscallRow>> {
    let mut rows = Vec::new();
    for spec in specs {
        let server = Running::start(spec, log_dir)?;
        for &c in conns {
            let total = if quick { 4_000 } else { 16_000 };
            let load = EchoLoad {
                addr: server.addr,
                conns: c,
                size: 1024,
                requests_per_conn: (total / c).max(20),
                cpu: Some(CLIENT_CPU),
            };
            let row = count_syscalls(&server, load, log_dir)?;
            eprintln!(
                "syscalls {:<13} x {:>3}: {:.2} per request ({:?})",
                row.server,
                c,
                row.per_request(),
                &row.top[..row.top.len().min(3)]
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Resident memory of a server before and after opening idle connections.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemoryRow {
    /// The server.
    pub server: String,
    /// Idle connections opened.
    pub conns: usize,
    /// RSS before, bytes.
    pub rss_before: u64,
    /// RSS with the connections open, bytes.
    pub rss_after: u64,
}

impl MemoryRow {
    /// Bytes of RSS per idle connection.
    pub fn per_conn(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.conns.max(1) as f64
    }
}

/// RSS per idle connection of every server: a fresh server each, `n` connections.
///
/// # Errors
/// A server not starting or not accepting them all.
pub fn memory_table(
    specs: &[ServerSpec],
    log_dir: &Path,
    n: usize,
) -> std::io::Result<Vec<MemoryRow>> {
    procfs::raise_nofile();
    let mut rows = Vec::new();
    for spec in specs {
        let server = Running::start(spec, log_dir)?;
        let pid = server.pid();
        let rss_before = procfs::rss_bytes(pid)?;
        let conns = client::open_idle(server.addr, n, pid, Duration::from_secs(60))?;
        std::thread::sleep(Duration::from_millis(500));
        let rss_after = procfs::rss_bytes(pid)?;
        drop(conns);
        let row = MemoryRow {
            server: spec.name.clone(),
            conns: n,
            rss_before,
            rss_after,
        };
        eprintln!(
            "memory {:<13} {:>8.0} B per idle connection (RSS {} -> {} KiB)",
            row.server,
            row.per_conn(),
            rss_before / 1024,
            rss_after / 1024
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Instructions per operation of one micro-benchmark subject, by callgrind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstrRow {
    /// The benchmark.
    pub bench: String,
    /// The subject.
    pub subject: String,
    /// Instructions per operation: (Ir(n2) - Ir(n1)) / (n2 - n1), so start-up cancels out.
    pub ir_per_op: f64,
}

/// Total instructions callgrind counted for `exe micro-one bench subject n`.
fn callgrind_total(exe: &Path, dir: &Path, bench: &str, subject: &str, n: usize) -> Option<u64> {
    let out = dir.join(format!("callgrind.{bench}.{subject}.{n}.out"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["micro-one", bench, subject, &n.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let text = std::fs::read_to_string(&out).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Instructions per operation of the single-threaded micro-benchmarks (ours and the peer).
/// Empty if valgrind is not installed.
pub fn instruction_table(exe: &Path, dir: &Path) -> Vec<InstrRow> {
    const PAIRS: [(&str, &str); 6] = [
        ("call_soon", "ours-mio"),
        ("call_soon", "floor"),
        ("create_task", "ours-mio"),
        ("create_task", "tokio"),
        ("timers", "ours-mio"),
        ("timers", "tokio"),
    ];
    let (n1, n2) = (20_000, 120_000);
    let mut rows = Vec::new();
    for (bench, subject) in PAIRS {
        let a = callgrind_total(exe, dir, bench, subject, n1);
        let b = callgrind_total(exe, dir, bench, subject, n2);
        if let (Some(a), Some(b)) = (a, b) {
            let row = InstrRow {
                bench: bench.into(),
                subject: subject.into(),
                ir_per_op: b.saturating_sub(a) as f64 / (n2 - n1) as f64,
            };
            eprintln!(
                "callgrind {bench:<12} {subject:<9} {:>6.0} instructions/op",
                row.ir_per_op
            );
            rows.push(row);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strace_summary() {
        let text = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.006000           3      2000           sendto
 30.00    0.003000           1      2100       100 recvfrom
 10.00    0.001000           1       900           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           2      5000       100 total
";
        let (total, rows) = parse_strace_summary(text).unwrap();
        assert_eq!(total, 5000);
        assert_eq!(rows[0], ("recvfrom".to_string(), 2100));
        assert_eq!(rows.len(), 3);
        assert!(parse_strace_summary("nothing here").is_none());
    }
}
