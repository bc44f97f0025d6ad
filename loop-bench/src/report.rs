//! `BENCHMARKS.md` and the chart's data, made from [`Results`].
//!
//! Every ratio is "how many times better than the reference", so above 1 is better: for times
//! and costs it is `reference / subject`, for throughput `subject / reference`. Ratios of
//! subjects measured side by side are medians of per-round ratios; others (Python, made in
//! another process) are ratios of medians.

use std::fmt::Write as _;

use serde::Serialize;

use crate::Results;
use crate::echo::EchoRow;
use crate::micro::MicroRow;
use crate::stats::median;

/// `reference / subject` of two micro rows (speed of `subject` relative to `reference`).
pub fn micro_speed(subject: &MicroRow, reference: &MicroRow) -> f64 {
    if subject.paired && reference.paired && subject.runs.len() == reference.runs.len() {
        let r: Vec<f64> = subject
            .runs
            .iter()
            .zip(&reference.runs)
            .map(|(s, r)| r.ns_per_op / s.ns_per_op)
            .collect();
        median(&r)
    } else {
        reference.median_ns() / subject.median_ns()
    }
}

/// `reference / subject` of the echo CPU time per request, round by round.
pub fn echo_cpu_ratio(subject: &EchoRow, reference: &EchoRow) -> f64 {
    let n = subject.runs.len().min(reference.runs.len());
    let r: Vec<f64> = (0..n)
        .map(|i| reference.runs[i].cpu_ns_per_req / subject.runs[i].cpu_ns_per_req)
        .collect();
    median(&r)
}

fn micro_row<'a>(res: &'a Results, bench: &str, subject: &str) -> Option<&'a MicroRow> {
    res.micro
        .iter()
        .find(|r| r.bench == bench && r.subject == subject)
}

fn echo_row<'a>(res: &'a Results, server: &str, size: usize, conns: usize) -> Option<&'a EchoRow> {
    res.echo
        .iter()
        .find(|r| r.server == server && r.size == size && r.conns == conns)
}

/// The reference of a micro benchmark: the floor for `call_soon`, tokio otherwise.
pub fn micro_reference(bench: &str) -> &'static str {
    if bench == "call_soon" {
        "floor"
    } else {
        "tokio"
    }
}

/// One target of the issue, measured.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// What the issue asks.
    pub what: String,
    /// The measured value, as text.
    pub measured: String,
    /// Whether it holds (`None`: not measured in this run).
    pub holds: Option<bool>,
}

fn target(what: &str, value: Option<f64>, ok: impl Fn(f64) -> bool, unit: &str) -> Target {
    Target {
        what: what.to_string(),
        measured: value.map_or("not measured".into(), |v| format!("{v:.2}{unit}")),
        holds: value.map(ok),
    }
}

