//! Tasks: a future scheduled on a loop ([`Task`]), and the handles a loop runs it through
//! ([`TaskRef`], [`Notified`], [`Schedule`]).
//!
//! A task is ONE allocation holding its future, its outcome, and its waker's state (a
//! reference count and a "queued" flag, as tokio's task header has): waking it never
//! allocates, and the loop queues the task itself, not a key to look up. See `task/raw.rs` for
//! the counting rules that let wakers (which are `Send + Sync`) outlive the task, its handles
//! and its loop while the future (which may be `!Send`) is only touched on its thread.

mod raw;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::context::ExceptionContext;
use crate::error::TaskError;

use raw::{BUSY, CANCEL_REQUESTED, DONE, Header, NO_REPORT, Polled, TAKEN};

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

/// A woken task on its way to its loop: may cross threads, and only becomes usable again on
/// the loop's thread ([`Notified::into_local`]).
pub struct Notified {
    ptr: NonNull<Header>,
}

// A `Notified` owns one unit of the task's atomic count and nothing else; the only things done
// with it off the task's thread are moving it and dropping it. Turning it back into a handle
// that touches the future is `unsafe` and requires the task's thread.
// SAFETY: dropping it elsewhere is an atomic decrement that frees only `Send` data (task/raw.rs).
unsafe impl Send for Notified {}

impl Notified {
    /// The task, as a handle of the loop's thread.
    ///
    /// # Safety
    /// Must be called on the thread the task was made on (the thread of the loop it was spawned
    /// on), as the task's future and output may be `!Send`.
    pub unsafe fn into_local(self) -> TaskRef {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: the caller guarantees this is the task's thread, so the local fields may be
        // used; our unit keeps the task alive.
        let header = unsafe { ptr.as_ref() };
        let local = header.local.get();
        if local == 0 {
            // No local handle is left: ours becomes the locals' unit.
            header.local.set(1);
        } else {
            let Some(n) = local.checked_add(1) else {
                std::process::abort();
            };
            header.local.set(n);
            // SAFETY: the locals already hold a unit, so this one is not the last.
            unsafe { raw::ref_dec(ptr) };
        }
        TaskRef { ptr }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: we own a unit of the count and give it back.
        unsafe { raw::ref_dec(self.ptr) };
    }
}

impl fmt::Debug for Notified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notified")
    }
}

/// A loop's handle to a task (type-erased): what `AbstractEventLoop::spawn` receives and what
/// a loop queues, runs and lists. `!Send`: it lives on the loop's thread.
pub struct TaskRef {
    ptr: NonNull<Header>,
}

impl TaskRef {
    fn header(&self) -> &Header {
        // SAFETY: a local handle keeps the task alive, and is only used on the task's thread.
        unsafe { self.ptr.as_ref() }
    }

    /// Gives the task its scheduler (where its waker sends it) and marks it queued: the loop
    /// must now queue it, and [`run`](Self::run) it when it comes up.
    ///
    /// # Panics
    /// If the task was bound already.
    pub fn bind(&self, scheduler: Arc<dyn Schedule>) {
        let header = self.header();
        let flags = header.flags.get();
        assert!(flags & raw::BOUND == 0, "a task was spawned twice");
        // SAFETY: not bound yet, so no waker exists (wakers are only made by `run`, which
        // requires `BOUND`): nothing reads `scheduler` concurrently. This is the only write.
        unsafe { *header.scheduler.get() = Some(scheduler) };
        header.queued.store(true, Ordering::Relaxed);
        header.flags.set(flags | raw::BOUND);
    }

    /// Polls the task once (unless it is done); `Ready` once it has finished (however).
    /// A finished task can be forgotten by the loop.
    ///
    /// # Panics
    /// If the task was not bound.
    pub fn run(&self) -> Poll<()> {
        // SAFETY: our local handle keeps the task alive; `TaskRef` is `!Send`, so this is the
        // task's thread.
        match unsafe { raw::run(self.ptr) } {
            Polled::Pending => Poll::Pending,
            Polled::Done => {
                self.finish();
                Poll::Ready(())
            }
            Polled::Panicked(caught) => {
                self.report_panic(caught);
                self.finish();
                Poll::Ready(())
            }
        }
    }

    /// Drops the future unfinished (the loop is closing): the outcome is `Cancelled`.
    pub fn abort(&self) {
        let header = self.header();
        let flags = header.flags.get();
        if flags & DONE != 0 {
            return;
        }
        if flags & BUSY != 0 {
            // Being polled (the abort comes from inside the future): end at the next run.
            header.flags.set(flags | CANCEL_REQUESTED);
            return;
        }
        header.flags.set(flags | BUSY);
        // SAFETY: live, task's thread, `BUSY` set.
        unsafe { (header.vtable.abort)(self.ptr) };
        header.flags.set(header.flags.get() & !BUSY);
        self.finish();
    }

