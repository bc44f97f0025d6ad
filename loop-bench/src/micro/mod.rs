//! Micro-benchmarks: each of ours beside its floor or peer, run in pairs and repeated.
//!
//! | bench          | ours (backend)                          | beside it                          |
//! |----------------|-----------------------------------------|------------------------------------|
//! | `call_soon`    | `call_soon` x n, then run (mio)         | `VecDeque<Box<dyn FnOnce()>>` (floor) |
//! | `create_task`  | `create_task` x n from a task (mio)     | tokio `spawn_local` (`LocalSet`)   |
//! | `timers`       | `call_later` + cancel x n (mio)         | tokio `sleep` polled once, dropped |
//! | `threadsafe_T` | `call_soon_threadsafe` from T threads   | tokio `Handle::spawn`, tokio mpsc  |
//! | `wake_T`       | wake-up latency of a blocked loop       | tokio `Handle::spawn`              |
//! | `queue`        | `loop_sync::Queue` (128) put + get      | tokio bounded `mpsc` (128)         |
//! | `lock`         | `loop_sync::Lock` lock + release        | tokio `Mutex`                      |
//! | `event`        | `loop_sync::Event` ping-pong round      | tokio `Notify` ping-pong round     |
//! | `gather_1000`  | `loop_sync::gather` of 1,000 tasks, per task | tokio `JoinSet` of 1,000, per task |
//!
//! The ready-queue and timer benches touch no I/O, so they run on one backend (mio); the
//! thread-safe ones go through each driver's waker and run on every backend.

pub mod ours;
pub mod peers;

use std::time::Duration;

use loop_policy::Backend;
use serde::{Deserialize, Serialize};

use crate::stats;

/// The bound of the queue benches (ours and tokio's mpsc).
pub const QUEUE_SIZE: usize = 128;

/// Tasks per `gather` (and per tokio `JoinSet`) in the `gather_1000` bench.
pub const GATHER_BATCH: usize = 1000;

/// How long a latency thread waits before each send, so the loop is blocked in its poll.
pub const WAKE_GAP: Duration = Duration::from_micros(300);

/// One run of one benchmark.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Measure {
    /// Nanoseconds per operation (for latency benches: the p50 latency).
    pub ns_per_op: f64,
    /// For latency benches: the p99 latency in nanoseconds.
    pub p99_ns: Option<f64>,
}

impl Measure {
    /// `took` for `n` operations.
    pub fn per_op(took: Duration, n: usize) -> Measure {
        Measure {
            ns_per_op: took.as_nanos() as f64 / n.max(1) as f64,
            p99_ns: None,
        }
    }

    /// p50 and p99 of latency samples in nanoseconds.
    pub fn latency(mut samples: Vec<u64>) -> Measure {
        let (p50, p99) = stats::p50_p99(&mut samples);
        Measure {
            ns_per_op: p50 as f64,
            p99_ns: Some(p99 as f64),
        }
    }
}

/// What a benchmark function gives.
pub type BenchResult = Result<Measure, Box<dyn std::error::Error>>;

/// The delay of timer `i`: spread over 1..61 s in a scrambled order (same for every peer).
pub fn timer_delay(i: usize) -> Duration {
    let scrambled = (i as u64).wrapping_mul(2_654_435_761) % 60_000_000;
    Duration::from_micros(1_000_000 + scrambled)
}

/// The runs of one subject (ours on a backend, the floor, a peer) in one benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MicroRow {
    /// The benchmark: `call_soon`, `create_task`, `timers`, `threadsafe_1`, `wake_4`, ...
    pub bench: String,
    /// Who ran it: `ours-mio`, `floor`, `tokio`, `tokio-mpsc`, `asyncio`, `uvloop`, ...
    pub subject: String,
    /// Operations per run (latency benches: samples per thread).
    pub n: usize,
    /// True when run `i` was made right beside run `i` of the other subjects of the bench.
    pub paired: bool,
    /// Every run.
    pub runs: Vec<Measure>,
}

