//! [`EventLoop`]: the handle users hold, with asyncio's methods.

use std::fmt;
use std::future::Future;
use std::os::fd::RawFd;
use std::process::Command;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use crate::abstract_loop::AbstractEventLoop;
use crate::context::{ExceptionContext, ExceptionHandler};
use crate::error::{LoopError, TaskError};
use crate::executor::ExecutorFuture;
use crate::handle::{Handle, TimerHandle};
use crate::process::Process;
use crate::remote::LoopHandle;
use crate::running::{self, RunningGuard};
use crate::task::{AnyTask, Task, TaskRef, new_task};

/// The loop a user holds: a cheap, cloneable, `!Send` handle to an `Rc<dyn AbstractEventLoop>`.
///
/// `==` is identity (two handles to the same loop), as asyncio compares loops.
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<dyn AbstractEventLoop>,
}

/// A weak reference to a loop, to hold one without keeping it alive (no reference cycles).
#[derive(Clone)]
pub struct WeakEventLoop {
    pub(crate) inner: Weak<dyn AbstractEventLoop>,
}

impl WeakEventLoop {
    /// The loop, if it still exists.
    pub fn upgrade(&self) -> Option<EventLoop> {
        self.inner.upgrade().map(|inner| EventLoop { inner })
    }
}

impl fmt::Debug for WeakEventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakEventLoop")
    }
}

impl PartialEq for EventLoop {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for EventLoop {}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("backend", &self.inner.backend_name())
            .field("running", &self.inner.is_running())
            .field("closed", &self.inner.is_closed())
            .field("debug", &self.inner.get_debug())
            .finish()
    }
}

