//! The echo benchmark: every server, every message size and connection count, repeated with
//! the servers' order rotating from round to round. The figure that ranks the servers is the
//! server's CPU time per request (client and server share the machine); throughput and
//! latency are reported beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{self, EchoLoad};
use crate::{procfs, stats};

/// The CPU servers are pinned to; the load generator gets the other one.
pub const SERVER_CPU: usize = 0;
/// The CPU the load generator is pinned to.
pub const CLIENT_CPU: usize = 1;

/// How to start one server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Its name in the report: `ours-mio`, `tokio`, `uvloop`, `asyncio`, `node`, ...
    pub name: String,
    /// Program and arguments; the address (`127.0.0.1:PORT`) is appended.
    pub argv: Vec<String>,
}

/// True if `program args...` runs and exits 0 (to find python modules and node).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The echo servers available on this machine (ours on each available backend, ours on
/// `loop-net` streams on mio, tokio, and uvloop, asyncio and node when installed), and a note
/// for each one missing.
pub fn echo_servers(exe: &Path, root: &Path) -> (Vec<ServerSpec>, Vec<String>) {
    let exe = exe.display().to_string();
    let mut v = Vec::new();
    let mut notes = Vec::new();
    for b in ["mio", "polling", "uring"] {
        let ok = b
            .parse::<loop_policy::Backend>()
            .is_ok_and(|b| b.is_available());
        if ok {
            v.push(ServerSpec {
                name: format!("ours-{b}"),
                argv: vec![exe.clone(), "serve".into(), "echo".into(), b.into()],
            });
        } else {
            notes.push(format!("ours-{b}: backend unavailable here"));
        }
    }
    if loop_policy::Backend::Mio.is_available() {
        v.push(ServerSpec {
            name: "streams-mio".into(),
            argv: vec![
                exe.clone(),
                "serve".into(),
                "echo-streams".into(),
                "mio".into(),
            ],
        });
    }
    v.push(ServerSpec {
        name: "raw-mio".into(),
        argv: vec![exe.clone(), "serve".into(), "echo".into(), "raw-mio".into()],
    });
    if loop_policy::Backend::Uring.is_available() {
        v.push(ServerSpec {
            name: "raw-uring-multishot".into(),
            argv: vec![
                exe.clone(),
                "serve".into(),
                "echo".into(),
                "raw-uring-multishot".into(),
            ],
        });
    }
    v.push(ServerSpec {
        name: "tokio".into(),
        argv: vec![exe, "serve".into(), "echo".into(), "tokio".into()],
    });
    let py = root
        .join("loop-bench/py/echo_server.py")
        .display()
        .to_string();
    for lp in ["uvloop", "asyncio"] {
        if runs("python3", &["-c", &format!("import {lp}")]) {
            v.push(ServerSpec {
                name: lp.into(),
                argv: vec!["python3".into(), py.clone(), "--loop".into(), lp.into()],
            });
        } else {
            notes.push(format!(
                "{lp}: python3 -c 'import {lp}' failed (pip install {lp})"
            ));
        }
    }
    if runs("node", &["--version"]) {
        let js = root.join("loop-bench/node/echo_server.js");
        v.push(ServerSpec {
            name: "node".into(),
            argv: vec!["node".into(), js.display().to_string()],
        });
    } else {
        notes.push("node: not installed".into());
    }
    (v, notes)
}

/// A started server; killed when dropped.
#[derive(Debug)]
pub struct Running {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
}

impl Running {
    /// Starts `spec` on a free port, pinned to [`SERVER_CPU`], and waits until it listens.
    ///
    /// # Errors
    /// It cannot start or does not listen within 20 s (its log is in `log_dir`).
    pub fn start(spec: &ServerSpec, log_dir: &Path) -> std::io::Result<Running> {
        Self::start_on(spec, log_dir, Some(SERVER_CPU))
    }

