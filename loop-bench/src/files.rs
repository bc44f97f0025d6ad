//! The file I/O benchmark (`loop-bench files`): 4 KiB reads at random offsets of a 256 MiB
//! file in the page cache with 64 in flight, and 1 MiB sequential reads and writes; loop-fs
//! on each backend against `tokio::fs`, std's `read_at` on a thread pool (tokio's
//! `spawn_blocking`, what aiofiles does) and one thread calling `pread` (the floor).
//!
//! Peers in other crates (monoio, compio) print their rows with [`render`], one line per
//! subject (subject, ops/s, MiB/s), so every table reads the same.

use std::io::SeekFrom;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loop_policy::Backend;
use serde::{Deserialize, Serialize};

/// The workloads, in table order.
pub const WORKLOADS: [&str; 3] = [
    "random 4 KiB reads",
    "sequential 1 MiB reads",
    "sequential 1 MiB writes",
];

/// std's `read_at`/`write_all_at` through tokio's `spawn_blocking` (aiofiles' way).
const POOL: &str = "std on a thread pool";
/// One thread calling `pread`/`pwrite`.
const FLOOR: &str = "pread/pwrite, 1 thread (floor)";

const BLOCK: usize = 4096;
const CHUNK: usize = 1 << 20;
const IN_FLIGHT: usize = 64;

/// One subject's figure on one workload (the median of the runs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FilesRow {
    /// One of [`WORKLOADS`].
    pub workload: String,
    /// What ran: `loop-fs/uring`, `tokio::fs`, ...
    pub subject: String,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Mebibytes per second.
    pub mib_per_sec: f64,
}

/// The benchmark's size: the file, the random reads per run, the runs per subject.
#[derive(Clone, Copy, Debug)]
pub struct FilesConfig {
    /// The file's size in bytes (256 MiB; 64 MiB with `--quick`).
    pub file_size: u64,
    /// Random reads per run.
    pub random_reads: usize,
    /// Runs per subject (the median is kept).
    pub runs: usize,
}

impl FilesConfig {
    /// The full run, or a quick one.
    pub fn new(quick: bool) -> Self {
        if quick {
            FilesConfig {
                file_size: 64 << 20,
                random_reads: 64 * 1024,
                runs: 3,
            }
        } else {
            FilesConfig {
                file_size: 256 << 20,
                random_reads: 256 * 1024,
                runs: 5,
            }
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A small xorshift: reproducible offsets without a dependency.
fn offsets(seed: u64, n: usize, file_size: u64) -> Vec<u64> {
    let blocks = file_size / BLOCK as u64;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % blocks) * BLOCK as u64
        })
        .collect()
}

/// What one run measured: operations and bytes over the time they took.
struct Run {
    ops: usize,
    bytes: u64,
    took: Duration,
}

impl Run {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.took.as_secs_f64()
    }
}

/// The three workloads on one loop-fs backend.
mod ours {
    use super::*;

    fn run_on(backend: Backend, fut: impl Future<Output = Res<()>> + 'static) -> Res<Duration> {
        let lp = backend.new_event_loop()?;
        let t0 = Instant::now();
        lp.run_until_complete(fut)??;
        let took = t0.elapsed();
        lp.close()?;
        Ok(took)
    }

    pub(super) fn random(backend: Backend, path: &Path, cfg: FilesConfig) -> Res<Run> {
        let path = path.to_owned();
        let took = run_on(backend, async move {
            let lp = loop_api::get_running_loop()?;
            let file = Rc::new(loop_fs::File::open(&path).await?);
            let per_task = cfg.random_reads / IN_FLIGHT;
            let mut tasks = Vec::new();
            for t in 0..IN_FLIGHT {
                let (file, offs) = (file.clone(), offsets(t as u64 + 1, per_task, cfg.file_size));
                tasks.push(lp.create_task(async move {
                    let mut buf = Vec::with_capacity(BLOCK);
                    for off in offs {
                        let (res, back) = file.read_at(buf, off).await;
                        buf = back;
                        if res? != BLOCK {
                            return Err(std::io::Error::other("short read"));
                        }
                    }
                    Ok(())
                })?);
            }
            for t in tasks {
                t.await.map_err(|e| e.to_string())??;
            }
            Ok(())
        })?;
        let ops = cfg.random_reads / IN_FLIGHT * IN_FLIGHT;
        Ok(Run {
            ops,
            bytes: (ops * BLOCK) as u64,
            took,
        })
    }

