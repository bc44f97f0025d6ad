//! The handles to a task: [`TaskRef`] and [`TaskOutput`] on the task's thread (they share the
//! `local` count), [`Notified`] anywhere (it holds a unit of `refs`). Everything the rest of the
//! crate does with a task goes through their safe methods.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::error::TaskError;
use crate::panics::CaughtPanic;
use crate::task::{Schedule, TaskState};

use super::cell::{
    self, BOUND, BUSY, BoundScheduler, CANCEL_REQUESTED, CANCELLED, DONE, EXTRA, Extra, FAILED,
    Head, Header, NO_REPORT, PANIC_KEPT, Polled, SLOT_FAR, TAKEN, TIMED,
};
use super::{timing, waker};

/// A woken task on its way to its loop: may cross threads, and only becomes usable again on
/// the loop's thread ([`Notified::into_local`]).
pub struct Notified {
    pub(super) ptr: NonNull<Header>,
}

// A `Notified` owns one unit of the task's atomic count and nothing else; the only things done
// with it off the task's thread are moving it and dropping it. Turning it back into a handle
// that touches the future is `unsafe` and requires the task's thread.
// SAFETY: dropping it elsewhere is an atomic decrement that frees only `Send` data (see the
// module docs of `raw`).
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
            unsafe { waker::ref_dec(ptr) };
        }
        TaskRef { ptr }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: we own a unit of the count and give it back.
        unsafe { waker::ref_dec(self.ptr) };
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
    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: a local handle keeps the task alive, and is only used on the task's thread.
        unsafe { self.ptr.as_ref() }
    }

    /// The task being polled on this thread (see `crate::current_task`), as a counted handle
    /// of our own.
    pub(crate) fn current() -> Option<TaskRef> {
        let ptr = waker::current()?;
        // A borrowed view of the task being polled here (the loop's handle that polls it keeps
        // it alive, and this is its thread); cloning it makes a counted handle of our own.
        let polled = ManuallyDrop::new(TaskRef { ptr });
        Some(TaskRef::clone(&polled))
    }

    /// Gives the task its scheduler (where its waker sends it) and marks it queued: the loop
    /// must now queue it, and [`run`](Self::run) it when it comes up.
    ///
    /// # Panics
    /// If the task was bound already.
    pub fn bind(&self, scheduler: Arc<dyn Schedule>) {
        let header = self.header();
        let flags = header.flags.get();
        assert!(flags & BOUND == 0, "a task was spawned twice");
        // SAFETY: not bound yet, so no waker exists (wakers are only made by `run`, which
        // requires `BOUND`): nothing reads `scheduler` concurrently. This is the only write.
        unsafe { *header.scheduler.get() = Some(BoundScheduler::new(scheduler)) };
        header.queued.store(true, Ordering::Relaxed);
        header.flags.set(flags | BOUND);
    }

    /// Polls the task once (unless it is done); `Ready` once it has finished (however).
    /// A finished task can be forgotten by the loop.
    ///
    /// If the future panicked, the task ends `Panicked` and its panic (message and location)
    /// is kept for the loop that ran it: on `Ready`, the loop takes it with
    /// [`take_panic`](Self::take_panic) and reports it to its own exception handler (with
    /// `ExceptionContext::task_panicked`). A panic no loop takes is printed to stderr when the
    /// task's last handle is dropped.
    ///
    /// # Panics
    /// If the task was not bound.
    #[inline]
    pub fn run(&self) -> Poll<()> {
        // One relaxed load and a branch per poll when neither task timing nor publication for
        // a monitor is on.
        let mode = timing::mode();
        if mode & timing::PUBLISH != 0 {
            return self.run_published(mode & timing::TIMING != 0);
        }
        // Without the publication bit, what is left is the timing bit.
        self.run_with(mode != 0)
    }

    /// [`run`](Self::run) while publication for a monitor is on.
    #[cold]
    #[inline(never)]
    fn run_published(&self, timed: bool) -> Poll<()> {
        crate::introspect::run_published(self, || self.run_with(timed))
    }

    #[inline(always)]
    fn run_with(&self, timed: bool) -> Poll<()> {
        // SAFETY: our local handle keeps the task alive; `TaskRef` is `!Send`, so this is the
        // task's thread.
        match unsafe { waker::run(self.ptr, timed) } {
            Polled::Pending => Poll::Pending,
            Polled::Done => {
                self.finish();
                Poll::Ready(())
            }
            Polled::Panicked(caught) => {
                self.keep_panic(caught);
                self.finish();
                Poll::Ready(())
            }
        }
    }

    /// The panic of the task's future, for the loop that ran it to report: `Some` once, after
    /// a [`run`](Self::run) that returned `Ready` because the future panicked. `None` for a
    /// task whose panic is returned to the caller instead (`run_until_complete`'s future) and
    /// for every other task.
    #[inline]
    pub fn take_panic(&self) -> Option<CaughtPanic> {
        let header = self.header();
        let flags = header.flags.get();
        if flags & PANIC_KEPT == 0 {
            return None;
        }
        header.flags.set(flags & !PANIC_KEPT);
        let mut extra = header.extra.take()?;
        let caught = extra.panic.take();
        header.extra.set(Some(extra));
        caught.map(|c| *c)
    }

    /// Keeps the future's panic for [`take_panic`](Self::take_panic), unless it is not to be
    /// reported.
    #[cold]
    fn keep_panic(&self, caught: Box<CaughtPanic>) {
        let header = self.header();
        let flags = header.flags.get();
        if flags & NO_REPORT != 0 {
            return;
        }
        let mut extra = header.extra.take().unwrap_or_default();
        extra.panic = Some(caught);
        header.extra.set(Some(extra));
        header.flags.set(flags | EXTRA | PANIC_KEPT);
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
        if header.flags.get() & EXTRA != 0
            && let Some(f) = self.take_on_done()
        {
            f();
        }
    }

    /// The task's name (`Task-N` unless one was given).
    pub fn name(&self) -> String {
        let header = self.header();
        if header.flags.get() & EXTRA == 0 {
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

    /// Requests cancellation (see [`Task::cancel`](crate::Task::cancel)); false if the task
    /// had finished.
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
            if flags & BOUND != 0 {
                // SAFETY: our handle keeps the task alive; it is bound.
                unsafe { waker::wake_by_ref(self.ptr) };
            }
        }
        true
    }

    /// True once the task has finished.
    pub fn done(&self) -> bool {
        self.header().flags.get() & DONE != 0
    }

    /// The task's id, unique in the process.
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// Where the task is in its life (see [`TaskState`]).
    pub fn state(&self) -> TaskState {
        let flags = self.header().flags.get();
        if flags & DONE != 0 {
            if flags & FAILED != 0 {
                TaskState::Failed
            } else if flags & CANCELLED != 0 {
                TaskState::Cancelled
            } else {
                TaskState::Done
            }
        } else if flags & BUSY != 0 {
            TaskState::Running
        } else {
            TaskState::Pending
        }
    }

    /// Where the task was made (the caller of `create_task`).
    pub fn created_at(&self) -> &'static Location<'static> {
        self.header().created_at
    }

    /// How many times its future was polled.
    pub fn polls(&self) -> u64 {
        let high = self.read_extra(|e| e.polls_high).unwrap_or(0);
        (u64::from(high) << 32) | u64::from(self.header().polls.get())
    }

    /// Time spent in its polls while task timing was on (see `crate::set_task_timing`).
    pub fn busy(&self) -> Duration {
        self.read_extra(|e| Duration::from_nanos(e.busy_ns))
            .unwrap_or(Duration::ZERO)
    }

    /// Time since its last poll ended (or since it was made, if never polled); zero while it
    /// runs, and when that moment was not timed (task timing was off).
    pub fn idle(&self) -> Duration {
        let header = self.header();
        let flags = header.flags.get();
        if flags & (BUSY | DONE) == BUSY || flags & TIMED == 0 {
            return Duration::ZERO;
        }
        timing::since(self.read_extra(|e| e.mark_ns).unwrap_or(0))
    }

    /// Reads the task's `extra`, if it has one.
    fn read_extra<R>(&self, f: impl FnOnce(&Extra) -> R) -> Option<R> {
        let header = self.header();
        if header.flags.get() & EXTRA == 0 {
            return None;
        }
        let extra = header.extra.take()?;
        let r = f(&extra);
        header.extra.set(Some(extra));
        Some(r)
    }

    /// True if cancellation was requested.
    pub fn cancelling(&self) -> bool {
        self.header().flags.get() & CANCEL_REQUESTED != 0
    }

    /// A word the loop keeps with the task for itself (e.g. its index in the loop's task
    /// list); `usize::MAX` until set.
    #[inline]
    pub fn loop_slot(&self) -> usize {
        let slot = self.header().slot.get();
        if slot == SLOT_FAR {
            return self.read_extra(|e| e.far_slot).unwrap_or(usize::MAX);
        }
        // u32 into usize is lossless on the 64-bit targets loop-api builds for.
        usize::try_from(slot).unwrap_or(usize::MAX).wrapping_sub(1)
    }

    /// Sets the word of [`loop_slot`](Self::loop_slot).
    #[inline]
    pub fn set_loop_slot(&self, slot: usize) {
        match u32::try_from(slot.wrapping_add(1)) {
            Ok(s) if s != SLOT_FAR => self.header().slot.set(s),
            _ => self.set_far_slot(slot),
        }
    }

    /// Keeps a slot that does not fit in the header's 32 bits in `extra`.
    #[cold]
    fn set_far_slot(&self, slot: usize) {
        let header = self.header();
        let mut extra = header.extra.take().unwrap_or_default();
        extra.far_slot = slot;
        header.extra.set(Some(extra));
        header.flags.set(header.flags.get() | EXTRA);
        header.slot.set(SLOT_FAR);
    }

    /// True if both handles are to the same task.
    pub fn ptr_eq(&self, other: &TaskRef) -> bool {
        self.ptr == other.ptr
    }

    /// Whether a panic is kept for the loop to report (not for `run_until_complete`'s future,
    /// whose panic is returned to the caller instead).
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
        header.flags.set(header.flags.get() | EXTRA);
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
    #[inline]
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
    #[inline]
    fn drop(&mut self) {
        let header = self.header();
        let local = header.local.get() - 1;
        header.local.set(local);
        if local == 0 {
            let unreported = release_local(self.ptr);
            if let Some((name, caught)) = unreported {
                crate::task::print_unreported_panic(name, caught);
            }
        }
    }
}