    /// [`start`](Self::start), pinned to `cpu` (`None`: not pinned).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_on(
        spec: &ServerSpec,
        log_dir: &Path,
        cpu: Option<usize>,
    ) -> std::io::Result<Running> {
        let addr = client::free_addr()?;
        let mut cmd = Command::new(&spec.argv[0]);
        cmd.args(&spec.argv[1..]).arg(addr.to_string());
        let log: PathBuf = log_dir.join(format!("{}.log", spec.name));
        let child = procfs::spawn_server(cmd, cpu, &log.display().to_string())?;
        let mut me = Running {
            name: spec.name.clone(),
            addr,
            child,
        };
        if let Err(e) = client::wait_listening(addr, Duration::from_secs(20)) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = me.child.kill();
            return Err(std::io::Error::other(format!(
                "{} did not listen on {addr}: {e}; log: {text}",
                spec.name
            )));
        }
        // Let it settle (the probe connection, lazy initialisation).
        std::thread::sleep(Duration::from_millis(200));
        Ok(me)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measured echo run.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct EchoRun {
    /// Server CPU time per request, nanoseconds.
    pub cpu_ns_per_req: f64,
    /// Requests per second (wall clock of the client).
    pub req_per_s: f64,
    /// Median round-trip latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile round-trip latency, microseconds.
    pub p99_us: f64,
}

/// Every run of one server in one cell of the matrix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EchoRow {
    /// The server.
    pub server: String,
    /// Message size in bytes.
    pub size: usize,
    /// Connections.
    pub conns: usize,
    /// Requests per run.
    pub requests: u64,
    /// Every run.
    pub runs: Vec<EchoRun>,
}

impl EchoRow {
    /// The median of one field over the runs.
    pub fn median(&self, f: impl Fn(&EchoRun) -> f64) -> f64 {
        stats::median(&self.runs.iter().map(f).collect::<Vec<_>>())
    }
}

/// Message sizes and connection counts, as uvloop's benchmark.
pub const SIZES: [usize; 3] = [1024, 10 * 1024, 100 * 1024];
/// Connection counts.
pub const CONNS: [usize; 3] = [1, 16, 256];

/// Requests per run for a message size (fewer for big messages), and a floor per connection.
pub fn requests_for(size: usize, conns: usize, quick: bool) -> usize {
    let total = match size {
        s if s <= 1024 => 30_000,
        s if s <= 10 * 1024 => 20_000,
        _ => 6_000,
    } / if quick { 4 } else { 1 };
    (total / conns).max(20)
}

/// Runs one echo load against `server` and samples its CPU time around the measured part.
///
/// # Errors
/// The load failing or the server gone.
pub fn measure(server: &Running, load: EchoLoad) -> std::io::Result<EchoRun> {
    let pid = server.pid();
    let before = std::sync::Mutex::new(None);
    let out = client::run_echo(load, || {
        *before.lock().unwrap_or_else(|p| p.into_inner()) = procfs::cpu_ns(pid).ok();
    })?;
    let after = procfs::cpu_ns(pid)?;
    let before = before
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| std::io::Error::other("no CPU sample"))?;
    let mut lat = out.latencies_ns;
    let (p50, p99) = stats::p50_p99(&mut lat);
    let reqs = out.requests.max(1) as f64;
    Ok(EchoRun {
        cpu_ns_per_req: after.saturating_sub(before) as f64 / reqs,
        req_per_s: reqs / out.elapsed.as_secs_f64(),
        p50_us: p50 as f64 / 1e3,
        p99_us: p99 as f64 / 1e3,
    })
}