    pub(super) fn seq_read(backend: Backend, path: &Path, cfg: FilesConfig) -> Res<Run> {
        let path = path.to_owned();
        let took = run_on(backend, async move {
            let file = loop_fs::File::open(&path).await?;
            let mut buf = Vec::with_capacity(CHUNK);
            let mut off = 0;
            while off < cfg.file_size {
                let (res, back) = file.read_at(buf, off).await;
                buf = back;
                off += res? as u64;
            }
            file.close().await?;
            Ok(())
        })?;
        Ok(seq_run(cfg, took))
    }

    pub(super) fn seq_write(backend: Backend, path: &Path, cfg: FilesConfig) -> Res<Run> {
        let path = path.to_owned();
        let took = run_on(backend, async move {
            let file = loop_fs::File::create(&path).await?;
            let mut buf = vec![0x5A; CHUNK];
            let mut off = 0;
            while off < cfg.file_size {
                let (res, back) = file.write_all_at(buf, off).await;
                buf = back;
                res?;
                off += CHUNK as u64;
            }
            file.close().await?;
            Ok(())
        })?;
        Ok(seq_run(cfg, took))
    }
}

fn seq_run(cfg: FilesConfig, took: Duration) -> Run {
    Run {
        ops: (cfg.file_size / CHUNK as u64) as usize,
        bytes: cfg.file_size,
        took,
    }
}

