//! [`AbstractEventLoop`]: the object-safe primitives every loop implements.

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::LocalBoxFuture;
use crate::context::{ExceptionContext, ExceptionHandler};
use crate::error::LoopError;
use crate::executor::Executor;
use crate::handle::{Handle, TimerHandle};
use crate::op::{Op, OpId, OpPoll};
use crate::pipe::{PipeReader, PipeWriter};
use crate::process::Process;
use crate::remote::LoopHandle;
use crate::task::TaskRef;

/// What every loop implements (asyncio's `AbstractEventLoop`), as object-safe primitives.
///
/// Users hold an [`EventLoop`](crate::EventLoop), which wraps an `Rc<dyn AbstractEventLoop>` and
/// adds the generic conveniences (`create_task`, `run_until_complete`, `run_in_executor`, ...).
/// A backend author implements this trait; nothing here requires `loop-core`.
///
/// The wrapper checks the rules that do not depend on the implementation before calling in:
/// `run_forever` is only called on an open loop that is not running, with no other loop running
/// on the thread, and the running loop is recorded for [`get_running_loop`](crate::get_running_loop).
pub trait AbstractEventLoop {
    /// Runs until `stop()` is called. `stop()` before `run_forever()` runs one iteration.
    ///
    /// # Errors
    /// [`LoopError::Closed`], [`LoopError::AlreadyRunning`], or an I/O error of the driver.
    fn run_forever(&self) -> Result<(), LoopError>;
    /// Asks the loop to stop once the current iteration has finished.
    fn stop(&self);
    /// True while `run_forever` runs.
    fn is_running(&self) -> bool;
    /// True once `close()` succeeded.
    fn is_closed(&self) -> bool;
    /// Closes the loop: drops pending callbacks, shuts down the default executor without
    /// waiting for its jobs (asyncio's `shutdown(wait=False)`; `shutdown_default_executor` is
    /// the way to wait), releases the loop's file descriptors. Idempotent; returns at once.
    ///
    /// # Errors
    /// [`LoopError::CloseWhileRunning`] if the loop is running.
    fn close(&self) -> Result<(), LoopError>;

    /// Schedules `handle` to run on the next iteration, after everything scheduled before it.
    ///
    /// # Errors
    /// [`LoopError::Closed`].
    fn call_soon(&self, handle: Handle) -> Result<(), LoopError>;
    /// Schedules `handle` to run at `when` on the loop's clock (never earlier).
    ///
    /// # Errors
    /// [`LoopError::Closed`].
    fn call_at(&self, when: Instant, handle: Handle) -> Result<TimerHandle, LoopError>;
    /// The loop's clock.
    fn time(&self) -> Instant;
    /// A thread-safe handle for other threads.
    fn handle(&self) -> LoopHandle;
    /// Schedules a task: the loop [binds](TaskRef::bind) it to its scheduler, queues it, runs
    /// it on the next iteration and again each time its waker is woken (from any thread),
    /// until [`TaskRef::run`] returns `Ready`; then it reports the panic [`TaskRef::take_panic`]
    /// gives, if any, to its exception handler. The loop keeps a handle to every unfinished task
    /// (dropping the user's `Task` does not cancel it) and aborts them when it closes.
    ///
    /// # Errors
    /// [`LoopError::Closed`].
    fn spawn(&self, task: TaskRef) -> Result<(), LoopError>;
    /// The tasks spawned on this loop that have not finished (asyncio's `all_tasks`).
    fn all_tasks(&self) -> Vec<TaskRef>;

