//! [`LoopStats`]: a snapshot of a loop's counters (`EventLoop::stats()`).

use std::time::Duration;

/// What a loop has done and holds, at one moment (asyncio has no equivalent; aiomonitor and
/// tokio's `RuntimeMetrics` show the same kind of figures).
///
/// A loop implementation fills what it knows; the default (`AbstractEventLoop::stats`) fills
/// only the backend's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// The backend's name: `"mio"`, `"polling"`, `"uring"`, ...
    pub backend: &'static str,
    /// Iterations run (asyncio's `_run_once` calls).
    pub iterations: u64,
    /// Callbacks and tasks queued to run in the next iteration.
    pub ready: usize,
    /// Timers scheduled (cancelled ones not yet purged included).
    pub timers: usize,
    /// Readers and writers watched (`add_reader`/`add_writer`).
    pub watched_fds: usize,
    /// Operations futures wait for, in flight.
    pub ops_in_flight: usize,
    /// Bytes of receive buffers the loop holds: those of receives in flight and the few spare
    /// ones it keeps. A receive waiting for data parks its buffer, so idle connections add
    /// nothing here.
    pub receive_buffers: usize,
    /// Unfinished tasks.
    pub tasks: usize,
    /// Threads of the loop's default executor.
    pub executor_threads: usize,
    /// Jobs waiting for a thread of the default executor.
    pub executor_queued: usize,
    /// Slow callbacks reported by debug mode.
    pub slow_callbacks: u64,
    /// Time blocked waiting for I/O (polls that could block).
    pub io_wait: Duration,
    /// Time running: inside `run_forever` (or `run_until_complete`) and not blocked for I/O.
    pub running: Duration,
}
