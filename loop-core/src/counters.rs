//! The loop's counters part: what `EventLoop::stats()` reports beyond the other parts' sizes
//! (iterations, time blocked for I/O, time running). Cheap on the hot path: one increment per
//! iteration, and the clock is read only around a poll that may block (whose time dwarfs the
//! read) and when `run_forever` starts and ends.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Counters of one loop.
#[derive(Default)]
pub(crate) struct Counters {
    iterations: Cell<u64>,
    io_wait: Cell<Duration>,
    /// Time inside `run_forever`, runs that ended.
    run_time: Cell<Duration>,
    /// When the current `run_forever` started.
    run_started: Cell<Option<Instant>>,
}

impl Counters {
    /// One more iteration.
    pub(crate) fn iteration(&self) {
        self.iterations.set(self.iterations.get() + 1);
    }

    pub(crate) fn iterations(&self) -> u64 {
        self.iterations.get()
    }

    /// A poll that may block took `waited`.
    pub(crate) fn add_io_wait(&self, waited: Duration) {
        self.io_wait.set(self.io_wait.get() + waited);
    }

    pub(crate) fn io_wait(&self) -> Duration {
        self.io_wait.get()
    }

    /// `run_forever` started.
    pub(crate) fn run_started(&self) {
        self.run_started.set(Some(Instant::now()));
    }

    /// `run_forever` ended (or unwound).
    pub(crate) fn run_ended(&self) {
        if let Some(started) = self.run_started.take() {
            self.run_time.set(self.run_time.get() + started.elapsed());
        }
    }

    /// Time inside `run_forever` (the current run included) not blocked for I/O.
    pub(crate) fn running(&self) -> Duration {
        let current = self
            .run_started
            .get()
            .map_or(Duration::ZERO, |t| t.elapsed());
        (self.run_time.get() + current).saturating_sub(self.io_wait.get())
    }
}