    fn finish(&self) {
        let header = self.header();
        header.flags.set(header.flags.get() | DONE);
        if let Some(w) = header.awaiter.take() {
            w.wake();
        }
        if header.flags.get() & raw::EXTRA != 0
            && let Some(f) = self.take_on_done()
        {
            f();
        }
    }

    fn report_panic(&self, caught: crate::panics::CaughtPanic) {
        if self.header().flags.get() & NO_REPORT != 0 {
            return;
        }
        if let Ok(lp) = crate::get_running_loop() {
            lp.call_exception_handler(&ExceptionContext {
                message: format!("Task {} panicked", self.name()),
                panic: Some(caught.message),
                location: caught.location,
                task: Some(self.name()),
                ..ExceptionContext::default()
            });
        }
    }

    /// The task's name (`Task-N` unless one was given).
    pub fn name(&self) -> String {
        let header = self.header();
        if header.flags.get() & raw::EXTRA == 0 {
            return format!("Task-{}", header.id);
        }
        let extra = header.extra.take();
        let name = match extra.as_ref().and_then(|e| e.name.as_ref()) {
            Some(n) => n.to_string(),
            None => format!("Task-{}", header.id),
        };
        header.extra.set(extra);
        name
    }

    /// Requests cancellation (see [`Task::cancel`]); false if the task had finished.
    pub fn cancel(&self) -> bool {
        let header = self.header();
        let flags = header.flags.get();
        if flags & DONE != 0 {
            return false;
        }
        if flags & CANCEL_REQUESTED == 0 {
            header.flags.set(flags | CANCEL_REQUESTED);
            // Reschedule the task so it sees the request at once (nothing if it is queued
            // already, or not spawned yet).
            if flags & raw::BOUND != 0 {
                // SAFETY: our handle keeps the task alive; it is bound.
                unsafe { raw::wake_by_ref(self.ptr) };
            }
        }
        true
    }

    /// True once the task has finished.
    pub fn done(&self) -> bool {
        self.header().flags.get() & DONE != 0
    }

    /// True if cancellation was requested.
    pub fn cancelling(&self) -> bool {
        self.header().flags.get() & CANCEL_REQUESTED != 0
    }

    /// A word the loop keeps with the task for itself (e.g. its index in the loop's task
    /// list); `usize::MAX` until set.
    pub fn loop_slot(&self) -> usize {
        self.header().slot.get()
    }

    /// Sets the word of [`loop_slot`](Self::loop_slot).
    pub fn set_loop_slot(&self, slot: usize) {
        self.header().slot.set(slot);
    }

    /// True if both handles are to the same task.
    pub fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }

    /// Whether a panic is sent to the loop's exception handler (not for `run_until_complete`'s
    /// future, whose panic is returned to the caller instead).
    pub(crate) fn set_report_panics(&self, on: bool) {
        let header = self.header();
        let flags = header.flags.get();
        header.flags.set(if on {
            flags & !NO_REPORT
        } else {
            flags | NO_REPORT
        });
    }

    /// Runs `f` when the task finishes (however it finishes).
    pub(crate) fn set_on_done(&self, f: Option<Box<dyn FnOnce()>>) {
        let header = self.header();
        header.flags.set(header.flags.get() | raw::EXTRA);
        let mut e = header.extra.take().unwrap_or_default();
        e.on_done = f;
        header.extra.set(Some(e));
    }

    /// Takes the done-callback, if any.
    fn take_on_done(&self) -> Option<Box<dyn FnOnce()>> {
        let extra = &self.header().extra;
        let mut e = extra.take()?;
        let f = e.on_done.take();
        extra.set(Some(e));
        f
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> Self {
        let local = &self.header().local;
        let Some(n) = local.get().checked_add(1) else {
            // So many handles means leaked handles; never wrap the count.
            std::process::abort();
        };
        local.set(n);
        TaskRef { ptr: self.ptr }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        let header = self.header();
        let local = header.local.get() - 1;
        header.local.set(local);
        if local == 0 {
            release_local(self.ptr);
        }
    }
}

