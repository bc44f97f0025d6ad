//! Tasks: a future scheduled on a loop ([`Task`]), and the type-erased [`Runnable`] a loop polls.
//!
//! A task is one allocation holding the future, its outcome and its wakers. The loop holds it as
//! `Rc<dyn Runnable>` and polls it; the user holds it as [`Task<T>`] and awaits its outcome.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::context::ExceptionContext;
use crate::error::{TaskError, panic_message};

/// What a loop needs from a task: poll it, and drop it unfinished when the loop closes.
///
/// Loop implementations receive tasks as `Rc<dyn Runnable>` through
/// [`AbstractEventLoop::spawn`](crate::AbstractEventLoop::spawn), poll them with a waker that
/// reschedules them, and drop them once `run` returns `Poll::Ready`.
pub trait Runnable {
    /// Polls the task's future once. `Ready` means the task is finished and can be dropped.
    fn run(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// Drops the future without finishing it (the loop is closing): the outcome is `Cancelled`.
    fn abort(&self);
    /// The task's name (`Task-N` unless one was given).
    fn name(&self) -> String;
    /// Requests cancellation (see [`Task::cancel`]); false if the task had finished.
    fn cancel(&self) -> bool;
    /// True once the task has finished.
    fn done(&self) -> bool;
}

/// A task of any output type, as [`EventLoop::all_tasks`](crate::EventLoop::all_tasks) lists
/// them (asyncio's `all_tasks()`).
#[derive(Clone)]
pub struct AnyTask {
    inner: Rc<dyn Runnable>,
}

impl AnyTask {
    /// Wraps a loop's task.
    pub fn new(inner: Rc<dyn Runnable>) -> Self {
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
}

impl fmt::Debug for AnyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyTask")
            .field("name", &self.inner.name())
            .field("done", &self.inner.done())
            .finish()
    }
}

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// The user's side of a task, type-erased over the future's type.
trait TaskOutcome<T> {
    fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>>;
    fn cancel(&self) -> bool;
    fn done(&self) -> bool;
    fn cancelling(&self) -> bool;
    fn name(&self) -> String;
}

const PENDING: u8 = 0;
const DONE: u8 = 1;
const TAKEN: u8 = 2;

/// # Invariant
/// `future` is `Some` until the task finishes and is never moved while `Some`: the cell lives in
/// an `Rc` that is never unwrapped, so the future is pinned. It is dropped in place.
pub(crate) struct TaskCell<F: Future> {
    id: u64,
    name: Option<Box<str>>,
    state: Cell<u8>,
    cancel_requested: Cell<bool>,
    report_panics: Cell<bool>,
    future: RefCell<Option<F>>,
    output: Cell<Option<Result<F::Output, TaskError>>>,
    own_waker: RefCell<Option<Waker>>,
    awaiter: Cell<Option<Waker>>,
    on_done: Cell<Option<Box<dyn FnOnce()>>>,
}

impl<F: Future + 'static> TaskCell<F> {
    pub(crate) fn new(future: F, name: Option<String>) -> Rc<Self> {
        Rc::new(TaskCell {
            id: NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed),
            name: name.map(String::into_boxed_str),
            state: Cell::new(PENDING),
            cancel_requested: Cell::new(false),
            report_panics: Cell::new(true),
            future: RefCell::new(Some(future)),
            output: Cell::new(None),
            own_waker: RefCell::new(None),
            awaiter: Cell::new(None),
            on_done: Cell::new(None),
        })
    }

    /// Whether a panic is sent to the loop's exception handler (not for `run_until_complete`'s
    /// future, whose panic is returned to the caller instead).
    pub(crate) fn set_report_panics(&self, on: bool) {
        self.report_panics.set(on);
    }

    /// Runs `f` when the task finishes (however it finishes).
    pub(crate) fn set_on_done(&self, f: Option<Box<dyn FnOnce()>>) {
        self.on_done.set(f);
    }

    /// Takes the outcome if the task is done.
    pub(crate) fn take_outcome(&self) -> Option<Result<F::Output, TaskError>> {
        let out = self.output.take();
        if out.is_some() {
            self.state.set(TAKEN);
        }
        out
    }

    fn drop_future(&self) {
        let mut slot = self.future.borrow_mut();
        // Dropped in place (never moved): assignment drops the old value where it lies.
        let dropped = catch_unwind(AssertUnwindSafe(|| *slot = None));
        if dropped.is_err() {
            *slot = None;
        }
    }

    fn finish(&self, outcome: Result<F::Output, TaskError>) {
        self.output.set(Some(outcome));
        self.state.set(DONE);
        self.own_waker.borrow_mut().take();
        if let Some(w) = self.awaiter.take() {
            w.wake();
        }
        if let Some(f) = self.on_done.take() {
            f();
        }
    }

    fn report_panic(&self, message: &str) {
        if !self.report_panics.get() {
            return;
        }
        if let Ok(lp) = crate::get_running_loop() {
            lp.call_exception_handler(&ExceptionContext {
                message: format!("Task {} panicked", Runnable::name(self)),
                panic: Some(message.to_string()),
                task: Some(Runnable::name(self)),
                ..ExceptionContext::default()
            });
        }
    }
}