/// `tokio::fs` (seek + read_exact per read, each its own `File`, as tokio::fs has no pread)
/// and std's `read_at`/`write_all_at` through `spawn_blocking`, on a current-thread runtime.
mod peers {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    fn runtime() -> Res<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?)
    }

    pub(super) fn tokio_random(path: &Path, cfg: FilesConfig) -> Res<Run> {
        let rt = runtime()?;
        let per_task = cfg.random_reads / IN_FLIGHT;
        let t0 = Instant::now();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for t in 0..IN_FLIGHT {
                let (path, offs) = (
                    path.to_owned(),
                    offsets(t as u64 + 1, per_task, cfg.file_size),
                );
                set.spawn(async move {
                    let mut f = tokio::fs::File::open(&path).await?;
                    let mut buf = vec![0; BLOCK];
                    for off in offs {
                        f.seek(SeekFrom::Start(off)).await?;
                        f.read_exact(&mut buf).await?;
                    }
                    Ok::<(), std::io::Error>(())
                });
            }
            while let Some(r) = set.join_next().await {
                r??;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        let ops = per_task * IN_FLIGHT;
        Ok(Run {
            ops,
            bytes: (ops * BLOCK) as u64,
            took: t0.elapsed(),
        })
    }

    pub(super) fn pool_random(path: &Path, cfg: FilesConfig) -> Res<Run> {
        let rt = runtime()?;
        let file = Arc::new(std::fs::File::open(path)?);
        let per_task = cfg.random_reads / IN_FLIGHT;
        let t0 = Instant::now();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for t in 0..IN_FLIGHT {
                let (file, offs) = (file.clone(), offsets(t as u64 + 1, per_task, cfg.file_size));
                set.spawn(async move {
                    let mut buf = vec![0; BLOCK];
                    for off in offs {
                        let f = file.clone();
                        buf = tokio::task::spawn_blocking(move || {
                            f.read_exact_at(&mut buf, off).map(|()| buf)
                        })
                        .await??;
                    }
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                });
            }
            while let Some(r) = set.join_next().await {
                r?.map_err(|e| e.to_string())?;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        let ops = per_task * IN_FLIGHT;
        Ok(Run {
            ops,
            bytes: (ops * BLOCK) as u64,
            took: t0.elapsed(),
        })
    }

    pub(super) fn tokio_seq_read(path: &Path, cfg: FilesConfig) -> Res<Run> {
        let rt = runtime()?;
        let t0 = Instant::now();
        rt.block_on(async {
            let mut f = tokio::fs::File::open(path).await?;
            f.set_max_buf_size(CHUNK);
            let mut buf = vec![0; CHUNK];
            let mut total = 0;
            while total < cfg.file_size {
                f.read_exact(&mut buf).await?;
                total += CHUNK as u64;
            }
            Ok::<(), std::io::Error>(())
        })?;
        Ok(seq_run(cfg, t0.elapsed()))
    }

    pub(super) fn tokio_seq_write(path: &Path, cfg: FilesConfig) -> Res<Run> {
        let rt = runtime()?;
        let t0 = Instant::now();
        rt.block_on(async {
            let mut f = tokio::fs::File::create(path).await?;
            f.set_max_buf_size(CHUNK);
            let buf = vec![0x5A; CHUNK];
            let mut total = 0;
            while total < cfg.file_size {
                f.write_all(&buf).await?;
                total += CHUNK as u64;
            }
            f.flush().await?;
            Ok::<(), std::io::Error>(())
        })?;
        Ok(seq_run(cfg, t0.elapsed()))
    }

    pub(super) fn pool_seq(path: &Path, cfg: FilesConfig, write: bool) -> Res<Run> {
        let rt = runtime()?;
        let file = Arc::new(if write {
            std::fs::File::create(path)?
        } else {
            std::fs::File::open(path)?
        });
        let t0 = Instant::now();
        rt.block_on(async {
            let mut buf = vec![0x5A; CHUNK];
            let mut off = 0;
            while off < cfg.file_size {
                let f = file.clone();
                buf = tokio::task::spawn_blocking(move || {
                    if write {
                        f.write_all_at(&buf, off).map(|()| buf)
                    } else {
                        f.read_exact_at(&mut buf, off).map(|()| buf)
                    }
                })
                .await??;
                off += CHUNK as u64;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        Ok(seq_run(cfg, t0.elapsed()))
    }
}

/// One thread, blocking `pread`/`pwrite`: the floor nothing async can beat by much.
mod floor {
    use super::*;

    pub(super) fn random(path: &Path, cfg: FilesConfig) -> Res<Run> {
        let file = std::fs::File::open(path)?;
        let offs: Vec<u64> = (0..IN_FLIGHT)
            .flat_map(|t| offsets(t as u64 + 1, cfg.random_reads / IN_FLIGHT, cfg.file_size))
            .collect();
        let mut buf = vec![0; BLOCK];
        let t0 = Instant::now();
        for &off in &offs {
            file.read_exact_at(&mut buf, off)?;
        }
        Ok(Run {
            ops: offs.len(),
            bytes: (offs.len() * BLOCK) as u64,
            took: t0.elapsed(),
        })
    }

    pub(super) fn seq(path: &Path, cfg: FilesConfig, write: bool) -> Res<Run> {
        let file = if write {
            std::fs::File::create(path)?
        } else {
            std::fs::File::open(path)?
        };
        let mut buf = vec![0x5A; CHUNK];
        let t0 = Instant::now();
        let mut off = 0;
        while off < cfg.file_size {
            if write {
                file.write_all_at(&buf, off)?;
            } else {
                file.read_exact_at(&mut buf, off)?;
            }
            off += CHUNK as u64;
        }
        Ok(seq_run(cfg, t0.elapsed()))
    }
}

/// How to run one subject once.
type RunFn<'a> = Box<dyn Fn() -> Res<Run> + 'a>;

/// The subjects of one workload: name and how to run it once.
type Subject<'a> = (String, RunFn<'a>);

fn subjects<'a>(
    workload: &str,
    data: &'a Path,
    out: &'a Path,
    cfg: FilesConfig,
) -> Vec<Subject<'a>> {
    let mut v: Vec<Subject<'a>> = Vec::new();
    for b in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if !b.is_available() {
            continue;
        }
        let name = format!("loop-fs/{}", b.name());
        let f: RunFn<'a> = match workload {
            "random 4 KiB reads" => Box::new(move || ours::random(b, data, cfg)),
            "sequential 1 MiB reads" => Box::new(move || ours::seq_read(b, data, cfg)),
            _ => Box::new(move || ours::seq_write(b, out, cfg)),
        };
        v.push((name, f));
    }
    let (tokio_fs, pool, floor): (RunFn<'a>, RunFn<'a>, RunFn<'a>) = match workload {
        "random 4 KiB reads" => (
            Box::new(move || peers::tokio_random(data, cfg)),
            Box::new(move || peers::pool_random(data, cfg)),
            Box::new(move || floor::random(data, cfg)),
        ),
        "sequential 1 MiB reads" => (
            Box::new(move || peers::tokio_seq_read(data, cfg)),
            Box::new(move || peers::pool_seq(data, cfg, false)),
            Box::new(move || floor::seq(data, cfg, false)),
        ),
        _ => (
            Box::new(move || peers::tokio_seq_write(out, cfg)),
            Box::new(move || peers::pool_seq(out, cfg, true)),
            Box::new(move || floor::seq(out, cfg, true)),
        ),
    };
    v.push(("tokio::fs".into(), tokio_fs));
    v.push((POOL.into(), pool));
    v.push((FLOOR.into(), floor));
    v
}

/// Runs `workload` on `subject` once (for a profiler: `perf record loop-bench files-one ...`),
/// after making the data file in `dir`; gives ops/s.
///
/// # Errors
/// No such subject or workload, or the run failing.
pub fn run_one(dir: &Path, workload: &str, subject: &str, cfg: FilesConfig) -> Res<f64> {
    std::fs::create_dir_all(dir)?;
    let (data, out) = (dir.join("data-256m"), dir.join("written"));
    prepare(&data, cfg)?;
    let found = subjects(workload, &data, &out, cfg)
        .into_iter()
        .find(|(n, _)| n == subject);
    let res = match found {
        Some((_, f)) => f().map(|r| r.ops_per_sec()),
        None => Err(format!("no subject {subject:?} for workload {workload:?}").into()),
    };
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&out);
    res
}