/// The last local handle is gone: drop what is not `Send` here, then give the locals' unit back.
fn release_local(ptr: NonNull<Header>) {
    {
        // SAFETY: called on the task's thread by the last local handle, whose unit of `refs`
        // is still held: the task is alive.
        let header = unsafe { ptr.as_ref() };
        let flags = header.flags.get();
        if flags & BUSY == 0 {
            header.flags.set(flags | BUSY | DONE);
            // SAFETY: live, task's thread, `BUSY` set.
            unsafe { (header.vtable.drop_contents)(ptr) };
            header.flags.set(header.flags.get() & !BUSY);
        }
        drop(header.awaiter.take());
        if header.flags.get() & raw::EXTRA != 0 {
            let extra = header.extra.take();
            if let Some(mut e) = extra {
                drop(e.on_done.take());
                header.extra.set(Some(e));
            }
        }
        // If a destructor above made a new local handle (a wake turned into one), that one
        // holds a unit of its own (see `Notified::into_local`); ours goes back below.
    }
    // SAFETY: the locals' unit, given back once (a new local handle made meanwhile holds its
    // own unit); the contents that are not `Send` were dropped above.
    unsafe { raw::release_locals_unit(ptr) };
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("name", &self.name())
            .field("done", &self.done())
            .finish()
    }
}

/// Makes a task for `future`: the loop's handle (to spawn) and the user's.
pub(crate) fn new_task<F>(future: F, name: Option<String>) -> (TaskRef, Task<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let id = next_task_id();
    let ptr = raw::allocate(future, id, name.map(String::into_boxed_str));
    let task = TaskRef { ptr };
    let user = Task {
        task: task.clone(),
        _output: PhantomData,
    };
    (task, user)
}

/// The task being run on this thread (asyncio's `current_task()`): `Some` inside a task's
/// future (and in whatever it awaits or calls while polled), `None` in a plain callback
/// (`call_soon`, timers, readers) and outside the loop.
pub fn current_task() -> Option<AnyTask> {
    let ptr = raw::current()?;
    // A borrowed view of the task being polled here (the loop's handle that polls it keeps it
    // alive, and this is its thread); cloning it makes a counted handle of our own.
    let polled = std::mem::ManuallyDrop::new(TaskRef { ptr });
    Some(AnyTask::new(TaskRef::clone(&polled)))
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
}

impl<T> From<&Task<T>> for AnyTask {
    /// A type-erased handle to the same task (to cancel it or list it beside tasks of other
    /// output types, as `loop-sync`'s `TaskGroup` does).
    fn from(task: &Task<T>) -> Self {
        AnyTask::new(task.task.clone())
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
    task: TaskRef,
    _output: PhantomData<fn() -> T>,
}

impl<T> Task<T> {
    fn head(&self) -> &raw::Head<T> {
        // SAFETY: the task was made by `new_task` for a future with output `T`: its cell
        // starts with a `Head<T>` (`repr(C)`), kept alive by our local handle.
        unsafe { self.task.ptr.cast::<raw::Head<T>>().as_ref() }
    }

    /// Takes the outcome if the task is done.
    pub(crate) fn take_outcome(&self) -> Option<Result<T, TaskError>> {
        let out = self.head().output.take();
        if out.is_some() {
            let flags = &self.head().header.flags;
            flags.set(flags.get() | TAKEN);
        }
        out
    }

    /// The loop's handle to this task.
    pub(crate) fn task_ref(&self) -> &TaskRef {
        &self.task
    }

    /// Requests cancellation. True if the task was not done yet (it will end `Cancelled`
    /// unless it finishes first), false if it had already finished.
    pub fn cancel(&self) -> bool {
        self.task.cancel()
    }

    /// True once the task has finished (with an output, cancelled or panicked).
    pub fn done(&self) -> bool {
        self.task.done()
    }

    /// True if cancellation was requested (asyncio's `cancelling() > 0`).
    pub fn cancelling(&self) -> bool {
        self.task.cancelling()
    }

    /// The task's name: `Task-N`, or the name given to `create_task_named`.
    pub fn name(&self) -> String {
        self.task.name()
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(out) = self.take_outcome() {
            return Poll::Ready(out);
        }
        let header = &self.head().header;
        if header.flags.get() & TAKEN != 0 {
            panic!("a Task was polled again after it returned its outcome");
        }
        if raw::current() == Some(self.task.ptr) {
            // It would wait for itself forever (asyncio raises the same RuntimeError).
            panic!("Task cannot await on itself");
        }
        let w = header.awaiter.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => header.awaiter.set(Some(w)),
            _ => header.awaiter.set(Some(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.task.name())
            .field("done", &self.task.done())
            .finish()
    }
}

#[cfg(test)]
mod tests;