    /// Calls `callback` on every iteration while `fd` is readable (level-triggered). Replaces
    /// an earlier reader of `fd`.
    ///
    /// # Errors
    /// [`LoopError::Closed`], or the OS refusing to watch `fd` (e.g. a regular file, a bad fd).
    fn add_reader(&self, fd: RawFd, callback: Box<dyn FnMut() + 'static>) -> Result<(), LoopError>;
    /// Stops watching `fd` for reading; true if a reader was registered.
    fn remove_reader(&self, fd: RawFd) -> bool;
    /// Like `add_reader`, for writability.
    ///
    /// # Errors
    /// As `add_reader`.
    fn add_writer(&self, fd: RawFd, callback: Box<dyn FnMut() + 'static>) -> Result<(), LoopError>;
    /// Stops watching `fd` for writing; true if a writer was registered.
    fn remove_writer(&self, fd: RawFd) -> bool;

    /// Runs `job` on the loop's default executor (a bounded thread pool owned by the loop).
    ///
    /// # Errors
    /// [`LoopError::Closed`].
    fn run_in_executor(&self, job: Box<dyn FnOnce() + Send + 'static>) -> Result<(), LoopError>;

    /// Starts the operation in `op` (`Some`) for a future polled with `cx` (what
    /// [`OpFuture`](crate::OpFuture) calls; every `sock_*` method runs through it). `Done` or
    /// `Failed`: it finished at once and the op, with its buffers, is still in `op`.
    /// `Pending`: the loop took the op (it keeps its buffers while the OS works) and gives an
    /// id for [`poll_op`](Self::poll_op); the waker of `cx` is woken at completion. The op
    /// moves at most once. The loop applies the rules of [`Op`]'s documentation before the OS
    /// sees it (a receive's buffer checked and cleared, leftovers of cancelled operations
    /// first, sockets made non-blocking).
    fn start_op(&self, op: &mut Option<Op>, cx: &mut Context<'_>) -> OpPoll;
    /// Polls an operation [`start_op`](Self::start_op) left pending: `Ready` once, with the
    /// result, the op put back in `op` (`None` if the loop lost it, e.g. it was closed); the
    /// id is then forgotten. An unknown id is an error, not a panic.
    fn poll_op(
        &self,
        id: OpId,
        op: &mut Option<Op>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>>;
    /// Gives up a pending operation (its future was dropped): the loop cancels it and keeps
    /// its buffers until the OS is done with them; what it received is not lost (it goes to
    /// the next operation of its kind on the same socket). It must not panic: an
    /// [`OpFuture`](crate::OpFuture)'s drop calls it, where a panic aborts the process.
    fn drop_op(&self, id: OpId);

    /// Sets (or with `None`, resets to the default) the exception handler.
    fn set_exception_handler(&self, handler: Option<ExceptionHandler>);
    /// Reports `context` to the exception handler (the default one prints to stderr). A handler
    /// that panics is reported to stderr, never propagated.
    fn call_exception_handler(&self, context: &ExceptionContext);
    /// Turns debug mode on or off.
    fn set_debug(&self, on: bool);
    /// True in debug mode.
    fn get_debug(&self) -> bool;
    /// In debug mode, callbacks running longer than this are reported (default 100 ms).
    fn slow_callback_duration(&self) -> Duration;
    /// Sets the slow-callback threshold of debug mode.
    fn set_slow_callback_duration(&self, threshold: Duration);
    /// The backend's name: `"mio"`, `"polling"`, `"uring"`, ...
    fn backend_name(&self) -> &'static str;
    /// A snapshot of the loop's counters. The default knows only the backend's name.
    fn stats(&self) -> crate::LoopStats {
        crate::LoopStats {
            backend: self.backend_name(),
            ..crate::LoopStats::default()
        }
    }

    /// Runs `callback` on the loop's thread each time signal `sig` arrives.
    ///
    /// # Errors
    /// [`LoopError::InvalidArgument`] for an invalid number or SIGKILL/SIGSTOP, `Closed`, or
    /// `NotSupported` where the loop has no signal support.
    fn add_signal_handler(
        &self,
        sig: i32,
        callback: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError>;
    /// Removes the handler of `sig`; true if one was set. When no loop handles `sig` any more,
    /// the disposition in force before the first handler was installed comes back (`SIG_DFL`,
    /// or `SIG_IGN` for SIGPIPE, which the Rust runtime ignores).
    fn remove_signal_handler(&self, sig: i32) -> bool;
    /// Starts a child process.
    ///
    /// # Errors
    /// `Closed`, the error of spawning, or `NotSupported` where the loop has no process support.
    fn subprocess_exec(&self, cmd: Command) -> Result<Process, LoopError>;

    // Added with the subprocess/signals/executor work; defaults keep older implementations
    // compiling.

    /// Wraps the reading end of a pipe (or any fd the loop can watch for reading), made
    /// non-blocking, into an async [`PipeReader`] (asyncio's `connect_read_pipe`).
    ///
    /// # Errors
    /// `Closed`; the OS refusing the fd; `NotSupported` by default.
    fn connect_read_pipe(&self, fd: OwnedFd) -> Result<PipeReader, LoopError> {
        drop(fd);
        Err(LoopError::NotSupported(
            "connect_read_pipe is not implemented by this loop".into(),
        ))
    }
    /// Wraps the writing end of a pipe, made non-blocking, into an async [`PipeWriter`]
    /// (asyncio's `connect_write_pipe`).
    ///
    /// # Errors
    /// As `connect_read_pipe`.
    fn connect_write_pipe(&self, fd: OwnedFd) -> Result<PipeWriter, LoopError> {
        drop(fd);
        Err(LoopError::NotSupported(
            "connect_write_pipe is not implemented by this loop".into(),
        ))
    }
    /// Makes `executor` the one `run_in_executor` uses (asyncio's `set_default_executor`).
    /// The previous default, if the loop made it, is shut down in the background.
    ///
    /// # Errors
    /// `Closed`; `NotSupported` by default.
    fn set_default_executor(&self, executor: Arc<dyn Executor>) -> Result<(), LoopError> {
        drop(executor);
        Err(LoopError::NotSupported(
            "set_default_executor is not implemented by this loop".into(),
        ))
    }
    /// Shuts the default executor down without blocking the loop: resolves once its running
    /// and queued jobs have finished. Later `run_in_executor` calls fail (the future gives
    /// `Cancelled`) until `set_default_executor` is called. The default resolves at once.
    fn shutdown_default_executor(&self) -> LocalBoxFuture<Result<(), LoopError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Called once, when the loop is wrapped in the [`EventLoop`](crate::EventLoop) users
    /// hold, with a weak handle to it: a loop that makes futures of its own (a pipe's reads, a
    /// child's exit) keeps it to run their operations through the one
    /// [`OpFuture`](crate::OpFuture). The default does nothing.
    fn attach(&self, lp: crate::WeakEventLoop) {
        let _ = lp;
    }

    /// The virtual clock of a test loop (`None` on a loop on real time, the default).
    fn virtual_clock(&self) -> Option<crate::VirtualClock> {
        None
    }

    /// Registers socket `fd`: the caller owns it and calls
    /// [`release_socket`](Self::release_socket) before closing it (what
    /// [`EventLoop::register_socket`](crate::EventLoop::register_socket) and its
    /// [`RegisteredSocket`](crate::RegisteredSocket) do). A readiness backend can then keep it
    /// armed for good instead of re-arming it for every operation that has to wait (no
    /// `epoll_ctl` per operation). The default does nothing.
    ///
    /// # Errors
    /// The OS refusing to watch the fd.
    fn register_socket(&self, fd: RawFd) -> Result<(), LoopError> {
        let _ = fd;
        Ok(())
    }

    /// `fd`, given to [`register_socket`](Self::register_socket), is about to be closed. The
    /// default does nothing.
    fn release_socket(&self, fd: RawFd) {
        let _ = fd;
    }

    /// True if the loop performs the file operations of [`Op`] (`Open`, `Read`, `Write`, ...,
    /// see [`Op::is_file_op`]) natively, as io_uring does. False (the default): they are
    /// answered `Unsupported`, and callers (loop-fs) run blocking file I/O on the executor.
    fn runs_file_ops(&self) -> bool {
        false
    }

    /// Sends from `src` on socket `fd` at once, from the caller's slice, when the loop can
    /// without an operation: the socket is registered ([`register_socket`]), may be writable,
    /// and no operation of its own on it goes first. `Some`: what the kernel took (possibly
    /// fewer bytes than `src`), or its error. `None`: go through [`start_op`] with an
    /// `Op::Send` (the socket is not known writable, an op waits on it, or the loop runs sends
    /// only as operations, as io_uring does; the default). Readiness loops use it to spare a
    /// stream's write the copy into an owned buffer and the op.
    ///
    /// [`register_socket`]: Self::register_socket
    /// [`start_op`]: Self::start_op
    fn try_sock_send(&self, fd: RawFd, src: &[u8]) -> Option<io::Result<usize>> {
        let _ = (fd, src);
        None
    }
}