/// Makes the data file (`file_size` bytes, not all zeroes) and reads it once so it is in the
/// page cache.
fn prepare(data: &Path, cfg: FilesConfig) -> Res<()> {
    let fresh = std::fs::metadata(data)
        .map(|m| m.len() != cfg.file_size)
        .unwrap_or(true);
    if fresh {
        let f = std::fs::File::create(data)?;
        let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
        let mut off = 0;
        while off < cfg.file_size {
            f.write_all_at(&chunk, off)?;
            off += CHUNK as u64;
        }
    }
    let f = std::fs::File::open(data)?;
    let mut buf = vec![0; CHUNK];
    let mut off = 0;
    while off < cfg.file_size {
        f.read_exact_at(&mut buf, off)?;
        off += CHUNK as u64;
    }
    Ok(())
}

/// Runs every workload on every subject, `cfg.runs` times each (interleaved), in `dir`
/// (the files are removed at the end), and gives the medians.
///
/// # Errors
/// A subject failing, or the files cannot be made.
pub fn run(dir: &Path, cfg: FilesConfig) -> Res<Vec<FilesRow>> {
    std::fs::create_dir_all(dir)?;
    let (data, out): (PathBuf, PathBuf) = (dir.join("data-256m"), dir.join("written"));
    let res = run_in(&data, &out, cfg);
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&out);
    res
}

fn run_in(data: &Path, out: &Path, cfg: FilesConfig) -> Res<Vec<FilesRow>> {
    prepare(data, cfg)?;
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        let subjects = subjects(workload, data, out, cfg);
        let mut runs: Vec<Vec<Run>> = subjects.iter().map(|_| Vec::new()).collect();
        for _ in 0..cfg.runs {
            for (i, (name, f)) in subjects.iter().enumerate() {
                // Each write run makes its file anew: truncating the last run's 256 MiB of
                // dirty pages is not what is measured.
                let _ = std::fs::remove_file(out);
                let r = f().map_err(|e| format!("{workload} on {name}: {e}"))?;
                runs[i].push(r);
            }
        }
        for ((name, _), mut rs) in subjects.into_iter().zip(runs) {
            rs.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
            let m = &rs[rs.len() / 2];
            let row = FilesRow {
                workload: workload.into(),
                subject: name,
                ops_per_sec: m.ops_per_sec(),
                mib_per_sec: m.bytes as f64 / (1 << 20) as f64 / m.took.as_secs_f64(),
            };
            eprintln!(
                "files {:<24} {:<30} {:>10.0} ops/s {:>8.0} MiB/s",
                row.workload, row.subject, row.ops_per_sec, row.mib_per_sec
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The rows as markdown tables, one per workload, one line per subject: subject, ops/s,
/// MiB/s (what peers in other crates print too).
pub fn render(rows: &[FilesRow]) -> String {
    let mut s = String::new();
    let mut workloads: Vec<&str> = Vec::new();
    for r in rows {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    for w in workloads {
        s.push_str(&format!(
            "\n**{w}**\n\n| subject | ops/s | MiB/s |\n|---|---:|---:|\n"
        ));
        for r in rows.iter().filter(|r| r.workload == w) {
            s.push_str(&format!(
                "| {} | {:.0} | {:.0} |\n",
                r.subject, r.ops_per_sec, r.mib_per_sec
            ));
        }
    }
    s
}

/// The targets on random reads: loop-fs on io_uring at least 3x `tokio::fs` and at least
/// 0.8x the one-thread `pread` floor; one line each, met or not met.
pub fn targets(rows: &[FilesRow]) -> String {
    let get = |s: &str| {
        rows.iter()
            .find(|r| r.workload == WORKLOADS[0] && r.subject == s)
            .map(|r| r.ops_per_sec)
    };
    let (Some(ours), Some(tokio), Some(floor)) =
        (get("loop-fs/uring"), get("tokio::fs"), get(FLOOR))
    else {
        return "- targets not checked: io_uring is not available here\n".into();
    };
    let verdict = |ok: bool| if ok { "**met**" } else { "**not met**" };
    format!(
        "- loop-fs on io_uring vs tokio::fs, random 4 KiB reads: {:.2}x (target at least 3x): {}\n\
         - loop-fs on io_uring vs the one-thread pread floor: {:.2}x (target at least 0.8x): {}\n",
        ours / tokio,
        verdict(ours / tokio >= 3.0),
        ours / floor,
        verdict(ours / floor >= 0.8),
    )
}