/// A far-away instant for delays too large to add to `now` (years, `Duration::MAX`).
pub(crate) fn deadline_after(now: Instant, delay: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(delay)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

impl EventLoop {
    /// Wraps a loop implementation.
    ///
    /// The loop is closed when its last handle is dropped, or when this thread exits (see
    /// [`close`](Self::close)).
    pub fn new<L: AbstractEventLoop + 'static>(inner: L) -> EventLoop {
        Self::from_rc(Rc::new(inner))
    }

    /// Wraps an already shared loop implementation (closed at the latest when this thread
    /// exits, as [`new`](Self::new)'s).
    pub fn from_rc(inner: Rc<dyn AbstractEventLoop>) -> EventLoop {
        crate::thread_exit::register(&inner);
        inner.attach(WeakEventLoop {
            inner: Rc::downgrade(&inner),
        });
        EventLoop { inner }
    }

    /// The implementation behind this handle.
    pub fn as_abstract(&self) -> &dyn AbstractEventLoop {
        &*self.inner
    }

    /// A weak reference to this loop.
    pub fn downgrade(&self) -> WeakEventLoop {
        WeakEventLoop {
            inner: Rc::downgrade(&self.inner),
        }
    }

    fn check_can_run(&self) -> Result<(), LoopError> {
        if self.inner.is_closed() {
            return Err(LoopError::Closed);
        }
        if self.inner.is_running() {
            return Err(LoopError::AlreadyRunning);
        }
        if running::is_any_loop_running() {
            return Err(LoopError::AnotherLoopRunning);
        }
        Ok(())
    }

    /// Runs the loop until [`stop`](Self::stop) is called.
    ///
    /// # Errors
    /// `Closed`; `AlreadyRunning` when called from inside the loop; `AnotherLoopRunning` when
    /// another loop runs on this thread; an I/O error of the backend.
    pub fn run_forever(&self) -> Result<(), LoopError> {
        self.check_can_run()?;
        let _running = RunningGuard::enter(self.clone());
        self.inner.run_forever()
    }

    /// Runs the loop until `fut` completes and returns its output.
    ///
    /// # Errors
    /// As [`run_forever`](Self::run_forever); `StoppedBeforeComplete` if the loop was stopped
    /// first (the future stays scheduled); `Panicked` if it panicked; `Cancelled` if it was
    /// cancelled.
    #[track_caller]
    pub fn run_until_complete<F>(&self, fut: F) -> Result<F::Output, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.check_can_run()?;
        let (task, outcome) = new_task(fut, None);
        task.set_report_panics(false);
        let weak = self.downgrade();
        task.set_on_done(Some(Box::new(move || {
            if let Some(lp) = weak.upgrade() {
                lp.stop();
            }
        })));
        self.inner.spawn(task)?;
        let ran = self.run_forever();
        outcome.task_ref().set_on_done(None);
        ran?;
        match outcome.take_outcome() {
            Some(Ok(v)) => Ok(v),
            Some(Err(TaskError::Panicked(m))) => Err(LoopError::Panicked(m)),
            Some(Err(TaskError::Cancelled)) => Err(LoopError::Cancelled),
            None => Err(LoopError::StoppedBeforeComplete),
        }
    }

    /// Stops the loop after the current iteration.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// True while the loop runs.
    pub fn is_running(&self) -> bool {
        self.inner.is_running()
    }

    /// True once the loop is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes the loop (idempotent): pending callbacks are dropped, unfinished tasks end
    /// `Cancelled`, the loop's fds are released, and the default executor is shut down without
    /// waiting (asyncio's `shutdown(wait=False)`): `close()` returns at once, while jobs
    /// already submitted still run on their threads, which exit afterwards. To wait for them,
    /// await [`shutdown_default_executor`](Self::shutdown_default_executor) before closing.
    ///
    /// A loop is also closed when its last handle is dropped (in debug mode the loop reports
    /// that it was not closed, as asyncio's ResourceWarning does), and when the thread it was
    /// made on exits. The futures of the loop's own (sleep, socket operations, loop-net
    /// streams) hold it weakly; a handle captured by one of its own callbacks or tasks does
    /// keep it alive (a reference cycle) until it is closed or its thread exits: inside the
    /// loop, prefer [`get_running_loop`](crate::get_running_loop) or a
    /// [`WeakEventLoop`] to a captured clone.
    ///
    /// # Errors
    /// `CloseWhileRunning` if the loop is running.
    pub fn close(&self) -> Result<(), LoopError> {
        self.inner.close()
    }

    /// Schedules `f` to run on the next iteration (FIFO with other `call_soon` callbacks).
    ///
    /// # Errors
    /// `Closed`.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) -> Result<Handle, LoopError> {
        let h = Handle::new(f);
        self.inner.call_soon(h.clone())?;
        Ok(h)
    }

    /// Schedules `f` to run after `delay` (never earlier). Any delay is accepted, up to
    /// `Duration::MAX`.
    ///
    /// # Errors
    /// `Closed`.
    pub fn call_later(
        &self,
        delay: Duration,
        f: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, LoopError> {
        let when = deadline_after(self.inner.time(), delay);
        self.inner.call_at(when, Handle::new(f))
    }

    /// Schedules `f` to run at `when` on the loop's clock (an instant in the past runs on the
    /// next iteration).
    ///
    /// # Errors
    /// `Closed`.
    pub fn call_at(
        &self,
        when: Instant,
        f: impl FnOnce() + 'static,
    ) -> Result<TimerHandle, LoopError> {
        self.inner.call_at(when, Handle::new(f))
    }

    /// The loop's clock (virtual on a test loop).
    pub fn time(&self) -> Instant {
        self.inner.time()
    }

    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        self.inner.handle()
    }

    /// Schedules `fut` as a task named `Task-N`; it starts on the next iteration.
    ///
    /// # Errors
    /// `Closed`.
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Result<Task<F::Output>, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, user) = new_task(fut, None);
        self.inner.spawn(task)?;
        Ok(user)
    }

    /// Like [`create_task`](Self::create_task), with a name used in reports.
    ///
    /// # Errors
    /// `Closed`.
    #[track_caller]
    pub fn create_task_named<F>(
        &self,
        name: impl Into<String>,
        fut: F,
    ) -> Result<Task<F::Output>, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, user) = new_task(fut, Some(name.into()));
        self.inner.spawn(task)?;
        Ok(user)
    }

    /// The unfinished tasks of this loop (asyncio's `all_tasks()`), e.g. to cancel them all
    /// before closing, as `asyncio.run` does.
    pub fn all_tasks(&self) -> Vec<AnyTask> {
        self.inner
            .all_tasks()
            .into_iter()
            .filter(|t| !t.done())
            .map(AnyTask::new)
            .collect()
    }

    /// Calls `f` on every iteration while `fd` is readable (level-triggered, like asyncio).
    /// Adding a reader for an fd that has one replaces it.
    ///
    /// # Errors
    /// `Closed`, or an I/O error when the fd cannot be watched.
    pub fn add_reader(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), LoopError> {
        self.inner.add_reader(fd, Box::new(f))
    }

    /// Stops watching `fd` for reading; true if it was watched.
    pub fn remove_reader(&self, fd: RawFd) -> bool {
        self.inner.remove_reader(fd)
    }

    /// Calls `f` on every iteration while `fd` is writable.
    ///
    /// # Errors
    /// As [`add_reader`](Self::add_reader).
    pub fn add_writer(&self, fd: RawFd, f: impl FnMut() + 'static) -> Result<(), LoopError> {
        self.inner.add_writer(fd, Box::new(f))
    }

    /// Stops watching `fd` for writing; true if it was watched.
    pub fn remove_writer(&self, fd: RawFd) -> bool {
        self.inner.remove_writer(fd)
    }

    /// Runs `f` on the loop's default thread pool; the future gives its result, or
    /// `Panicked(message)` if it panicked. The job starts at once (not when first polled).
    /// On a closed loop the job does not run and the future gives `Cancelled`.
    pub fn run_in_executor<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ExecutorFuture<T> {
        let (job, fut) = ExecutorFuture::pair(self.held_by_clock(f));
        if self.inner.run_in_executor(job).is_err() {
            fut.fail(TaskError::Cancelled);
        }
        fut
    }

    /// The virtual clock of a test loop (`None` on a loop on real time).
    pub fn virtual_clock(&self) -> Option<crate::VirtualClock> {
        self.inner.virtual_clock()
    }

    /// Wraps an executor job so that a test loop's clock does not jump while it runs.
    pub(crate) fn held_by_clock<T>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl FnOnce() -> T + Send + 'static {
        let hold = self.inner.virtual_clock().map(|c| c.hold());
        move || {
            let out = f();
            drop(hold);
            out
        }
    }

    /// Sets the exception handler; `None` restores the default (print to stderr).
    pub fn set_exception_handler(&self, h: Option<ExceptionHandler>) {
        self.inner.set_exception_handler(h);
    }

    /// Reports `context` to the exception handler.
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        self.inner.call_exception_handler(context);
    }

    /// Turns debug mode on or off (slow callbacks are then reported).
    pub fn set_debug(&self, on: bool) {
        self.inner.set_debug(on);
    }

    /// True in debug mode.
    pub fn get_debug(&self) -> bool {
        self.inner.get_debug()
    }

    /// The slow-callback threshold of debug mode (100 ms by default).
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback_duration()
    }

    /// Sets the slow-callback threshold of debug mode.
    pub fn set_slow_callback_duration(&self, threshold: Duration) {
        self.inner.set_slow_callback_duration(threshold);
    }

    /// The backend's name: `"mio"`, `"polling"`, `"uring"`, ...
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    /// True if the loop performs file operations natively (io_uring); false where they run
    /// on the executor (readiness backends, the virtual-time loop). See
    /// [`AbstractEventLoop::runs_file_ops`].
    pub fn runs_file_ops(&self) -> bool {
        self.inner.runs_file_ops()
    }

    /// A snapshot of the loop's counters: iterations, what is queued, in flight and watched,
    /// the executor's threads and queue, time blocked for I/O and time running.
    pub fn stats(&self) -> crate::LoopStats {
        self.inner.stats()
    }

    /// Runs `f` on the loop's thread each time signal `sig` arrives.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad signal number or SIGKILL/SIGSTOP; `Closed`; `NotSupported`.
    pub fn add_signal_handler(&self, sig: i32, f: impl FnMut() + 'static) -> Result<(), LoopError> {
        self.inner.add_signal_handler(sig, Box::new(f))
    }

    /// Removes the handler of `sig`; true if there was one. Once no loop handles `sig`, the
    /// disposition found when the first handler was installed is restored (not `SIG_DFL`
    /// blindly: SIGPIPE, ignored by the Rust runtime, stays ignored).
    pub fn remove_signal_handler(&self, sig: i32) -> bool {
        self.inner.remove_signal_handler(sig)
    }

    /// Starts `cmd` as a child process watched by the loop.
    ///
    /// # Errors
    /// `Closed`, the spawn error, or `NotSupported`.
    pub fn subprocess_exec(&self, cmd: Command) -> Result<Process, LoopError> {
        self.inner.subprocess_exec(cmd)
    }
}

/// Checks that `_l` is usable as a trait object (compile-time only).
#[allow(dead_code)]
fn assert_object_safe(_l: &dyn AbstractEventLoop, _r: &TaskRef) {}