/// The whole matrix: every size x connection count, `reps` rounds each over every server (all
/// started once, idle while another is measured).
///
/// # Errors
/// A server failing to start or to echo.
pub fn run_matrix(
    specs: &[ServerSpec],
    log_dir: &Path,
    reps: usize,
    quick: bool,
) -> std::io::Result<Vec<EchoRow>> {
    let servers: Vec<Running> = specs
        .iter()
        .map(|s| Running::start(s, log_dir))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for size in SIZES {
        for conns in CONNS {
            let per = requests_for(size, conns, quick);
            let mut runs: Vec<Vec<EchoRun>> = vec![Vec::new(); servers.len()];
            for rep in 0..reps {
                for j in 0..servers.len() {
                    let i = (j + rep) % servers.len();
                    let load = EchoLoad {
                        addr: servers[i].addr,
                        conns,
                        size,
                        requests_per_conn: per,
                        cpu: Some(CLIENT_CPU),
                    };
                    let run = measure(&servers[i], load).map_err(|e| {
                        std::io::Error::other(format!(
                            "echo {} {size} B x {conns}: {e}",
                            servers[i].name
                        ))
                    })?;
                    runs[i].push(run);
                }
            }
            for (s, runs) in servers.iter().zip(runs) {
                let row = EchoRow {
                    server: s.name.clone(),
                    size,
                    conns,
                    requests: (per * conns) as u64,
                    runs,
                };
                eprintln!(
                    "echo {:>6} B x {:>3} {:<13} cpu/req {:>7.0} ns  {:>8.0} req/s  p50 {:>6.0} us  p99 {:>6.0} us",
                    size,
                    conns,
                    row.server,
                    row.median(|r| r.cpu_ns_per_req),
                    row.median(|r| r.req_per_s),
                    row.median(|r| r.p50_us),
                    row.median(|r| r.p99_us),
                );
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Connections and message size of the per-core rows.
pub const PER_CORE_LOAD: (usize, usize) = (64, 1024);

/// Our echo server (`serve echo BACKEND@N`) on 1 loop pinned to [`SERVER_CPU`], then on as
/// many loops as there are CPUs, each pinned to its own (`PerCore::pin`), against the same
/// load (the load generator pinned to [`CLIENT_CPU`] both times): `reps` runs each.
///
/// # Errors
/// A server failing to start or to echo.
pub fn per_core_rows(
    exe: &Path,
    log_dir: &Path,
    reps: usize,
    quick: bool,
) -> std::io::Result<Vec<EchoRow>> {
    let (conns, size) = PER_CORE_LOAD;
    let per = requests_for(size, conns, quick) * 4;
    let cores = procfs::num_cpus().max(2);
    let mut rows = Vec::new();
    for backend in ["mio", "uring"] {
        let available = backend
            .parse::<loop_policy::Backend>()
            .is_ok_and(|b| b.is_available());
        if !available {
            continue;
        }
        for loops in [1, cores] {
            let spec = ServerSpec {
                name: format!(
                    "ours-{backend}, {loops} loop{}",
                    if loops > 1 { "s" } else { "" }
                ),
                argv: vec![
                    exe.display().to_string(),
                    "serve".into(),
                    "echo".into(),
                    format!("{backend}@{loops}"),
                ],
            };
            let cpu = (loops == 1).then_some(SERVER_CPU);
            let server = Running::start_on(&spec, log_dir, cpu)?;
            let load = EchoLoad {
                addr: server.addr,
                conns,
                size,
                requests_per_conn: per,
                cpu: Some(CLIENT_CPU),
            };
            let runs = (0..reps)
                .map(|_| measure(&server, load))
                .collect::<Result<Vec<_>, _>>()?;
            let row = EchoRow {
                server: spec.name,
                size,
                conns,
                requests: (per * conns) as u64,
                runs,
            };
            eprintln!(
                "per-core {:<22} cpu/req {:>7.0} ns  {:>8.0} req/s  p50 {:>6.0} us  p99 {:>6.0} us",
                row.server,
                row.median(|r| r.cpu_ns_per_req),
                row.median(|r| r.req_per_s),
                row.median(|r| r.p50_us),
                row.median(|r| r.p99_us),
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_scale_with_size_and_conns() {
        assert_eq!(requests_for(1024, 1, false), 30_000);
        assert_eq!(requests_for(1024, 16, false), 1_875);
        assert_eq!(requests_for(100 * 1024, 256, false), 23);
        assert_eq!(requests_for(100 * 1024, 256, true), 20);
    }
}
