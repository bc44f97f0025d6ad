//! `peers-bench`: runs the peers beside ours and tokio with loop-bench's own harness (the echo
//! matrix of `loop-bench echo`, the idle-connection memory of `loop-bench all`), runs the file
//! benchmark on the peers and a `pread` baseline, and writes `loop-bench/results/peers.json`,
//! `loop-bench/results/peers.md` and that section of `BENCHMARKS.md`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use loop_bench::echo::{self, Running, ServerSpec};
use serde::{Deserialize, Serialize};

use crate::{FileRun, Workload};

/// The peers, in report order.
pub const PEERS: [&str; 5] = ["monoio", "compio", "glommio", "tokio-uring", "smol"];
/// The peers with a file benchmark (smol has no file I/O of its own).
pub const FILE_PEERS: [&str; 4] = ["monoio", "compio", "glommio", "tokio-uring"];

/// One subject's file runs on one workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRow {
    /// `rand4k`, `seqread`, `seqwrite`.
    pub workload: String,
    /// `pread`, `monoio`, ...
    pub subject: String,
    /// Every run: (operations per second, MiB per second), round by round.
    pub runs: Vec<(f64, f64)>,
}

/// Everything the peers' runs measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeersResults {
    /// The machine, the tools and the commit of the echo run.
    pub machine: loop_bench::Machine,
    /// Versions of the peer crates (from `loop-bench/peers/Cargo.lock`).
    pub versions: Vec<(String, String)>,
    /// The command of the echo run.
    pub command: String,
    /// Rounds per cell of the echo matrix.
    pub reps: usize,
    /// The echo matrix: ours, tokio and the peers.
    pub echo: Vec<echo::EchoRow>,
    /// Memory per idle connection.
    pub memory: Vec<loop_bench::sys::MemoryRow>,
    /// When the file runs were made (UTC), and at which commit.
    pub files_date: String,
    /// The file benchmark.
    pub files: Vec<FileRow>,
    /// Peers that did not build or run, and why.
    pub notes: Vec<String>,
}

/// Where things are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The repository's root.
    pub root: PathBuf,
    /// The root's release `loop-bench` binary.
    pub loop_bench: PathBuf,
    /// Where the `peer-*` binaries are.
    pub bin_dir: PathBuf,
    /// Logs.
    pub work: PathBuf,
}

impl Paths {
    /// The `peer-NAME` program, if it was built.
    pub fn peer(&self, name: &str) -> Option<PathBuf> {
        Some(self.bin_dir.join(format!("peer-{name}"))).filter(|p| p.is_file())
    }
}

/// `ours-mio`, `ours-polling`, `ours-uring` and `tokio` from the root's `loop-bench`, then every
/// peer that was built and starts (a note for each that does not).
pub fn echo_specs(p: &Paths, notes: &mut Vec<String>) -> Vec<ServerSpec> {
    let lb = p.loop_bench.display().to_string();
    let mut v: Vec<ServerSpec> = ["mio", "polling", "uring", "tokio"]
        .iter()
        .map(|b| ServerSpec {
            name: if *b == "tokio" {
                "tokio".into()
            } else {
                format!("ours-{b}")
            },
            argv: vec![lb.clone(), "serve".into(), "echo".into(), (*b).into()],
        })
        .collect();
    for name in PEERS {
        let Some(bin) = p.peer(name) else {
            if !notes.iter().any(|n| n.starts_with(&format!("{name}:"))) {
                notes.push(format!("{name}: peer-{name} was not built"));
            }
            continue;
        };
        let spec = ServerSpec {
            name: name.into(),
            argv: vec![bin.display().to_string(), "echo".into()],
        };
        match Running::start(&spec, &p.work) {
            Ok(_) => v.push(spec),
            Err(e) => notes.push(format!(
                "{name}: its echo server did not start: {}",
                short(&e)
            )),
        }
    }
    v
}

/// The first line of an error, at most 300 characters.
pub fn short(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(300).collect()
}

/// The echo matrix over `specs`, `reps` rounds per cell.
///
/// # Errors
/// A server failing during the run.
pub fn run_echo(
    specs: &[ServerSpec],
    p: &Paths,
    reps: usize,
    quick: bool,
) -> io::Result<Vec<echo::EchoRow>> {
    echo::run_matrix(specs, &p.work, reps, quick)
}

/// RSS per idle connection of every server, `n` connections each; a server that fails gets a
/// note instead of a row.
pub fn run_memory(
    specs: &[ServerSpec],
    p: &Paths,
    n: usize,
    notes: &mut Vec<String>,
) -> Vec<loop_bench::sys::MemoryRow> {
    let mut rows = Vec::new();
    for spec in specs {
        match loop_bench::sys::memory_table(std::slice::from_ref(spec), &p.work, n) {
            Ok(r) => rows.extend(r),
            Err(e) => notes.push(format!(
                "{}: memory per idle connection: {}",
                spec.name,
                short(&e)
            )),
        }
    }
    rows
}

/// Makes `path` a file of `len` bytes (pseudo-random contents) unless it is one already, then
/// reads it through once so that it is in the page cache.
///
/// # Errors
/// Writing or reading it failing.
pub fn prepare_file(path: &Path, len: u64) -> io::Result<()> {
    use std::io::{Read, Write};
    if std::fs::metadata(path).map(|m| m.len()).ok() != Some(len) {
        eprintln!("peers: writing {} ({} MiB)", path.display(), len >> 20);
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut x = 0x2545_F491_4F6C_DD1D_u64;
        let mut chunk = vec![0u8; crate::SEQ_BLOCK];
        for _ in 0..len.div_ceil(chunk.len() as u64) {
            for w in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
            }
            f.write_all(&chunk)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.set_len(len)?;
    }
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; crate::SEQ_BLOCK];
    while f.read(&mut buf)? > 0 {}
    Ok(())
}