/// The last local handle is gone: drop what is not `Send` here, then give the locals' unit back.
/// Gives back a kept panic no loop took (with the task's name), to be printed.
fn release_local(ptr: NonNull<Header>) -> Option<(String, CaughtPanic)> {
    let unreported;
    {
        // An uncounted view: called on the task's thread by the last local handle, whose unit
        // of `refs` is still held (the task is alive); it must not be dropped.
        let handle = ManuallyDrop::new(TaskRef { ptr });
        let header = handle.header();
        unreported = handle.take_panic().map(|caught| (handle.name(), caught));
        let flags = header.flags.get();
        if flags & BUSY == 0 {
            // No handle is left to read its state: an unfinished task is not marked
            // `CANCELLED` here (a store less on the path every task takes).
            header.flags.set(flags | BUSY | DONE);
            // SAFETY: live, task's thread, `BUSY` set.
            unsafe { (header.vtable.drop_contents)(ptr) };
            header.flags.set(header.flags.get() & !BUSY);
        }
        drop(header.awaiter.take());
        if header.flags.get() & EXTRA != 0 {
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
    unsafe { waker::release_locals_unit(ptr) };
    unreported
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("name", &self.name())
            .field("done", &self.done())
            .finish()
    }
}

/// A local handle that knows the task's output type: what a [`Task`](crate::Task) holds. Only
/// [`new_task`] makes one, for the type its future gives.
pub(crate) struct TaskOutput<T> {
    task: TaskRef,
    _output: PhantomData<fn() -> T>,
}

impl<T> TaskOutput<T> {
    #[inline]
    fn head(&self) -> &Head<T> {
        // SAFETY: the task was made by `new_task` for a future with output `T`: its cell
        // starts with a `Head<T>` (`repr(C)`), kept alive by our local handle.
        unsafe { self.task.ptr.cast::<Head<T>>().as_ref() }
    }

    /// The type-erased handle.
    pub(crate) fn task_ref(&self) -> &TaskRef {
        &self.task
    }

    /// Takes the outcome if the task is done (and remembers it was taken).
    pub(crate) fn take_outcome(&self) -> Option<Result<T, TaskError>> {
        let out = self.head().output.take();
        if out.is_some() {
            let flags = &self.head().header.flags;
            flags.set(flags.get() | TAKEN);
        }
        out
    }

    /// True once [`take_outcome`](Self::take_outcome) gave the outcome.
    pub(crate) fn outcome_taken(&self) -> bool {
        self.head().header.flags.get() & TAKEN != 0
    }

    /// True while this task is being polled on this thread (the caller is inside it).
    pub(crate) fn is_running_here(&self) -> bool {
        waker::current() == Some(self.task.ptr)
    }

    /// Wakes `waker` when the task finishes (it replaces the one set before).
    pub(crate) fn set_awaiter(&self, waker: &Waker) {
        let awaiter = &self.head().header.awaiter;
        match awaiter.take() {
            Some(w) if w.will_wake(waker) => awaiter.set(Some(w)),
            _ => awaiter.set(Some(waker.clone())),
        }
    }
}

/// Makes a task for `future` (its id and its name given): a local handle knowing its output.
/// Not bound to a loop yet.
pub(crate) fn new_task<F>(
    future: F,
    id: u64,
    name: Option<Box<str>>,
    created_at: &'static Location<'static>,
) -> TaskOutput<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    TaskOutput {
        task: TaskRef {
            ptr: cell::allocate(future, id, name, created_at),
        },
        _output: PhantomData,
    }
}
