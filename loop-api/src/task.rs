//! Tasks: a future scheduled on a loop ([`Task`]), and the handles a loop runs it through
//! ([`TaskRef`], [`Notified`], [`Schedule`]).
//!
//! A task is ONE allocation holding its future, its outcome, and its waker's state (a
//! reference count and a "queued" flag, as tokio's task header has): waking it never
//! allocates, and the loop queues the task itself, not a key to look up. That allocation, its
//! hand-written waker and the counting rules that let wakers (which are `Send + Sync`) outlive
//! the task, its handles and its loop while the future (which may be `!Send`) is only touched
//! on its thread are in the `raw` module, with their soundness argument; this module is safe
//! code over it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::context::ExceptionContext;
use crate::error::TaskError;
use crate::panics::CaughtPanic;
use crate::raw::TaskOutput;

pub use crate::raw::{Notified, TaskRef};

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// Task ids a thread takes from [`NEXT_TASK_ID`] at once.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's block of task ids: the next one and the end.
    static TASK_IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// A task id, unique in the process (increasing on each thread): no contended atomic per task.
fn next_task_id() -> u64 {
    TASK_IDS.with(|ids| {
        let (next, end) = ids.get();
        if next < end {
            ids.set((next + 1, end));
            next
        } else {
            let start = NEXT_TASK_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
            ids.set((start + 1, start + ID_BLOCK));
            start
        }
    })
}

/// Where a woken task goes: a loop's ready queue. Implemented by loops; called from any thread.
pub trait Schedule: Send + Sync {
    /// Queues `task` (woken, not queued before) to be run by the loop. On a closed loop,
    /// dropping it is right.
    fn schedule(&self, task: Notified);
}

/// Makes a task for `future`: the loop's handle (to spawn) and the user's. Its creation site
/// is the caller's (every function from the user's call down to here is `#[track_caller]`).
#[track_caller]
pub(crate) fn new_task<F>(future: F, name: Option<String>) -> (TaskRef, Task<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let id = next_task_id();
    let out = crate::raw::new_task(
        future,
        id,
        name.map(String::into_boxed_str),
        std::panic::Location::caller(),
    );
    let task = out.task_ref().clone();
    (task, Task { out })
}

/// Prints the panic of a task that no loop reported (a loop that ran the task with
/// [`TaskRef::run`] but never took its panic with [`TaskRef::take_panic`]), when the task's last
/// handle goes: as the default exception handler would have printed the report.
pub(crate) fn print_unreported_panic(name: String, caught: CaughtPanic) {
    eprintln!("{}", ExceptionContext::task_panicked(name, caught));
}

/// Where a task is in its life, as [`AnyTask::state`] tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Not finished and not being polled right now: queued to run, or waiting for a wake.
    Pending,
    /// Being polled right now (seen from inside the task, or from another task's view of a
    /// loop stuck in this one's poll).
    Running,
    /// Finished with an output.
    Done,
    /// Cancelled: its future was dropped unfinished.
    Cancelled,
    /// Failed: its future panicked.
    Failed,
}

/// Turns task timing on or off, for every loop of the process (off by default).
///
/// While it is on, each task poll reads the clock twice, so that [`AnyTask::busy`] and
/// [`AnyTask::idle`] are known; while it is off they are not measured (`busy` does not grow
/// and `idle` is zero for a task whose last poll, or creation, was not timed), which keeps
/// the cost of a poll to a counter. The loop monitor turns it on.
pub fn set_task_timing(on: bool) {
    crate::raw::timing::set(on);
}

/// True while task timing is on ([`set_task_timing`]).
pub fn task_timing() -> bool {
    crate::raw::timing::mode() & crate::raw::timing::TIMING != 0
}

/// The task being run on this thread (asyncio's `current_task()`): `Some` inside a task's
/// future (and in whatever it awaits or calls while polled), `None` in a plain callback
/// (`call_soon`, timers, readers) and outside the loop.
pub fn current_task() -> Option<AnyTask> {
    TaskRef::current().map(AnyTask::new)
}

/// A task of any output type, as [`EventLoop::all_tasks`](crate::EventLoop::all_tasks) lists
/// them (asyncio's `all_tasks()`).
#[derive(Clone)]
pub struct AnyTask {
    inner: TaskRef,
}

