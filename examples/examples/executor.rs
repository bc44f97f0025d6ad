//! `run_in_executor`: blocking work on the loop's thread pool while the loop keeps ticking.
//!
//! ```text
//! cargo run --example executor
//! ```
//!
//! The seed's Python runs `blocking_io` (read 100 bytes of `/dev/urandom`) and `cpu_bound`
//! (the sum of `i * i` below 10^7) with `loop.run_in_executor`. Here both run on the loop's
//! default thread pool at the same time, while a timer on the loop prints a tick every 100 ms:
//! the ticks keep coming because the loop's thread never blocks.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_api::{EventLoop, get_running_loop};

/// File operations (such as logging) can block the loop: run them in the thread pool.
fn blocking_io() -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; 100];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    // Slow storage, simulated: the ticks below show the loop is not waiting for it.
    std::thread::sleep(Duration::from_millis(300));
    Ok(bytes)
}

/// CPU-bound work blocks the loop too; the pool runs it on another core.
fn cpu_bound() -> u64 {
    (0..10_000_000u64)
        .map(|i| i.wrapping_mul(i))
        .fold(0, u64::wrapping_add)
}

/// Prints a tick every `period` until `running` is cleared.
fn tick(lp: &EventLoop, period: Duration, start: Instant, running: Rc<Cell<bool>>) {
    if !running.get() {
        return;
    }
    println!(
        "{:>7.3}s  tick (the loop is free)",
        start.elapsed().as_secs_f64()
    );
    let next = lp.clone();
    let scheduled = lp.call_later(period, move || tick(&next, period, start, running));
    if let Err(e) = scheduled {
        eprintln!("executor: could not schedule the next tick: {e}");
    }
}

async fn amain() -> Result<(), Box<dyn std::error::Error>> {
    let lp = get_running_loop()?;
    let start = Instant::now();
    let ticking = Rc::new(Cell::new(true));
    tick(&lp, Duration::from_millis(100), start, ticking.clone());

    // Both jobs start at once (run_in_executor submits immediately); await them in turn.
    let io_job = lp.run_in_executor(blocking_io);
    let cpu_job = lp.run_in_executor(cpu_bound);
    let bytes = io_job.await??;
    println!(
        "{:>7.3}s  default thread pool, blocking I/O: {} random bytes, starting {:02x?}",
        start.elapsed().as_secs_f64(),
        bytes.len(),
        &bytes[..4]
    );
    let sum = cpu_job.await?;
    println!(
        "{:>7.3}s  default thread pool, CPU-bound: {sum}",
        start.elapsed().as_secs_f64()
    );
    ticking.set(false);
    Ok(())
}

fn main() -> ExitCode {
    // asyncio.run(main()): a new loop, run, close.
    let failed = match loop_policy::run(amain()) {
        Ok(Ok(())) => return ExitCode::SUCCESS,
        Ok(Err(e)) => e,
        Err(e) => e.into(),
    };
    eprintln!("executor: {failed}");
    ExitCode::FAILURE
}