/// The baseline: the same workload with plain `pread`/`pwrite` on this thread, one at a time.
///
/// # Errors
/// An I/O failing.
pub fn pread_run(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun> {
    use std::os::unix::fs::FileExt;
    let (mut ops, mut bytes) = (0u64, 0u64);
    let t0;
    match workload {
        Workload::Rand4k => {
            let f = std::fs::File::open(path)?;
            let mut buf = vec![0u8; crate::RAND_BLOCK];
            t0 = Instant::now();
            for task in 0..crate::IN_FLIGHT {
                for off in crate::rand_offsets(task, len) {
                    bytes += f.read_at(&mut buf, off)? as u64;
                }
            }
            ops = bytes / crate::RAND_BLOCK as u64;
        }
        Workload::SeqRead => {
            let f = std::fs::File::open(path)?;
            let mut buf = vec![0u8; crate::SEQ_BLOCK];
            t0 = Instant::now();
            for _ in 0..crate::SEQ_READ_PASSES {
                for off in crate::seq_offsets(len) {
                    bytes += f.read_at(&mut buf, off)? as u64;
                    ops += 1;
                }
            }
        }
        Workload::SeqWrite => {
            let f = std::fs::File::create(path)?;
            let buf = vec![0x5a_u8; crate::SEQ_BLOCK];
            t0 = Instant::now();
            for off in crate::seq_offsets(len) {
                f.write_all_at(&buf, off)?;
                bytes += buf.len() as u64;
                ops += 1;
            }
        }
    }
    Ok(FileRun {
        ops,
        bytes,
        elapsed: t0.elapsed(),
    })
}

/// Parses a result line `SUBJECT OPS/S MIB/S`.
pub fn parse_line(line: &str) -> Option<(String, f64, f64)> {
    let mut it = line.split_whitespace();
    let (s, o, m) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    Some((s.to_string(), o.parse().ok()?, m.parse().ok()?))
}

/// One run of `argv WORKLOAD PATH`: its result line.
fn file_once(argv: &[String], w: Workload, path: &Path, scratch: &Path) -> io::Result<(f64, f64)> {
    let target = if w == Workload::SeqWrite {
        scratch
    } else {
        path
    };
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .arg(w.name())
        .arg(target)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().rev().find_map(parse_line) {
        Some((_, ops, mib)) if out.status.success() => Ok((ops, mib)),
        _ => Err(io::Error::other(format!(
            "{} {}: {}",
            argv[0],
            w.name(),
            short(&String::from_utf8_lossy(&out.stderr))
        ))),
    }
}

/// The file benchmark: every workload, `rounds` rounds, every subject once a round (the order
/// rotating); a subject that fails is dropped with a note.
pub fn run_files(p: &Paths, path: &Path, rounds: usize, notes: &mut Vec<String>) -> Vec<FileRow> {
    let me =
        std::env::current_exe().map_or_else(|_| "peers-bench".into(), |e| e.display().to_string());
    let mut subjects: Vec<(String, Vec<String>)> = vec![("pread".into(), vec![me, "pread".into()])];
    for name in FILE_PEERS {
        if let Some(bin) = p.peer(name) {
            subjects.push((name.into(), vec![bin.display().to_string(), "file".into()]));
        }
    }
    let scratch = path.with_extension("write");
    let mut rows = Vec::new();
    for w in Workload::ALL {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); subjects.len()];
        let mut failed = vec![false; subjects.len()];
        for round in 0..rounds {
            for j in 0..subjects.len() {
                let i = (j + round) % subjects.len();
                if failed[i] {
                    continue;
                }
                match file_once(&subjects[i].1, w, path, &scratch) {
                    Ok(r) => {
                        eprintln!(
                            "file {:<8} {:<12} {:>10.0} ops/s {:>8.1} MiB/s",
                            w.name(),
                            subjects[i].0,
                            r.0,
                            r.1
                        );
                        runs[i].push(r);
                    }
                    Err(e) => {
                        failed[i] = true;
                        notes.push(format!(
                            "{} file {}: {}",
                            subjects[i].0,
                            w.name(),
                            short(&e)
                        ));
                    }
                }
            }
        }
        for ((name, _), runs) in subjects.iter().zip(runs) {
            if !runs.is_empty() && runs.len() == rounds {
                rows.push(FileRow {
                    workload: w.name().into(),
                    subject: name.clone(),
                    runs,
                });
            }
        }
    }
    let _ = std::fs::remove_file(&scratch);
    rows
}

/// Versions of the peer crates and tokio in `Cargo.lock` text.
pub fn versions(lock: &str) -> Vec<(String, String)> {
    [
        "monoio",
        "compio",
        "glommio",
        "tokio-uring",
        "smol",
        "tokio",
    ]
    .iter()
    .filter_map(|name| {
        let p = lock
            .split("[[package]]")
            .find(|p| p.contains(&format!("name = \"{name}\"\n")))?;
        let v = p.lines().find_map(|l| l.strip_prefix("version = "))?;
        Some(((*name).to_string(), v.trim_matches('"').to_string()))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_versions() {
        assert_eq!(
            parse_line("monoio 123 4.5"),
            Some(("monoio".into(), 123.0, 4.5))
        );
        assert_eq!(parse_line("listening on x"), None);
        let lock = "[[package]]\nname = \"smol\"\nversion = \"2.0.2\"\n\n[[package]]\nname = \"tokio\"\nversion = \"1.54.1\"\n";
        assert_eq!(
            versions(lock),
            vec![
                ("smol".into(), "2.0.2".into()),
                ("tokio".into(), "1.54.1".into())
            ]
        );
    }
}
