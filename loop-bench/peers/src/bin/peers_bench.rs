//! `peers-bench`: the peers' echo matrix (beside ours and tokio), their memory per idle
//! connection and their file benchmark; writes `loop-bench/results/peers.{json,md}` and that
//! section of `BENCHMARKS.md`. `loop-bench/peers/run.sh` builds everything and runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use loop_bench_peers::runner::{self, Paths, PeersResults};
use loop_bench_peers::{Workload, render};

const USAGE: &str = "\
usage: peers-bench [echo] [memory] [file] --loop-bench PATH --bin-dir DIR [--file PATH]
                   [--reps N] [--rounds N] [--idle N] [--notes FILE] [--quick]
       peers-bench report              rewrite the section from loop-bench/results/peers.json
       peers-bench pread WORKLOAD PATH the file benchmark's baseline, one run";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The value after `--name`, if given.
fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

fn capture(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "?".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}

fn machine(root: &Path) -> loop_bench::Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let root = root.display().to_string();
    loop_bench::Machine {
        nproc: loop_bench::procfs::num_cpus(),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or("?".into(), |v| {
                v.trim_start_matches([' ', '\t', ':']).to_string()
            }),
        kernel: capture("uname", &["-r"]),
        rustc: capture("rustc", &["-V"]),
        date: capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        commit: capture("git", &["-C", &root, "describe", "--always", "--dirty"]),
        ..Default::default()
    }
}

fn results_path(root: &Path) -> PathBuf {
    root.join("loop-bench/results/peers.json")
}

fn write(root: &Path, res: &PeersResults) -> Res<()> {
    std::fs::write(results_path(root), serde_json::to_string_pretty(res)?)?;
    let md = render::markdown(res);
    std::fs::write(root.join("loop-bench/results/peers.md"), &md)?;
    let doc_path = root.join("BENCHMARKS.md");
    let doc = std::fs::read_to_string(&doc_path)?;
    std::fs::write(&doc_path, render::splice(&doc, &md))?;
    eprintln!("wrote BENCHMARKS.md and loop-bench/results/peers.{{json,md}}");
    Ok(())
}

fn run(args: &[String], steps: &[&str]) -> Res<()> {
    let root = root().canonicalize()?;
    let need = |n: &str| opt(args, n).ok_or_else(|| format!("{n} is required\n{USAGE}"));
    let work = root.join("target/loop-bench/peers");
    std::fs::create_dir_all(&work)?;
    let p = Paths {
        loop_bench: need("--loop-bench")?.into(),
        bin_dir: need("--bin-dir")?.into(),
        work,
        root: root.clone(),
    };
    let quick = args.iter().any(|a| a == "--quick");
    let num = |n: &str, d: usize| opt(args, n).map_or(Ok(d), str::parse);
    let mut res: PeersResults = std::fs::read_to_string(results_path(&root))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    res.notes = opt(args, "--notes")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|t| {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let lock =
        std::fs::read_to_string(root.join("loop-bench/peers/Cargo.lock")).unwrap_or_default();
    res.versions = runner::versions(&lock);
    loop_bench::procfs::raise_nofile();
    let specs = runner::echo_specs(&p, &mut res.notes);
    if steps.contains(&"echo") {
        res.machine = machine(&root);
        res.reps = num("--reps", if quick { 1 } else { 5 })?;
        res.command = format!(
            "loop-bench/peers/run.sh{}",
            if quick { " --quick" } else { "" }
        );
        match runner::run_echo(&specs, &p, res.reps, quick) {
            Ok(rows) => res.echo = rows,
            Err(e) => res
                .notes
                .push(format!("echo matrix failed: {}", runner::short(&e))),
        }
        write(&root, &res)?;
    }
    if steps.contains(&"memory") {
        res.memory = runner::run_memory(&specs, &p, num("--idle", 10_000)?, &mut res.notes);
        write(&root, &res)?;
    }
    if steps.contains(&"file") {
        let file = opt(args, "--file")
            .map_or_else(|| root.join("target/peers/file-256m.bin"), PathBuf::from);
        runner::prepare_file(&file, loop_bench_peers::SEQ_WRITE_BYTES)?;
        let m = machine(&root);
        res.files_date = format!("{} at commit {}", m.date, m.commit);
        res.files = runner::run_files(
            &p,
            &file,
            num("--rounds", if quick { 1 } else { 5 })?,
            &mut res.notes,
        );
    }
    write(&root, &res)
}

fn pread(workload: &str, path: &str) -> Res<()> {
    let w = Workload::parse(workload)?;
    let path = Path::new(path);
    let len = match w {
        Workload::SeqWrite => loop_bench_peers::SEQ_WRITE_BYTES,
        _ => loop_bench_peers::file_len(path)?,
    };
    println!("{}", runner::pread_run(w, path, len)?.line("pread"));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a.as_str())
        .collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let done = match words.as_slice() {
        ["pread", w, path] => pread(w, path),
        ["report"] => std::fs::read_to_string(results_path(&root()))
            .map_err(Into::into)
            .and_then(|t| Ok(serde_json::from_str::<PeersResults>(&t)?))
            .and_then(|r| write(&root(), &r)),
        [] => run(&args, &["echo", "memory", "file"]),
        steps if steps.iter().all(|s| ["echo", "memory", "file"].contains(s)) => run(&args, steps),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
