//! Benchmarks of every backend against the systems users would pick instead: tokio, CPython's
//! asyncio, uvloop and Node.js.
//!
//! ```text
//! loop-bench/run-all.sh            # or: cargo run --release -p loop-bench -- all [--quick]
//! cargo run --release -p loop-bench -- micro
//! ```
//!
//! `all` runs everything and rewrites `BENCHMARKS.md` and `loop-bench/results/` (the JSON
//! figures and the chart). Nothing here is a test: `cargo test` only checks the harness's own
//! arithmetic (percentiles, parsers), never a duration. Linux only (it reads `/proc`).

#![deny(missing_docs)]

pub mod client;
pub mod echo;
pub mod example;
pub mod files;
pub mod http;
pub mod hyper_bench;
pub mod micro;
pub mod native;
pub mod procfs;
pub mod raw_echo;
#[cfg(target_os = "linux")]
pub mod raw_uring;
pub mod report;
pub mod report_text;
pub mod servers;
pub mod stats;
pub mod sys;

use serde::{Deserialize, Serialize};

/// Where the machine and the tools stand: printed at the top of the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Online CPUs.
    pub nproc: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// tokio's version from `Cargo.lock`.
    pub tokio: String,
    /// `python3 --version`.
    pub python: String,
    /// uvloop's version, if installed.
    pub uvloop: String,
    /// `node --version`, if installed.
    pub node: String,
    /// UTC date and time of the run.
    pub date: String,
    /// The commit measured (`git describe --always --dirty`).
    #[serde(default)]
    pub commit: String,
}

/// Everything one `all` run measured: what `BENCHMARKS.md` and the chart are made from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// True for a `--quick` run.
    pub quick: bool,
    /// The command that made these figures.
    pub command: String,
    /// Wall time of the whole run, seconds.
    pub wall_secs: f64,
    /// Micro-benchmarks (ours, floor, tokio, asyncio, uvloop).
    pub micro: Vec<micro::MicroRow>,
    /// Instructions per operation (callgrind).
    pub instructions: Vec<sys::InstrRow>,
    /// The echo matrix.
    pub echo: Vec<echo::EchoRow>,
    /// System calls per request.
    pub syscalls: Vec<sys::SyscallRow>,
    /// System calls per request at full speed, class by class.
    pub native_syscalls: Vec<native::NativeRow>,
    /// Memory per idle connection.
    pub memory: Vec<sys::MemoryRow>,
    /// wrk against the HTTP hello servers.
    pub http: Vec<http::HttpRow>,
    /// wrk against the hyper servers (ours on each backend, and tokio's).
    #[serde(default)]
    pub hyper: Vec<http::HttpRow>,
    /// Our echo server on one loop and on one loop per CPU (`loop-bench per-core`).
    #[serde(default)]
    pub per_core: Vec<echo::EchoRow>,
    /// What was skipped and why.
    pub notes: Vec<String>,
}