/// The targets against this run's figures.
pub fn targets(res: &Results) -> Vec<Target> {
    let speed = |bench: &str, subject: &str, reference: &str| {
        Some(micro_speed(
            micro_row(res, bench, subject)?,
            micro_row(res, bench, reference)?,
        ))
    };
    let mut t = vec![
        target(
            "call_soon >= 0.75x the FIFO floor (mio)",
            speed("call_soon", "ours-mio", "floor"),
            |v| v >= 0.75,
            "x",
        ),
        target(
            "create_task >= 2x tokio spawn_local",
            speed("create_task", "ours-mio", "tokio"),
            |v| v >= 2.0,
            "x",
        ),
        target(
            "timers (call_later + cancel) >= 2x tokio",
            speed("timers", "ours-mio", "tokio"),
            |v| v >= 2.0,
            "x",
        ),
    ];
    for bench in ["call_soon", "create_task", "timers"] {
        t.push(target(
            &format!("{bench} >= 20x asyncio"),
            speed(bench, "ours-mio", "asyncio"),
            |v| v >= 20.0,
            "x",
        ));
    }
    // Issue 15: loop-sync's primitives.
    for bench in ["queue", "lock", "event", "gather_1000"] {
        t.push(target(
            &format!("{bench} >= 20x asyncio (loop-sync)"),
            speed(bench, "ours-mio", "asyncio"),
            |v| v >= 20.0,
            "x",
        ));
        t.push(target(
            &format!("{bench} >= 1x tokio (loop-sync)"),
            speed(bench, "ours-mio", "tokio"),
            |v| v >= 1.0,
            "x",
        ));
    }
    let cpu = |server: &str| -> Option<f64> {
        let s = echo_row(res, server, 1024, 16)?;
        let r = echo_row(res, "tokio", 1024, 16)?;
        Some(1.0 / echo_cpu_ratio(s, r))
    };
    t.push(target(
        "echo 16 conns x 1 KiB, server CPU/request: mio <= 0.95x tokio",
        cpu("ours-mio"),
        |v| v <= 0.95,
        "x",
    ));
    t.push(target(
        "echo 16 conns x 1 KiB, server CPU/request: uring <= 0.80x tokio",
        cpu("ours-uring"),
        |v| v <= 0.80,
        "x",
    ));
    // hyper (issue 14): the same hyper server on our loop and on tokio's current thread.
    let hyper_cpu = |server: &str| -> Option<f64> {
        let f = |s: &str| res.hyper.iter().find(|r| r.server == s && !r.errors);
        Some(f(server)?.cpu_ns_per_req() / f("tokio")?.cpu_ns_per_req())
    };
    for (server, limit) in [("ours-mio", 1.0), ("ours-uring", 0.95)] {
        t.push(target(
            &format!("hyper, wrk 64 conns, server CPU/request: {server} <= {limit:.2}x tokio"),
            hyper_cpu(server),
            |v| v <= limit,
            "x",
        ));
    }
    // What is possible at all: the floors (no runtime) against tokio. Context, not targets.
    for (floor, of) in [("raw-mio", "mio"), ("raw-uring-multishot", "uring")] {
        let v = cpu(floor);
        t.push(Target {
            what: format!(
                "(context) echo 16 x 1 KiB CPU/request of the {of} floor `{floor}` (no runtime) vs tokio"
            ),
            measured: v.map_or("not measured".into(), |v| format!("{v:.2}x")),
            holds: None,
        });
    }
    for conns in [16, 256] {
        let sc = |server: &str| {
            res.syscalls
                .iter()
                .find(|r| r.server == server && r.conns == conns)
                .map(|r| r.per_request())
        };
        let native = |server: &str| {
            res.native_syscalls
                .iter()
                .find(|r| r.server == server && r.conns == conns)
                .map(|r| r.per_request())
        };
        for (name, limit) in [("uring", 0.5), ("mio", 2.1)] {
            let server = format!("ours-{name}");
            t.push(target(
                &format!("{name} syscalls/request <= {limit} at {conns} conns (strace -c -p)"),
                sc(&server),
                |v| v <= limit,
                "",
            ));
            t.push(target(
                &format!("{name} syscalls/request <= {limit} at {conns} conns (full speed)"),
                native(&server),
                |v| v <= limit,
                "",
            ));
        }
    }
    let tokio_mem = res
        .memory
        .iter()
        .find(|r| r.server == "tokio")
        .map(|r| r.per_conn());
    for r in res.memory.iter().filter(|r| r.server.starts_with("ours-")) {
        // Issue 17: at most half of tokio's bytes per idle connection.
        t.push(Target {
            what: format!(
                "memory per idle connection, {} <= half of tokio's",
                r.server
            ),
            measured: match tokio_mem {
                Some(tm) => format!("{:.0} B vs {tm:.0} B", r.per_conn()),
                None => format!("{:.0} B (tokio not measured)", r.per_conn()),
            },
            holds: tokio_mem.map(|tm| r.per_conn() <= tm / 2.0),
        });
    }
    t
}

/// One panel of the chart: grouped bars of ratios to tokio (above 1 is better).
#[derive(Clone, Debug, Serialize)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// The groups along the x axis.
    pub groups: Vec<String>,
    /// One bar per group for each series (`None`: not measured).
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

const SERVERS: [&str; 10] = [
    "ours-mio",
    "ours-polling",
    "ours-uring",
    "streams-mio",
    "raw-mio",
    "raw-uring-multishot",
    "tokio",
    "uvloop",
    "asyncio",
    "node",
];

