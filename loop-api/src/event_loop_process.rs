//! The [`EventLoop`] methods for child processes, pipes and executors (a second `impl` block,
//! so `event_loop.rs` stays one story).

use std::future::Future;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::error::{LoopError, TaskError};
use crate::event_loop::EventLoop;
use crate::executor::{Executor, ExecutorFuture};
use crate::pipe::{PipeReader, PipeWriter};
use crate::process::{Process, shell_command};

impl EventLoop {
    /// Runs `cmd` with the shell (`/bin/sh -c cmd`, asyncio's `subprocess_shell`), with stdin,
    /// stdout and stderr inherited (asyncio's defaults). To pipe them, configure
    /// [`shell_command(cmd)`](crate::shell_command) and give it to
    /// [`subprocess_exec`](Self::subprocess_exec).
    ///
    /// `cmd` is run as the shell reads it: quote anything that comes from outside.
    ///
    /// # Errors
    /// As [`subprocess_exec`](Self::subprocess_exec).
    pub fn subprocess_shell(&self, cmd: &str) -> Result<Process, LoopError> {
        self.subprocess_exec(shell_command(cmd))
    }

    /// Wraps the reading end of a pipe into a [`PipeReader`] read through the loop (asyncio's
    /// `connect_read_pipe`). The fd is made non-blocking (which its duplicates share).
    ///
    /// # Errors
    /// `Closed`; an I/O error if the fd cannot be watched; `NotSupported` on a loop without
    /// pipe support.
    pub fn connect_read_pipe(&self, fd: OwnedFd) -> Result<PipeReader, LoopError> {
        self.as_abstract().connect_read_pipe(fd)
    }

    /// Wraps the writing end of a pipe into a [`PipeWriter`] (asyncio's
    /// `connect_write_pipe`). The fd is made non-blocking.
    ///
    /// # Errors
    /// As [`connect_read_pipe`](Self::connect_read_pipe).
    pub fn connect_write_pipe(&self, fd: OwnedFd) -> Result<PipeWriter, LoopError> {
        self.as_abstract().connect_write_pipe(fd)
    }

    /// Runs `f` on `executor` (asyncio's `run_in_executor(executor, func)`); the future gives
    /// its result, `Panicked(message)` if it panicked, or `Cancelled` if the loop is closed,
    /// the executor refused the job, or dropped it without running it.
    ///
    /// ```no_run
    /// # fn demo(lp: &loop_api::EventLoop, pool: &dyn loop_api::Executor) {
    /// let answer = lp.run_in_executor_on(pool, || 6 * 7);
    /// # }
    /// ```
    pub fn run_in_executor_on<T: Send + 'static>(
        &self,
        executor: &dyn Executor,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ExecutorFuture<T> {
        let (job, fut) = ExecutorFuture::pair(self.held_by_clock(f));
        if self.is_closed() {
            drop(job);
            fut.fail(TaskError::Cancelled);
        } else if executor.submit(job).is_err() {
            fut.fail(TaskError::Cancelled);
        }
        fut
    }

    /// Makes `executor` the loop's default executor, used by
    /// [`run_in_executor`](Self::run_in_executor) (asyncio's `set_default_executor`). The
    /// loop shuts it down (and waits for its jobs) when it closes or in
    /// [`shutdown_default_executor`](Self::shutdown_default_executor); a default the loop had
    /// made itself is shut down in the background.
    ///
    /// # Errors
    /// `Closed`; `NotSupported` on a loop without executor support.
    pub fn set_default_executor(&self, executor: Arc<dyn Executor>) -> Result<(), LoopError> {
        self.as_abstract().set_default_executor(executor)
    }

    /// Shuts the default executor down and waits for its running and queued jobs, without
    /// blocking the loop (the join happens on a helper thread); asyncio's
    /// `shutdown_default_executor`. Afterwards `run_in_executor` gives `Cancelled` until a new
    /// default is set. `run()` and `Runner::close()` call it before closing the loop.
    pub fn shutdown_default_executor(&self) -> impl Future<Output = Result<(), LoopError>> + use<> {
        self.as_abstract().shutdown_default_executor()
    }
}
