//! `loop-bench`: the benchmark harness. See the crate docs (`src/lib.rs`) and
//! `loop-bench/README.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use loop_bench::micro::{self, MicroConfig, MicroRow};
use loop_bench::{Machine, Results, echo, http, native, report, servers, sys};

const USAGE: &str = "\
usage: loop-bench all [--quick]        everything; rewrites BENCHMARKS.md and loop-bench/results/
       loop-bench micro [--quick] [BENCH...]   micro-benchmarks (Rust, then asyncio and uvloop)
       loop-bench echo [--quick]       the echo matrix only
       loop-bench files [--quick]      file I/O (loop-fs vs tokio::fs, a thread pool, pread); rewrites BENCHMARKS.md's Files section
       loop-bench files-one WORKLOAD SUBJECT [--quick]   one run (for perf record)
       loop-bench syscalls [--quick]   syscalls per request (strace), ours and tokio only
       loop-bench hyper [--quick]      the hyper rows only (wrk), merged into results/results.json
       loop-bench memory               the idle-connection memory rows only, merged likewise
       loop-bench per-core [--quick]   our echo server on 1 loop and on one loop per CPU, merged likewise
       loop-bench report               rewrite BENCHMARKS.md and the chart from results/results.json
       loop-bench micro-one BENCH SUBJECT N   one run (for valgrind --tool=callgrind)
       loop-bench load ADDR CONNS SIZE REQUESTS  echo load on a running server (for profiling)
       loop-bench serve echo|http|hyper mio|polling|uring|tokio ADDR   a server (http: tokio only)";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let pos: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let done = match pos.as_slice() {
        ["all"] => all(quick),
        ["micro", only @ ..] => micro_only(quick, only),
        ["echo"] => echo_only(quick),
        ["files"] => files_only(quick),
        ["files-one", workload, subject] => {
            let cfg = loop_bench::files::FilesConfig::new(quick);
            loop_bench::files::run_one(
                &work_dir().unwrap_or_default().join("files"),
                workload,
                subject,
                cfg,
            )
            .map(|ops| println!("{workload} on {subject}: {ops:.0} ops/s"))
        }
        ["syscalls"] => syscalls_only(quick),
        ["report"] => rewrite_report(),
        ["hyper"] => hyper_only(quick),
        ["memory"] => memory_only(),
        ["per-core"] => per_core_only(quick),
        ["micro-one", bench, subject, n] => micro_one(bench, subject, n),
        ["load", addr, conns, size, reqs] => load(addr, conns, size, reqs),
        ["serve", kind, server, addr] => addr
            .parse()
            .map_err(Into::into)
            .and_then(|a| servers::serve(kind, server, a)),
        _ => {
            println!("{USAGE}");
            return if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loop-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate's parent folder).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where logs, strace and callgrind outputs go.
fn work_dir() -> Res<PathBuf> {
    let d = root().join("target/loop-bench");
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn micro_one(bench: &str, subject: &str, n: &str) -> Res<()> {
    let m = micro::run_one(bench, subject, n.parse()?)?;
    println!("{bench} {subject} n={n}: {:.1} ns/op", m.ns_per_op);
    Ok(())
}

fn load(addr: &str, conns: &str, size: &str, reqs: &str) -> Res<()> {
    let load = loop_bench::client::EchoLoad {
        addr: addr.parse()?,
        conns: conns.parse()?,
        size: size.parse()?,
        requests_per_conn: reqs.parse()?,
        cpu: None,
    };
    let mut out = loop_bench::client::run_echo(load, || {})?;
    let (p50, p99) = loop_bench::stats::p50_p99(&mut out.latencies_ns);
    println!(
        "{} requests in {:.3} s: {:.0} req/s, p50 {} us, p99 {} us",
        out.requests,
        out.elapsed.as_secs_f64(),
        out.requests as f64 / out.elapsed.as_secs_f64(),
        p50 / 1000,
        p99 / 1000
    );
    Ok(())
}

/// The Python micro-benchmarks (asyncio, uvloop) with n/5 operations (timers: n, as a heap's
/// cost depends on its size), or a note why not.
fn python_micro(cfg: MicroConfig, only: &[&str], notes: &mut Vec<String>) -> Vec<MicroRow> {
    let script = root().join("loop-bench/py/micro.py");
    let mut rows = Vec::new();
    for lp in ["asyncio", "uvloop"] {
        eprintln!("micro: python3 {lp} ...");
        let out = Command::new("python3")
            .arg(&script)
            .args(["--loop", lp])
            .args(["--n", &(cfg.n / 5).to_string()])
            .args(["--timers-n", &cfg.n.to_string()])
            .args(["--k", &(cfg.k / 2).max(50).to_string()])
            .args(["--reps", &cfg.reps.min(5).to_string()])
            .args(["--only", &only.join(",")])
            .output();
        match out {
            Ok(o) if o.status.success() => match serde_json::from_slice::<Vec<MicroRow>>(&o.stdout)
            {
                Ok(r) => {
                    for row in &r {
                        eprintln!(
                            "micro {:<13} {:<12} {:>10.1} ns/op",
                            row.bench,
                            row.subject,
                            row.median_ns()
                        );
                    }
                    rows.extend(r);
                }
                Err(e) => notes.push(format!("{lp} micro-benchmarks: bad output: {e}")),
            },
            Ok(o) => notes.push(format!(
                "{lp} micro-benchmarks skipped: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
            )),
            Err(e) => notes.push(format!("{lp} micro-benchmarks skipped: python3: {e}")),
        }
    }
    rows
}

/// Rust rows first, each bench's Python rows right after it.
fn merge_micro(rust: Vec<MicroRow>, py: Vec<MicroRow>) -> Vec<MicroRow> {
    let mut out = Vec::new();
    for bench in micro::BENCHES {
        out.extend(rust.iter().filter(|r| r.bench == bench).cloned());
        out.extend(py.iter().filter(|r| r.bench == bench).cloned());
    }
    out
}

fn micro_only(quick: bool, only: &[&str]) -> Res<()> {
    if let Some(bad) = only.iter().find(|b| !micro::BENCHES.contains(b)) {
        return Err(format!(
            "no micro-benchmark {bad:?}; the benchmarks are {}",
            micro::BENCHES.join(", ")
        )
        .into());
    }
    let cfg = MicroConfig::new(quick);
    let rust = micro::run_all(cfg, only)?;
    let mut res = Results {
        notes: Vec::new(),
        ..Results::default()
    };
    let py = python_micro(cfg, only, &mut res.notes);
    res.micro = merge_micro(rust, py);
    print!("{}", report::tables(&res));
    Ok(())
}

/// The heading of BENCHMARKS.md's Files section, which `files` writes and `all`/`report` keep.
const FILES_HEADING: &str = "## Files";

fn files_only(quick: bool) -> Res<()> {
    let cfg = loop_bench::files::FilesConfig::new(quick);
    let rows = loop_bench::files::run(&work_dir()?.join("files"), cfg)?;
    let mut cmd = "cargo run --release -p loop-bench -- files".to_string();
    if quick {
        cmd.push_str(" --quick");
    }
    let section = format!(
        "{FILES_HEADING}\n\nCommand: `{cmd}` ({} MiB file in the page cache, {} random reads per \
         run with 64 in flight, 1 MiB sequential reads and writes of the whole file; the median \
         of {} runs, the subjects interleaved run by run). loop-fs and tokio run on one thread, \
         their executors' threads (and io_uring's workers for buffered writes) beside it; the \
         floor is one thread alone. Peers from other crates print rows in the same table \
         (`loop_bench::files::render`).\n{}\nTargets (issue 17):\n\n{}",
        cfg.file_size >> 20,
        cfg.random_reads,
        cfg.runs,
        loop_bench::files::render(&rows),
        loop_bench::files::targets(&rows),
    );
    print!("{section}");
    let path = root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let (before, after) = split_files_section(&old);
    // The peers' section, if any, stays after it.
    let peers = after.find(PEERS_MARKER).map_or("", |i| &after[i..]);
    let text = format!("{}\n{section}", before.trim_end());
    let text = if peers.is_empty() {
        text
    } else {
        format!("{}\n\n{peers}", text.trim_end())
    };
    std::fs::write(&path, text)?;
    eprintln!("wrote the Files section of {}", path.display());
    Ok(())
}

/// `text` before its Files section, and the section (to the end: it is written last).
/// Where the peers' section (written by `loop-bench/peers/run.sh`) begins in BENCHMARKS.md.
const PEERS_MARKER: &str = "<!-- loop-bench/peers";

fn split_files_section(text: &str) -> (&str, &str) {
    match text.find(&format!("\n{FILES_HEADING}\n")) {
        Some(i) => (&text[..i + 1], &text[i + 1..]),
        None => (text, ""),
    }
}

fn echo_only(quick: bool) -> Res<()> {
    let (specs, notes) = echo::echo_servers(&std::env::current_exe()?, &root());
    let res = Results {
        echo: echo::run_matrix(&specs, &work_dir()?, if quick { 1 } else { 3 }, quick)?,
        notes,
        ..Results::default()
    };
    print!("{}", report::tables(&res));
    Ok(())
}

fn syscalls_only(quick: bool) -> Res<()> {
    let (specs, _) = echo::echo_servers(&std::env::current_exe()?, &root());
    let specs: Vec<_> = specs
        .into_iter()
        .filter(|s| s.name.starts_with("ours-") || s.name == "streams-mio" || s.name == "tokio")
        .collect();
    let dir = work_dir()?;
    let res = Results {
        syscalls: sys::syscall_table(&specs, &dir, &[16, 256], quick)?,
        native_syscalls: native::native_table(&specs, &dir, &[16, 256], quick)?,
        ..Results::default()
    };
    print!("{}", report::tables(&res));
    Ok(())
}

/// How many rounds the hyper rows take (each runs every server once, the order rotating).
const HYPER_ROUNDS: usize = 3;

/// The hyper rows: wrk against `loop-bench serve hyper` on every backend and on tokio, in
/// rounds (one with `--quick`); each server's row is its median round by CPU per request.
fn hyper_rows(quick: bool) -> Res<Vec<loop_bench::http::HttpRow>> {
    let (exe, root) = (std::env::current_exe()?, root());
    let mut servers = ["mio", "polling", "uring", "tokio"];
    let mut rounds = Vec::new();
    let mut log = String::new();
    for _ in 0..if quick { 1 } else { HYPER_ROUNDS } {
        let secs = if quick { 3 } else { 10 };
        let (rows, text) = http::run_wrk_hyper(&root, &exe, secs, 64, &servers.join(" "))?;
        log.push_str(&text);
        if rows.is_empty() {
            return Err(format!("wrk.sh (WRK_KIND=hyper) gave no figures: {}", text.trim()).into());
        }
        rounds.push(rows);
        servers.rotate_left(1);
    }
    std::fs::write(work_dir()?.join("wrk-hyper.txt"), &log)?;
    Ok(http::median_rows(&rounds))
}

/// Runs the hyper rows alone and merges them into the stored results.
fn hyper_only(quick: bool) -> Res<()> {
    let root = root();
    let text = std::fs::read_to_string(root.join("loop-bench/results/results.json"))?;
    let mut res: Results = serde_json::from_str(&text)?;
    res.hyper = hyper_rows(quick)?;
    res.notes.retain(|n| !n.starts_with("hyper rows:"));
    res.notes.push(format!(
        "hyper rows: `loop-bench hyper{}`, merged into the run above",
        if quick { " --quick" } else { "" }
    ));
    write_outputs(&root, &res)
}

/// Runs the memory rows alone (every echo server) and merges them into the stored results.
fn memory_only() -> Res<()> {
    let root = root();
    let text = std::fs::read_to_string(root.join("loop-bench/results/results.json"))?;
    let mut res: Results = serde_json::from_str(&text)?;
    let (specs, _) = echo::echo_servers(&std::env::current_exe()?, &root);
    res.memory = sys::memory_table(&specs, &work_dir()?, 10_000)?;
    res.notes.retain(|n| !n.starts_with("memory rows:"));
    res.notes.push(format!(
        "memory rows: `loop-bench memory` at {} ({}), merged into the run above",
        machine().commit,
        machine().date
    ));
    write_outputs(&root, &res)
}

/// Runs the per-core rows alone and merges them into the stored results.
fn per_core_only(quick: bool) -> Res<()> {
    let root = root();
    let text = std::fs::read_to_string(root.join("loop-bench/results/results.json"))?;
    let mut res: Results = serde_json::from_str(&text)?;
    let exe = std::env::current_exe()?;
    res.per_core = echo::per_core_rows(&exe, &work_dir()?, if quick { 1 } else { 3 }, quick)?;
    res.notes.retain(|n| !n.starts_with("per-core rows:"));
    res.notes.push(format!(
        "per-core rows: `loop-bench per-core{}` at {} ({}), merged into the run above",
        if quick { " --quick" } else { "" },
        machine().commit,
        machine().date
    ));
    write_outputs(&root, &res)
}

fn rewrite_report() -> Res<()> {
    let root = root();
    let text = std::fs::read_to_string(root.join("loop-bench/results/results.json"))?;
    write_outputs(&root, &serde_json::from_str(&text)?)
}

fn capture(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "not installed".into())
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap_or_default();
    let tokio = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"tokio\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("?".into(), |v| v.trim_matches('"').to_string());
    Machine {
        nproc: loop_bench::procfs::num_cpus(),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or("?".into(), |v| {
                v.trim_start_matches([' ', '\t', ':']).to_string()
            }),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        rustc: capture("rustc", &["-V"]),
        tokio,
        python: capture("python3", &["--version"]),
        uvloop: capture(
            "python3",
            &["-c", "import uvloop; print(uvloop.__version__)"],
        ),
        node: capture("node", &["--version"]),
        date: capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        commit: capture("git", &["describe", "--always", "--dirty"]),
    }
}

/// Runs a step; its failure becomes a note and the run goes on.
fn step<T: Default>(notes: &mut Vec<String>, name: &str, f: impl FnOnce() -> Res<T>) -> T {
    let t0 = Instant::now();
    eprintln!("== {name}");
    match f() {
        Ok(v) => {
            eprintln!("== {name}: {:.0} s", t0.elapsed().as_secs_f64());
            v
        }
        Err(e) => {
            eprintln!("== {name} failed: {e}");
            notes.push(format!("{name} failed: {e}"));
            T::default()
        }
    }
}

fn all(quick: bool) -> Res<()> {
    let t0 = Instant::now();
    let exe = std::env::current_exe()?;
    let root = root();
    let dir = work_dir()?;
    let mut res = Results {
        machine: machine(),
        quick,
        command: format!(
            "cargo run --release -p loop-bench -- all{}",
            if quick { " --quick" } else { "" }
        ),
        ..Results::default()
    };
    let notes = &mut res.notes;
    let cfg = MicroConfig::new(quick);
    let rust = step(notes, "micro (Rust)", || micro::run_all(cfg, &[]));
    let py = python_micro(cfg, &[], notes);
    res.micro = merge_micro(rust, py);
    if Command::new("valgrind").arg("--version").output().is_ok() {
        res.instructions = step(notes, "callgrind", || {
            Ok(sys::instruction_table(&exe, &dir))
        });
    } else {
        notes.push("instructions per op skipped: valgrind is not installed".into());
    }
    let (specs, missing) = echo::echo_servers(&exe, &root);
    notes.extend(missing);
    let reps = if quick { 1 } else { 3 };
    res.echo = step(notes, "echo", || {
        Ok(echo::run_matrix(&specs, &dir, reps, quick)?)
    });
    if Command::new("strace").arg("-V").output().is_ok() {
        res.syscalls = step(notes, "syscalls", || {
            Ok(sys::syscall_table(&specs, &dir, &[16, 256], quick)?)
        });
        let rust: Vec<_> = specs
            .iter()
            .filter(|s| s.name.starts_with("ours-") || s.name == "streams-mio" || s.name == "tokio")
            .cloned()
            .collect();
        res.native_syscalls = step(notes, "syscalls at full speed", || {
            Ok(native::native_table(&rust, &dir, &[16, 256], quick)?)
        });
    } else {
        notes.push("syscalls skipped: strace is not installed".into());
    }
    res.memory = step(notes, "memory", || {
        Ok(sys::memory_table(&specs, &dir, 10_000)?)
    });
    res.http = step(notes, "http", || {
        let (rows, text) = http::run_wrk(&root, &exe, if quick { 3 } else { 10 }, 64)?;
        std::fs::write(dir.join("wrk.txt"), &text)?;
        if rows.is_empty() {
            return Err(format!("wrk.sh gave no figures: {}", text.trim()).into());
        }
        Ok(rows)
    });
    res.hyper = step(&mut res.notes, "hyper", || hyper_rows(quick));
    res.wall_secs = t0.elapsed().as_secs_f64();
    write_outputs(&root, &res)
}

/// Writes `loop-bench/results/results.json`, the chart, and `BENCHMARKS.md`.
fn write_outputs(root: &Path, res: &Results) -> Res<()> {
    let out = root.join("loop-bench/results");
    std::fs::create_dir_all(&out)?;
    let json = out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(res)?)?;
    let chart = out.join("chart.json");
    std::fs::write(
        &chart,
        serde_json::to_string_pretty(&report::chart_panels(res))?,
    )?;
    let mut res = res.clone();
    let drew = Command::new("python3")
        .arg(root.join("loop-bench/py/chart.py"))
        .arg(&chart)
        .arg(out.join("chart.png"))
        .status();
    if !drew.is_ok_and(|s| s.success()) {
        res.notes.push(
            "chart not drawn: python3 with matplotlib is needed (pip install matplotlib)".into(),
        );
    }
    // The Files section comes from `loop-bench files`, not from results.json: keep it.
    let old = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap_or_default();
    let (_, files) = split_files_section(&old);
    // The peers' section (`loop-bench/peers/run.sh`, a run of its own) stays at the end.
    let files = files
        .split(PEERS_MARKER)
        .next()
        .unwrap_or_default()
        .trim_end();
    let mut md = report::markdown(&res);
    if !files.is_empty() {
        md = format!("{}\n\n{files}", md.trim_end());
    }
    if let Ok(peers) = std::fs::read_to_string(out.join("peers.md")) {
        md = format!("{}\n\n{peers}", md.trim_end());
    }
    std::fs::write(root.join("BENCHMARKS.md"), md)?;
    eprintln!(
        "wrote BENCHMARKS.md, {} and chart.png ({:.0} s)",
        json.display(),
        res.wall_secs
    );
    Ok(())
}