impl AnyTask {
    /// Wraps a loop's task.
    pub fn new(inner: TaskRef) -> Self {
        AnyTask { inner }
    }

    /// Requests cancellation; false if the task had finished.
    pub fn cancel(&self) -> bool {
        self.inner.cancel()
    }

    /// True once the task has finished.
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// The task's name.
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// The task's id: unique in the process, the same for every handle to the task.
    pub fn id(&self) -> u64 {
        self.inner.id()
    }

    /// Where the task is in its life: pending, running (being polled right now), or how it
    /// finished.
    pub fn state(&self) -> TaskState {
        self.inner.state()
    }

    /// Where the task was made: the user's call of `create_task` (or `create_task_named`,
    /// `run_until_complete`, a `TaskGroup`'s `create_task`...).
    pub fn created_at(&self) -> &'static std::panic::Location<'static> {
        self.inner.created_at()
    }

    /// How many times the task's future was polled.
    pub fn polls(&self) -> u64 {
        self.inner.polls()
    }

    /// The time spent in the task's polls while task timing was on ([`set_task_timing`]);
    /// it does not grow while timing is off.
    pub fn busy(&self) -> Duration {
        self.inner.busy()
    }

    /// The time since the task's last poll ended (since it was made, if it was never polled);
    /// zero while it is being polled, and zero when that poll (or its creation) happened while
    /// task timing was off ([`set_task_timing`]).
    pub fn idle(&self) -> Duration {
        self.inner.idle()
    }
}

impl<T> From<&Task<T>> for AnyTask {
    /// A type-erased handle to the same task (to cancel it or list it beside tasks of other
    /// output types, as `loop-sync`'s `TaskGroup` does).
    fn from(task: &Task<T>) -> Self {
        AnyTask::new(task.out.task_ref().clone())
    }
}

impl fmt::Debug for AnyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyTask")
            .field("id", &self.inner.id())
            .field("name", &self.inner.name())
            .field("state", &self.inner.state())
            .field("done", &self.inner.done())
            .finish()
    }
}

/// A future scheduled on a loop with `create_task` (asyncio's `Task`).
///
/// Awaiting it gives the future's output, [`TaskError::Cancelled`] or
/// [`TaskError::Panicked`]. Dropping a `Task` does not cancel it: the task runs to its end, as in
/// asyncio. Cancellation is prompt: the future is dropped the next time the loop gets to it.
///
/// # Panics
/// Awaiting a task from inside that same task panics with "Task cannot await on itself" (it
/// would wait forever; asyncio raises the same `RuntimeError`): the task ends `Panicked`.
pub struct Task<T> {
    out: TaskOutput<T>,
}

impl<T> Task<T> {
    /// Takes the outcome if the task is done.
    pub(crate) fn take_outcome(&self) -> Option<Result<T, TaskError>> {
        self.out.take_outcome()
    }

    /// The loop's handle to this task.
    pub(crate) fn task_ref(&self) -> &TaskRef {
        self.out.task_ref()
    }

    /// Requests cancellation. True if the task was not done yet (it will end `Cancelled`
    /// unless it finishes first), false if it had already finished.
    pub fn cancel(&self) -> bool {
        self.task_ref().cancel()
    }

    /// True once the task has finished (with an output, cancelled or panicked).
    pub fn done(&self) -> bool {
        self.task_ref().done()
    }

    /// True if cancellation was requested (asyncio's `cancelling() > 0`).
    pub fn cancelling(&self) -> bool {
        self.task_ref().cancelling()
    }

    /// The task's name: `Task-N`, or the name given to `create_task_named`.
    pub fn name(&self) -> String {
        self.task_ref().name()
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.take_outcome() {
            return Poll::Ready(out);
        }
        if self.out.outcome_taken() {
            panic!("a Task was polled again after it returned its outcome");
        }
        if self.out.is_running_here() {
            // It would wait for itself forever (asyncio raises the same RuntimeError).
            panic!("Task cannot await on itself");
        }
        self.out.set_awaiter(cx.waker());
        crate::introspect::awaiting_task(self.out.task_ref());
        Poll::Pending
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name())
            .field("done", &self.done())
            .finish()
    }
}
