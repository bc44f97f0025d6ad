//! Executors: where blocking work runs ([`Executor`]), and the future of a job
//! ([`ExecutorFuture`]).
//!
//! A loop has a default executor (a bounded thread pool created on first use, asyncio's
//! `min(32, cpus + 4)` workers) used by [`EventLoop::run_in_executor`]; any [`Executor`] can be
//! passed to [`EventLoop::run_in_executor_on`] or made the default with
//! [`EventLoop::set_default_executor`].
//!
//! Rust closures cannot be sent to another process, so there is no process pool: for CPU-bound
//! work that must be isolated from the program (a crash, a memory limit, another core without
//! sharing the allocator), run a program with [`EventLoop::subprocess_exec`] and talk to it
//! over its pipes.
//!
//! [`EventLoop::run_in_executor`]: crate::EventLoop::run_in_executor
//! [`EventLoop::run_in_executor_on`]: crate::EventLoop::run_in_executor_on
//! [`EventLoop::set_default_executor`]: crate::EventLoop::set_default_executor
//! [`EventLoop::subprocess_exec`]: crate::EventLoop::subprocess_exec

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{LoopError, TaskError};

/// A unit of blocking work handed to an [`Executor`].
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Something that runs blocking jobs on other threads (asyncio's `concurrent.futures.Executor`).
///
/// `loop-core`'s `ThreadPool` implements it; so can any pool of a user's. Give one to
/// [`EventLoop::run_in_executor_on`](crate::EventLoop::run_in_executor_on), or make it the
/// loop's default with [`EventLoop::set_default_executor`](crate::EventLoop::set_default_executor).
///
/// There is no process pool (asyncio's `ProcessPoolExecutor`): Rust closures cannot be sent
/// to another process. For CPU-bound work that must be isolated from the program (a crash, a
/// memory limit), run a program with
/// [`EventLoop::subprocess_exec`](crate::EventLoop::subprocess_exec) and talk to it over its
/// pipes.
pub trait Executor: Send + Sync {
    /// Queues `job` to run on another thread.
    ///
    /// A job that is dropped without running (an executor that discards its queue) ends its
    /// [`ExecutorFuture`] with [`TaskError::Cancelled`].
    ///
    /// # Errors
    /// When the executor is shut down or cannot start a thread.
    fn submit(&self, job: Job) -> Result<(), LoopError>;

    /// Stops taking jobs and blocks until every submitted job has finished (asyncio's
    /// `shutdown(wait=True)`). Loops call it from a helper thread, never on their own thread.
    /// The default does nothing (for executors that need no shutdown).
    fn shutdown(&self) {}
}

impl<E: Executor + ?Sized> Executor for Arc<E> {
    fn submit(&self, job: Job) -> Result<(), LoopError> {
        (**self).submit(job)
    }

    fn shutdown(&self) {
        (**self).shutdown();
    }
}

/// Where an executor job leaves its result for the awaiting future.
struct ExecutorSlot<T> {
    state: Mutex<SlotState<T>>,
}

/// The job's outcome once it is known, and the waker of the future awaiting it.
type SlotState<T> = (Option<Result<T, TaskError>>, Option<Waker>);

impl<T> ExecutorSlot<T> {
    /// Stores the outcome (the first one wins) and wakes the awaiting future, outside the lock.
    fn complete(&self, out: Result<T, TaskError>) {
        let waker = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.0.is_none() {
                st.0 = Some(out);
            }
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Completes the slot with `Cancelled` if the job is dropped without running.
struct JobGuard<T> {
    slot: Option<Arc<ExecutorSlot<T>>>,
}

impl<T> Drop for JobGuard<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.complete(Err(TaskError::Cancelled));
        }
    }
}

/// The future of [`EventLoop::run_in_executor`](crate::EventLoop::run_in_executor): the
/// job's result, `Panicked(message)` if it panicked, or `Cancelled` if it never ran.
///
/// It is `Send`-safe to complete from any thread; a job that finishes after the awaiting
/// task was cancelled (or its loop closed) only stores its result, which is then dropped.
pub struct ExecutorFuture<T> {
    slot: Arc<ExecutorSlot<T>>,
}

impl<T: Send + 'static> ExecutorFuture<T> {
    /// A job running `f` (panics caught) and the future of its outcome.
    pub(crate) fn pair(f: impl FnOnce() -> T + Send + 'static) -> (Job, ExecutorFuture<T>) {
        let slot = Arc::new(ExecutorSlot::<T> {
            state: Mutex::new((None, None)),
        });
        let mut guard = JobGuard {
            slot: Some(slot.clone()),
        };
        let job = Box::new(move || {
            // Delivered as the future's outcome: not printed by the panic hook too.
            let out = crate::panics::catch_reported(f).map_err(|p| TaskError::Panicked(p.message));
            if let Some(slot) = guard.slot.take() {
                slot.complete(out);
            }
        });
        (job, ExecutorFuture { slot })
    }
}

impl<T> ExecutorFuture<T> {
    /// Ends the future with `err` (the job could not be submitted).
    pub(crate) fn fail(&self, err: TaskError) {
        self.slot.complete(Err(err));
    }
}

impl<T> fmt::Debug for ExecutorFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExecutorFuture")
    }
}

impl<T> Future for ExecutorFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.slot.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(out) = st.0.take() {
            return Poll::Ready(out);
        }
        match &st.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.1 = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Runs `executor.shutdown()` on a helper thread, so a loop can await it without blocking;
/// resolves once every job of the executor has finished. For loop implementations of
/// [`AbstractEventLoop::shutdown_default_executor`](crate::AbstractEventLoop::shutdown_default_executor).
///
/// If no thread can be started, the shutdown runs on the calling thread (blocking).
pub fn shutdown_in_thread(executor: Arc<dyn Executor>) -> ExecutorFuture<()> {
    let (job, fut) = ExecutorFuture::pair(move || executor.shutdown());
    // The job is handed back inside the error only if the thread could not start.
    let slot = Arc::new(Mutex::new(Some(job)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("executor-shutdown".into())
        .spawn(move || {
            let job = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(job) = job {
                job();
            }
        });
    if spawned.is_err() {
        let job = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(job) = job {
            job();
        }
    }
    fut
}