impl<F: Future + 'static> Runnable for TaskCell<F> {
    fn run(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.get() != PENDING {
            return Poll::Ready(());
        }
        if self.cancel_requested.get() {
            self.drop_future();
            self.finish(Err(TaskError::Cancelled));
            return Poll::Ready(());
        }
        {
            let mut own = self.own_waker.borrow_mut();
            match own.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *own = Some(cx.waker().clone()),
            }
        }
        let polled = {
            let mut slot = self.future.borrow_mut();
            let Some(fut) = slot.as_mut() else {
                return Poll::Ready(());
            };
            // SAFETY: the future lives inside this Rc-allocated cell and is never moved out of
            // it while `Some` (see the type's invariant); it is only dropped in place.
            let fut = unsafe { Pin::new_unchecked(fut) };
            catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                self.drop_future();
                self.finish(Ok(v));
                Poll::Ready(())
            }
            Err(payload) => {
                let message = panic_message(&*payload);
                drop(payload);
                self.drop_future();
                self.report_panic(&message);
                self.finish(Err(TaskError::Panicked(message)));
                Poll::Ready(())
            }
        }
    }

    fn abort(&self) {
        if self.state.get() == PENDING {
            self.drop_future();
            self.finish(Err(TaskError::Cancelled));
        }
    }

    fn name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None => format!("Task-{}", self.id),
        }
    }

    fn cancel(&self) -> bool {
        TaskOutcome::cancel(self)
    }

    fn done(&self) -> bool {
        TaskOutcome::done(self)
    }
}

impl<F: Future + 'static> TaskOutcome<F::Output> for TaskCell<F> {
    fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Result<F::Output, TaskError>> {
        if let Some(out) = self.take_outcome() {
            return Poll::Ready(out);
        }
        if self.state.get() == TAKEN {
            panic!("a Task was polled again after it returned its outcome");
        }
        let w = self.awaiter.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => self.awaiter.set(Some(w)),
            _ => self.awaiter.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }

    fn cancel(&self) -> bool {
        if self.state.get() != PENDING {
            return false;
        }
        if !self.cancel_requested.replace(true) {
            // Reschedule the task so it sees the request at once; if it never ran yet it is
            // already scheduled and has no waker.
            let w = self.own_waker.borrow().clone();
            if let Some(w) = w {
                w.wake();
            }
        }
        true
    }

    fn done(&self) -> bool {
        self.state.get() != PENDING
    }

    fn cancelling(&self) -> bool {
        self.cancel_requested.get()
    }

    fn name(&self) -> String {
        Runnable::name(self)
    }
}

/// A future scheduled on a loop with `create_task` (asyncio's `Task`).
///
/// Awaiting it gives the future's output, [`TaskError::Cancelled`] or
/// [`TaskError::Panicked`]. Dropping a `Task` does not cancel it: the task runs to its end, as in
/// asyncio. Cancellation is prompt: the future is dropped the next time the loop gets to it.
pub struct Task<T> {
    inner: Rc<dyn TaskOutcome<T>>,
}

impl<T: 'static> Task<T> {
    pub(crate) fn from_cell<F: Future<Output = T> + 'static>(cell: Rc<TaskCell<F>>) -> Self {
        Task { inner: cell }
    }

    /// Requests cancellation. True if the task was not done yet (it will end `Cancelled`
    /// unless it finishes first), false if it had already finished.
    pub fn cancel(&self) -> bool {
        self.inner.cancel()
    }

    /// True once the task has finished (with an output, cancelled or panicked).
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// True if cancellation was requested (asyncio's `cancelling() > 0`).
    pub fn cancelling(&self) -> bool {
        self.inner.cancelling()
    }

    /// The task's name: `Task-N`, or the name given to `create_task_named`.
    pub fn name(&self) -> String {
        self.inner.name()
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.poll_outcome(cx)
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.inner.name())
            .field("done", &self.inner.done())
            .finish()
    }
}