/// The chart's panels.
pub fn chart_panels(res: &Results) -> Vec<Panel> {
    let benches = crate::micro::BENCHES;
    let micro_subjects = [
        "ours-mio",
        "ours-polling",
        "ours-uring",
        "uvloop",
        "asyncio",
    ];
    let micro = Panel {
        title: "Micro-benchmarks: speed vs tokio (call_soon: vs the VecDeque floor)".into(),
        groups: benches.iter().map(|b| b.to_string()).collect(),
        series: micro_subjects
            .iter()
            .map(|s| {
                let v = benches
                    .iter()
                    .map(|b| {
                        let subj = micro_row(res, b, s)?;
                        Some(micro_speed(subj, micro_row(res, b, micro_reference(b))?))
                    })
                    .collect();
                (s.to_string(), v)
            })
            .collect(),
    };
    let cells: Vec<(usize, usize)> = crate::echo::SIZES
        .iter()
        .flat_map(|&s| [(s, 16), (s, 256)])
        .collect();
    let echo = Panel {
        title: "Echo: server CPU per request, tokio / server (higher = less CPU)".into(),
        groups: cells
            .iter()
            .map(|(s, c)| format!("{} KiB x {c}", s / 1024))
            .collect(),
        series: SERVERS
            .iter()
            .map(|srv| {
                let v = cells
                    .iter()
                    .map(|&(s, c)| {
                        Some(echo_cpu_ratio(
                            echo_row(res, srv, s, c)?,
                            echo_row(res, "tokio", s, c)?,
                        ))
                    })
                    .collect();
                (srv.to_string(), v)
            })
            .collect(),
    };
    let groups = [
        "syscalls/req x16",
        "syscalls/req x256",
        "RSS/idle conn",
        "HTTP req/s",
        "HTTP CPU/req",
    ];
    let sys = Panel {
        title: "Syscalls (ours, tokio: at full speed; others: strace -c -p), memory, HTTP: \
                ratio to tokio (higher is better)"
            .into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        series: SERVERS
            .iter()
            .map(|srv| {
                // Full-speed counts where measured (ours and tokio), else strace -c -p.
                let sc = |c: usize| {
                    let f = |s: &str| {
                        res.native_syscalls
                            .iter()
                            .find(|r| r.server == s && r.conns == c)
                            .map(|r| r.per_request())
                            .or_else(|| {
                                res.syscalls
                                    .iter()
                                    .find(|r| r.server == s && r.conns == c)
                                    .map(|r| r.per_request())
                            })
                    };
                    Some(f("tokio")? / f(srv)?)
                };
                let mem = || {
                    let f = |s: &str| {
                        res.memory
                            .iter()
                            .find(|r| r.server == s)
                            .map(|r| r.per_conn())
                    };
                    Some(f("tokio")? / f(srv)?.max(1.0))
                };
                let http = |cpu: bool| {
                    let f = |s: &str| res.http.iter().find(|r| r.server == s);
                    let (a, b) = (f(srv)?, f("tokio")?);
                    Some(if cpu {
                        b.cpu_ns_per_req() / a.cpu_ns_per_req()
                    } else {
                        a.req_per_s / b.req_per_s
                    })
                };
                (
                    srv.to_string(),
                    vec![sc(16), sc(256), mem(), http(false), http(true)],
                )
            })
            .collect(),
    };
    vec![micro, echo, sys]
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.filter(|v| v.is_finite())
        .map_or("-".into(), |v| format!("{v:.2}x"))
}

