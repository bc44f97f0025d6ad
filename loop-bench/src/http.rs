//! HTTP: `loop-bench/wrk.sh` (wrk against `examples/http_hello` on each backend, and against
//! loop-bench's tokio hello server), its output parsed into rows.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One wrk run against one server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HttpRow {
    /// The server (`ours-mio`, ..., `tokio`).
    pub server: String,
    /// Requests per second wrk reports.
    pub req_per_s: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency, microseconds.
    pub p99_us: f64,
    /// Requests completed.
    pub requests: u64,
    /// Server CPU time (user + system) during the run, milliseconds.
    pub server_cpu_ms: u64,
    /// wrk reported socket errors or non-2xx responses.
    pub errors: bool,
}

impl HttpRow {
    /// Server CPU time per request, nanoseconds.
    pub fn cpu_ns_per_req(&self) -> f64 {
        self.server_cpu_ms as f64 * 1e6 / self.requests.max(1) as f64
    }
}

/// A wrk duration (`123.45us`, `1.20ms`, `2.00s`) in microseconds.
fn parse_duration_us(t: &str) -> Option<f64> {
    let (num, scale) = if let Some(v) = t.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// Parses the output of `wrk.sh` into one row per `== NAME` section.
pub fn parse_wrk_sh(text: &str) -> Vec<HttpRow> {
    let mut rows: Vec<HttpRow> = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) = line.strip_prefix("== ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if rest.contains(": ERRORS") {
                if let Some(r) = rows.last_mut() {
                    r.errors = true;
                }
            } else if !rest.contains("did not start") {
                let server = if name == "tokio" {
                    name.to_string()
                } else {
                    format!("ours-{name}")
                };
                rows.push(HttpRow {
                    server,
                    ..HttpRow::default()
                });
            }
            continue;
        }
        let Some(r) = rows.last_mut() else { continue };
        match t.as_slice() {
            ["Requests/sec:", v] => r.req_per_s = v.parse().unwrap_or(0.0),
            ["50%", v] => r.p50_us = parse_duration_us(v).unwrap_or(0.0),
            ["99%", v] => r.p99_us = parse_duration_us(v).unwrap_or(0.0),
            [n, "requests", "in", ..] => r.requests = n.parse().unwrap_or(0),
            ["server-cpu-ms:", v] => r.server_cpu_ms = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    rows
}

/// Runs `wrk.sh` for `secs` seconds with `conns` connections against every backend and tokio.
///
/// # Errors
/// wrk.sh not running (wrk missing gives an error message in the output and no rows).
pub fn run_wrk(
    root: &Path,
    exe: &Path,
    secs: u32,
    conns: u32,
) -> std::io::Result<(Vec<HttpRow>, String)> {
    let out = Command::new(root.join("loop-bench/wrk.sh"))
        .args([secs.to_string(), conns.to_string()])
        .env("WRK_SERVERS", "mio polling uring tokio")
        .env("LOOP_BENCH_BIN", exe)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok((parse_wrk_sh(&text), text))
}

/// Runs `wrk.sh` with `WRK_KIND=hyper`: the hyper servers of `loop-bench serve hyper` in
/// `servers` (backend names and `tokio`, space-separated, run in that order).
///
/// # Errors
/// wrk.sh not running.
pub fn run_wrk_hyper(
    root: &Path,
    exe: &Path,
    secs: u32,
    conns: u32,
    servers: &str,
) -> std::io::Result<(Vec<HttpRow>, String)> {
    let out = Command::new(root.join("loop-bench/wrk.sh"))
        .args([secs.to_string(), conns.to_string()])
        .env("WRK_SERVERS", servers)
        .env("WRK_KIND", "hyper")
        .env("LOOP_BENCH_BIN", exe)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok((parse_wrk_sh(&text), text))
}

/// One row per server out of several rounds: for each server (in the first round's order),
/// the round whose CPU time per request is the median (a real run's figures, not a mix), with
/// `errors` set if any round had errors.
pub fn median_rows(rounds: &[Vec<HttpRow>]) -> Vec<HttpRow> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|row| {
            let mut runs: Vec<&HttpRow> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|r| r.server == row.server))
                .collect();
            runs.sort_by(|a, b| a.cpu_ns_per_req().total_cmp(&b.cpu_ns_per_req()));
            let mut median = runs[runs.len() / 2].clone();
            median.errors = runs.iter().any(|r| r.errors);
            median
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, server_cpu_ms: u64, errors: bool) -> HttpRow {
        HttpRow {
            server: server.into(),
            requests: 1000,
            server_cpu_ms,
            errors,
            ..HttpRow::default()
        }
    }

    #[test]
    fn median_rows_take_each_servers_median_run_and_any_error() {
        let rounds = vec![
            vec![row("ours-mio", 9, false), row("tokio", 5, false)],
            vec![row("tokio", 7, true), row("ours-mio", 3, false)],
            vec![row("ours-mio", 4, false), row("tokio", 6, false)],
        ];
        let rows = median_rows(&rounds);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].server.as_str(), rows[0].server_cpu_ms),
            ("ours-mio", 4)
        );
        assert!(!rows[0].errors);
        assert_eq!(
            (rows[1].server.as_str(), rows[1].server_cpu_ms),
            ("tokio", 6)
        );
        assert!(rows[1].errors);
        assert!(median_rows(&[]).is_empty());
    }

    #[test]
    fn parses_wrk_output() {
        let text = "\
== mio (http server on http://127.0.0.1:18123 (backend: mio))
Running 1s test @ http://127.0.0.1:18123/
  Latency Distribution
     50%  143.00us
     75%  200.00us
     90%  300.00us
     99%    1.20ms
  123456 requests in 10.00s, 9.99MB read
Requests/sec:  12345.60
Transfer/sec:      1.00MB
server-cpu-ms: 4200
== tokio (listening on 127.0.0.1:1 (backend: tokio current_thread))
Requests/sec:  10.0
server-cpu-ms: 5
== tokio: ERRORS
";
        let rows = parse_wrk_sh(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].server, "ours-mio");
        assert_eq!(rows[0].requests, 123_456);
        assert_eq!(rows[0].p50_us, 143.0);
        assert_eq!(rows[0].p99_us, 1200.0);
        assert_eq!(rows[0].req_per_s, 12345.6);
        assert_eq!(rows[0].server_cpu_ms, 4200);
        assert!(!rows[0].errors);
        assert_eq!(rows[1].server, "tokio");
        assert!(rows[1].errors);
    }
}