impl MicroRow {
    /// Median nanoseconds per operation (latency benches: median p50).
    pub fn median_ns(&self) -> f64 {
        stats::median(&self.runs.iter().map(|m| m.ns_per_op).collect::<Vec<_>>())
    }

    /// Median p99 latency (latency benches only).
    pub fn median_p99(&self) -> Option<f64> {
        let v: Vec<f64> = self.runs.iter().filter_map(|m| m.p99_ns).collect();
        (!v.is_empty()).then(|| stats::median(&v))
    }
}

/// How big and how often.
#[derive(Clone, Copy, Debug)]
pub struct MicroConfig {
    /// Operations per run of the queue and timer benches and of the thread-safe throughput.
    pub n: usize,
    /// Latency samples per thread per run.
    pub k: usize,
    /// Runs per subject.
    pub reps: usize,
}

impl MicroConfig {
    /// The full configuration, or the quick one.
    pub fn new(quick: bool) -> Self {
        if quick {
            MicroConfig {
                n: 200_000,
                k: 200,
                reps: 3,
            }
        } else {
            MicroConfig {
                n: 1_000_000,
                k: 1_000,
                reps: 7,
            }
        }
    }
}

type BenchFn = Box<dyn Fn() -> BenchResult>;

const BACKENDS: [Backend; 3] = [Backend::Mio, Backend::Polling, Backend::Uring];

fn ours_name(b: Backend) -> String {
    format!("ours-{}", format!("{b:?}").to_lowercase())
}

/// Every subject of benchmark `bench` with its function, for `cfg`.
fn subjects(bench: &str, cfg: MicroConfig) -> Vec<(String, usize, BenchFn)> {
    let n = cfg.n;
    let k = cfg.k;
    let mio = Backend::Mio;
    let mut v: Vec<(String, usize, BenchFn)> = Vec::new();
    match bench {
        "call_soon" => {
            v.push((ours_name(mio), n, Box::new(move || ours::call_soon(mio, n))));
            v.push(("floor".into(), n, Box::new(move || peers::fifo_floor(n))));
        }
        "create_task" => {
            v.push((
                ours_name(mio),
                n,
                Box::new(move || ours::create_task(mio, n)),
            ));
            v.push(("tokio".into(), n, Box::new(move || peers::spawn_local(n))));
        }
        "timers" => {
            v.push((ours_name(mio), n, Box::new(move || ours::timers(mio, n))));
            v.push(("tokio".into(), n, Box::new(move || peers::tokio_timers(n))));
        }
        "queue" => {
            v.push((ours_name(mio), n, Box::new(move || ours::queue(mio, n))));
            v.push(("tokio".into(), n, Box::new(move || peers::tokio_mpsc(n))));
        }
        "lock" => {
            v.push((ours_name(mio), n, Box::new(move || ours::lock(mio, n))));
            v.push(("tokio".into(), n, Box::new(move || peers::tokio_mutex(n))));
        }
        "event" => {
            v.push((ours_name(mio), n, Box::new(move || ours::event(mio, n))));
            v.push(("tokio".into(), n, Box::new(move || peers::tokio_notify(n))));
        }
        "gather_1000" => {
            v.push((ours_name(mio), n, Box::new(move || ours::gather(mio, n))));
            v.push((
                "tokio".into(),
                n,
                Box::new(move || peers::tokio_join_set(n)),
            ));
        }
        b if b.starts_with("threadsafe_") => {
            let t: usize = b["threadsafe_".len()..].parse().unwrap_or(1);
            for be in BACKENDS.into_iter().filter(|b| b.is_available()) {
                v.push((
                    ours_name(be),
                    n,
                    Box::new(move || ours::threadsafe(be, n, t)),
                ));
            }
            v.push((
                "tokio".into(),
                n,
                Box::new(move || peers::spawn_remote(n, t)),
            ));
            v.push((
                "tokio-mpsc".into(),
                n,
                Box::new(move || peers::mpsc_remote(n, t)),
            ));
        }
        b if b.starts_with("wake_") => {
            let t: usize = b["wake_".len()..].parse().unwrap_or(1);
            for be in BACKENDS.into_iter().filter(|b| b.is_available()) {
                v.push((
                    ours_name(be),
                    k,
                    Box::new(move || ours::wake_latency(be, k, t)),
                ));
            }
            v.push((
                "tokio".into(),
                k,
                Box::new(move || peers::spawn_latency(k, t)),
            ));
        }
        _ => {}
    }
    v
}