/// The report as Markdown. `tables` are the harness's measured sections ([`tables`]).
pub fn markdown(res: &Results) -> String {
    let mut s = String::new();
    let m = &res.machine;
    let _ = writeln!(
        s,
        "# Benchmarks\n\n<!-- Written by `cargo run --release -p loop-bench -- all`; edits are overwritten. -->\n"
    );
    let _ = writeln!(
        s,
        "Measured {} ({} run, {:.0} s). Every ratio is *how many times better than the reference*: \
         above 1 is better (for a time or a cost it is reference / subject, for a throughput \
         subject / reference).\n",
        m.date,
        if res.quick { "a `--quick`" } else { "a full" },
        res.wall_secs
    );
    let _ = writeln!(s, "![ratio to tokio](loop-bench/results/chart.png)\n");
    let _ = writeln!(s, "## Machine and command\n");
    let _ = writeln!(
        s,
        "- commit {}\n- {} CPUs: {}; Linux {}\n- {}; tokio {}; {}; uvloop {}; node {}\n- `{}` \
         (the whole run; `--quick` for a short one). Figures: `loop-bench/results/results.json`; \
         logs and strace/callgrind outputs: `target/loop-bench/`.\n",
        m.commit,
        m.nproc,
        m.cpu,
        m.kernel,
        m.rustc,
        m.tokio,
        m.python,
        m.uvloop,
        m.node,
        res.command
    );
    let _ = writeln!(
        s,
        "The machine is shared and noisy: every figure is a median over rounds, each round runs \
         every subject once (the order rotating), and ratios of Rust subjects are medians of \
         per-round ratios. Servers are pinned to CPU 0 and the load generator to CPU 1; the \
         figure that ranks servers is the server's CPU time per request \
         (`/proc/PID/task/*/schedstat` before and after), since the client shares the machine.\n"
    );
    let _ = writeln!(s, "## Targets (issues 8, 15 and 17)\n");
    let _ = writeln!(s, "| target | measured | holds |\n|---|---|---|");
    for t in targets(res) {
        let h = match t.holds {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(s, "| {} | {} | {h} |", t.what, t.measured);
    }
    let _ = writeln!(
        s,
        "\nWhere the time goes, by instruction counts, and why the echo CPU targets are out of \
         reach of any server on this kernel's loopback TCP (the *context* rows: the floors, \
         servers with no runtime at all, land at about tokio's cost): \
         [loop-bench/PROFILE.md](loop-bench/PROFILE.md) (`loop-bench/profile.sh BENCH SUBJECT` \
         reproduces each profile). The syscall counts at full speed include each connection's \
         set-up (accept, registration): at 256 connections that is about 0.06 per request, for \
         tokio too.\n"
    );
    s.push_str(&tables(res));
    if !res.notes.is_empty() {
        let _ = writeln!(s, "## Notes\n");
        for n in &res.notes {
            let _ = writeln!(s, "- {n}");
        }
        s.push('\n');
    }
    s
}

/// The measured tables (micro, instructions, echo, syscalls, memory, HTTP) as Markdown.
pub fn tables(res: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Micro-benchmarks\n");
    let _ = writeln!(s, "{}\n", crate::report_text::MICRO_METHOD);
    let _ = writeln!(
        s,
        "| bench | subject | n | median per op | p99 | vs reference | reference |\n|---|---|---|---|---|---|---|"
    );
    for r in &res.micro {
        let reference = micro_reference(&r.bench);
        let vs = micro_row(res, &r.bench, reference)
            .filter(|_| r.subject != reference)
            .map(|x| micro_speed(r, x));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.bench,
            r.subject,
            r.n,
            fmt_ns(r.median_ns()),
            r.median_p99().map_or("-".into(), fmt_ns),
            if r.subject == reference {
                "1.00x".into()
            } else {
                fmt_ratio(vs)
            },
            reference
        );
    }
    s.push('\n');
    if !res.instructions.is_empty() {
        let _ = writeln!(s, "### Instructions per operation (callgrind)\n");
        let _ = writeln!(
            s,
            "`valgrind --tool=callgrind` counts instructions exactly, so these do not move with \
             the machine's noise: (Ir at n=120,000 - Ir at n=20,000) / 100,000.\n"
        );
        let _ = writeln!(s, "| bench | subject | instructions/op |\n|---|---|---|");
        for r in &res.instructions {
            let _ = writeln!(s, "| {} | {} | {:.0} |", r.bench, r.subject, r.ir_per_op);
        }
        s.push('\n');
    }
    s.push_str(&crate::report_text::net_tables(res));
    s
}
