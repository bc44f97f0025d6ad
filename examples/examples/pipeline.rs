//! A producer/consumer pipeline with asyncio's toolkit (`loop-sync`): a bounded queue of jobs,
//! workers under a task group, and a semaphore that keeps at most a few "connections" open.
//!
//! ```text
//! cargo run --example pipeline
//! ```
//!
//! The pipeline is `examples::pipeline` (its test runs it on virtual time); this program runs
//! it on the loop `LOOP_BACKEND` selects and prints what it saw.

use std::process::ExitCode;
use std::time::Duration;

use examples::pipeline::{PipelineConfig, run};

fn main() -> ExitCode {
    let cfg = PipelineConfig {
        jobs: 40,
        workers: 8,
        connections: 3,
        queue_size: 5,
        latency: Duration::from_millis(10),
    };
    match loop_policy::run(run(cfg)) {
        Ok(Ok(report)) => {
            println!(
                "{} jobs by {} workers: at most {} connections open (limit {}), at most {} jobs queued (size {})",
                report.processed.len(),
                cfg.workers,
                report.max_connections,
                cfg.connections,
                report.max_queued,
                cfg.queue_size
            );
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("pipeline: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("pipeline: the loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