/// Every benchmark, in report order.
pub const BENCHES: [&str; 11] = [
    "call_soon",
    "create_task",
    "timers",
    "threadsafe_1",
    "threadsafe_4",
    "wake_1",
    "wake_4",
    "queue",
    "lock",
    "event",
    "gather_1000",
];

/// Runs every benchmark (or those named in `only`, if not empty): `cfg.reps` rounds, each
/// running every subject once (the order rotates from round to round, so no subject always
/// goes first).
///
/// # Errors
/// A benchmark failing (a loop that cannot be made, a callback that did not run).
pub fn run_all(
    cfg: MicroConfig,
    only: &[&str],
) -> Result<Vec<MicroRow>, Box<dyn std::error::Error>> {
    let mut rows = Vec::new();
    for bench in BENCHES
        .into_iter()
        .filter(|b| only.is_empty() || only.contains(b))
    {
        let subs = subjects(bench, cfg);
        let mut runs: Vec<Vec<Measure>> = vec![Vec::new(); subs.len()];
        for rep in 0..cfg.reps {
            for j in 0..subs.len() {
                let i = (j + rep) % subs.len();
                runs[i].push((subs[i].2)()?);
            }
        }
        for ((subject, n, _), runs) in subs.into_iter().zip(runs) {
            let row = MicroRow {
                bench: bench.to_string(),
                subject,
                n,
                paired: true,
                runs,
            };
            eprintln!(
                "micro {:<13} {:<12} {:>10.1} ns/op{}",
                row.bench,
                row.subject,
                row.median_ns(),
                row.median_p99()
                    .map(|p| format!("  p99 {p:.0} ns"))
                    .unwrap_or_default()
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Runs one subject of one benchmark once (for `valgrind --tool=callgrind`).
///
/// # Errors
/// No such benchmark or subject; the benchmark failing.
pub fn run_one(bench: &str, subject: &str, n: usize) -> BenchResult {
    let cfg = MicroConfig { n, k: n, reps: 1 };
    let found = subjects(bench, cfg)
        .into_iter()
        .find(|(s, _, _)| s == subject)
        .ok_or_else(|| format!("no subject {subject:?} in bench {bench:?}"))?;
    (found.2)()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_delays_stay_in_range() {
        for i in [0, 1, 2, 999_999, usize::MAX / 3] {
            let d = timer_delay(i);
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(61));
        }
    }

    #[test]
    fn every_bench_has_ours_and_a_peer() {
        let cfg = MicroConfig {
            n: 10,
            k: 1,
            reps: 1,
        };
        for bench in BENCHES {
            let subs = subjects(bench, cfg);
            assert!(subs.iter().any(|s| s.0.starts_with("ours-")), "{bench}");
            assert!(subs.iter().any(|s| !s.0.starts_with("ours-")), "{bench}");
        }
    }

    #[test]
    fn tiny_runs_complete() {
        // Correctness of the harness only (every callback ran); no duration is asserted.
        for bench in [
            "call_soon",
            "create_task",
            "timers",
            "threadsafe_4",
            "queue",
            "lock",
            "event",
            "gather_1000",
        ] {
            for (name, _, f) in subjects(
                bench,
                MicroConfig {
                    n: 2000,
                    k: 1,
                    reps: 1,
                },
            ) {
                f().unwrap_or_else(|e| panic!("{bench} {name}: {e}"));
            }
        }
    }
}
