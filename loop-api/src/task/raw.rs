//! The one allocation of a task: a type-erased [`Header`], the outcome, then the future.
//!
//! # Threads and counts
//!
//! A task belongs to the thread that made it (the loop's thread): its future and output may
//! be `!Send`. Two counts keep it alive:
//!
//! - `local` (a `Cell`, loop thread only) counts the handles of the loop's thread
//!   ([`TaskRef`](super::TaskRef), [`Task`](super::Task), [`AnyTask`](super::AnyTask)). All of
//!   them together hold ONE unit of `refs`.
//! - `refs` (atomic) counts that unit plus every [`Waker`] and every
//!   [`Notified`](super::Notified) (a woken task on its way to its loop), which may live on any
//!   thread.
//!
//! When `local` drops to zero (on the loop's thread), everything that is not `Send` is dropped
//! there and then: the future (if the task never finished, it is aborted), the output, the
//! done-callback. What is left is `Send + Sync` (atomics, the name, the scheduler), so the last
//! waker may free the allocation on any thread. Other threads only ever touch `refs`,
//! `queued`, `vtable` and `scheduler` (written once, before any waker exists).

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crate::error::{TaskError, panic_message};
use crate::panics::{CaughtPanic, catch_printed, catch_reported};

use super::{Notified, Schedule};

/// The task finished: its outcome is (or was) in `output`.
pub(crate) const DONE: u8 = 1;
/// The outcome was taken by the `Task` awaiting it.
pub(crate) const TAKEN: u8 = 2;
/// `Task::cancel` was called.
pub(crate) const CANCEL_REQUESTED: u8 = 4;
/// A panic is not reported to the exception handler (`run_until_complete`'s future).
pub(crate) const NO_REPORT: u8 = 8;
/// A scheduler was given (`TaskRef::bind`): wakers may exist from now on.
pub(crate) const BOUND: u8 = 16;
/// The future is being polled or dropped: nothing else may touch it.
pub(crate) const BUSY: u8 = 32;
/// `extra` may hold something (a name, a done-callback).
pub(crate) const EXTRA: u8 = 64;

thread_local! {
    /// The task being polled on this thread (null outside task polls): set around the poll by
    /// [`run`], read by `Task::poll` (a task awaiting itself) and `current_task`.
    static CURRENT: Cell<*const Header> = const { Cell::new(std::ptr::null()) };
}

/// The task being polled on this thread, if any.
pub(crate) fn current() -> Option<NonNull<Header>> {
    NonNull::new(CURRENT.with(Cell::get).cast_mut())
}

/// How a poll went.
pub(crate) enum Polled {
    /// The future is not finished.
    Pending,
    /// It finished (the output is stored, the future dropped).
    Done,
    /// It panicked (the outcome `Panicked` is stored, the future dropped); what and where.
    Panicked(CaughtPanic),
}

/// What is known about the task's future type.
pub(crate) struct TaskVTable {
    /// Polls the future. The caller has set `BUSY`.
    pub(crate) poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Polled,
    /// Drops the future unfinished and stores the outcome `Cancelled`. The caller set `BUSY`.
    pub(crate) abort: unsafe fn(NonNull<Header>),
    /// Drops the future (if still there) and the output (if still there). `BUSY` is set.
    pub(crate) drop_contents: unsafe fn(NonNull<Header>),
    /// Frees the allocation (its contents are gone).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
}

/// The type-erased start of every task cell.
pub(crate) struct Header {
    /// Wakers, `Notified`s, plus one for all the local handles together (any thread).
    pub(crate) refs: AtomicUsize,
    /// True while the task sits in (or is on its way to) a ready queue (any thread).
    pub(crate) queued: AtomicBool,
    /// `DONE`, `TAKEN`, ... (loop thread only).
    pub(crate) flags: Cell<u8>,
    /// Local handles (loop thread only).
    pub(crate) local: Cell<u32>,
    pub(crate) vtable: &'static TaskVTable,
    /// Written once by `bind` before any waker exists, then only read (any thread).
    pub(crate) scheduler: UnsafeCell<Option<Arc<dyn Schedule>>>,
    /// A word the loop keeps for itself, e.g. the task's index in its task list.
    pub(crate) slot: Cell<usize>,
    pub(crate) id: u64,
    /// The waker of the one awaiting the task's `Task` (loop thread only).
    pub(crate) awaiter: Cell<Option<Waker>>,
    /// What few tasks have, kept out of line to keep the cell small (loop thread only).
    pub(crate) extra: Cell<Option<Box<Extra>>>,
}

/// The rarely used parts of a task.
#[derive(Default)]
pub(crate) struct Extra {
    /// The name given to `create_task_named`.
    pub(crate) name: Option<Box<str>>,
    /// Called when the task finishes (`run_until_complete` stops the loop with it).
    pub(crate) on_done: Option<Box<dyn FnOnce()>>,
}

/// The header and the outcome: everything a `Task<T>` needs, whatever the future's type.
#[repr(C)]
pub(crate) struct Head<T> {
    pub(crate) header: Header,
    pub(crate) output: Cell<Option<Result<T, TaskError>>>,
}

/// # Invariant
/// `future` is `Some` until the task finishes or is aborted and is never moved while `Some`
/// (the cell is a heap allocation that is only freed); it is dropped in place.
#[repr(C)]
struct TaskCell<F: Future> {
    head: Head<F::Output>,
    future: UnsafeCell<Option<F>>,
}

impl<F: Future + 'static> TaskCell<F> {
    const VTABLE: TaskVTable = TaskVTable {
        poll: Self::poll,
        abort: Self::abort,
        drop_contents: Self::drop_contents,
        dealloc: Self::dealloc,
    };

    /// # Safety
    /// `ptr` is the header of a live `TaskCell<F>`, on the task's thread, with `BUSY` set by
    /// the caller (no other access to `future` meanwhile).
    unsafe fn future<'a>(ptr: NonNull<Header>) -> &'a mut Option<F> {
        // SAFETY: the caller guarantees the cell is alive and that `BUSY` excludes every other
        // access to the future slot for as long as the reference is used.
        unsafe { &mut *(*ptr.cast::<TaskCell<F>>().as_ptr()).future.get() }
    }

    /// # Safety
    /// `ptr` is the header of a live `TaskCell<F>`, used on the task's thread.
    unsafe fn head<'a>(ptr: NonNull<Header>) -> &'a Head<F::Output> {
        // SAFETY: `TaskCell` is `repr(C)` and starts with its `Head`; the caller guarantees it
        // is alive; `Head` is only reached through shared references (its fields are cells).
        unsafe { ptr.cast::<Head<F::Output>>().as_ref() }
    }

    /// Drops the future where it lies (a panicking destructor is contained).
    fn drop_future(slot: &mut Option<F>) {
        if slot.is_some() && catch_printed(|| *slot = None).is_err() {
            // The destructor panicked part-way; the slot was already overwritten or is
            // overwritten now (without running that destructor again).
            std::mem::forget(slot.take());
        }
    }

    /// # Safety
    /// See [`TaskVTable::poll`].
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Polled {
        // SAFETY: forwarded from the caller (live cell, task's thread, `BUSY` set).
        let slot = unsafe { Self::future(ptr) };
        let Some(fut) = slot.as_mut() else {
            return Polled::Done;
        };
        // SAFETY: the future is never moved while `Some` (see the type's invariant).
        let fut = unsafe { Pin::new_unchecked(fut) };
        // SAFETY: as above.
        let head = unsafe { Self::head(ptr) };
        // A panic the loop reports is not printed by the panic hook too; that of a future
        // whose panic is returned instead (`run_until_complete`'s) is.
        let polled = if head.header.flags.get() & NO_REPORT == 0 {
            catch_reported(|| fut.poll(cx))
        } else {
            catch_printed(|| fut.poll(cx)).map_err(|payload| CaughtPanic {
                message: panic_message(&*payload),
                location: None,
            })
        };
        match polled {
            Ok(Poll::Pending) => Polled::Pending,
            Ok(Poll::Ready(v)) => {
                Self::drop_future(slot);
                head.output.set(Some(Ok(v)));
                Polled::Done
            }
            Err(caught) => {
                Self::drop_future(slot);
                head.output
                    .set(Some(Err(TaskError::Panicked(caught.message.clone()))));
                Polled::Panicked(caught)
            }
        }
    }

    /// # Safety
    /// See [`TaskVTable::abort`].
    unsafe fn abort(ptr: NonNull<Header>) {
        // SAFETY: forwarded from the caller (live cell, task's thread, `BUSY` set).
        Self::drop_future(unsafe { Self::future(ptr) });
        // SAFETY: as above.
        unsafe { Self::head(ptr) }
            .output
            .set(Some(Err(TaskError::Cancelled)));
    }

    /// # Safety
    /// See [`TaskVTable::drop_contents`].
    unsafe fn drop_contents(ptr: NonNull<Header>) {
        // SAFETY: forwarded from the caller (live cell, task's thread, `BUSY` set).
        Self::drop_future(unsafe { Self::future(ptr) });
        // SAFETY: as above.
        let out = unsafe { Self::head(ptr) }.output.take();
        if catch_printed(|| drop(out)).is_err() {
            // A panicking destructor of the output: already unwound out of it, nothing left.
        }
    }

    /// # Safety
    /// See [`TaskVTable::dealloc`]: `ptr` came from `Box::leak` in [`allocate`] and nothing
    /// refers to it any more.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the caller guarantees this is the last reference to a `Box<TaskCell<F>>`
        // whose future and output are already gone (so dropping it runs no `!Send` code).
        drop(unsafe { Box::from_raw(ptr.cast::<TaskCell<F>>().as_ptr()) });
    }
}

/// Allocates a task for `future`: one local handle, `refs` = 1 (the locals' unit), not bound.
pub(crate) fn allocate<F: Future + 'static>(
    future: F,
    id: u64,
    name: Option<Box<str>>,
) -> NonNull<Header> {
    let mut cell = Box::<TaskCell<F>>::new_uninit();
    let p = cell.as_mut_ptr();
    // SAFETY: `p` points to the uninitialised cell: every field is written once, in place
    // (no copy of the whole cell through the stack), before `assume_init` below.
    unsafe {
        (&raw mut (*p).head.header).write(Header {
            refs: AtomicUsize::new(1),
            queued: AtomicBool::new(false),
            flags: Cell::new(if name.is_some() { EXTRA } else { 0 }),
            local: Cell::new(1),
            vtable: &TaskCell::<F>::VTABLE,
            scheduler: UnsafeCell::new(None),
            slot: Cell::new(usize::MAX),
            id,
            awaiter: Cell::new(None),
            extra: Cell::new(name.map(|name| {
                Box::new(Extra {
                    name: Some(name),
                    on_done: None,
                })
            })),
        });
        (&raw mut (*p).head.output).write(Cell::new(None));
        (&raw mut (*p).future).write(UnsafeCell::new(Some(future)));
    }
    // SAFETY: every field was initialised above.
    let cell = unsafe { cell.assume_init() };
    NonNull::from(Box::leak(cell)).cast()
}

/// Gives back the locals' unit of `refs` (loop thread, after the `!Send` contents are gone).
///
/// # Safety
/// As [`ref_dec`]; moreover the caller has dropped the task's `!Send` contents.
pub(crate) unsafe fn release_locals_unit(ptr: NonNull<Header>) {
    // SAFETY: the caller's unit keeps the header alive.
    let header = unsafe { &*ptr.as_ptr() };
    // The usual case, with no waker left: ours is the only unit. Nobody can add one then
    // (adding needs a unit: a waker, a `Notified` or a local handle), so no atomic
    // read-modify-write is needed; Acquire sees the uses of the wakers dropped elsewhere.
    if header.refs.load(Ordering::Acquire) == 1 {
        let dealloc = header.vtable.dealloc;
        // SAFETY: ours is the last unit, and the contents that are not `Send` are gone.
        unsafe { dealloc(ptr) };
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { ref_dec(ptr) };
    }
}

/// Adds one unit to `refs` (any thread).
///
/// # Safety
/// `ptr` is a live task header and the caller holds a unit of `refs` (directly or through a
/// local handle), so the count is not zero.
pub(crate) unsafe fn ref_inc(ptr: NonNull<Header>) {
    // SAFETY: the caller holds a reference, so the header is alive.
    let refs = unsafe { &(*ptr.as_ptr()).refs };
    // Relaxed as in `Arc::clone`: a new reference is made from an existing one.
    if refs.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
        std::process::abort();
    }
}

/// Gives back one unit of `refs` (any thread); frees the task with the last one.
///
/// # Safety
/// The caller owns a unit of `refs` of the live task `ptr` and does not use it afterwards.
pub(crate) unsafe fn ref_dec(ptr: NonNull<Header>) {
    // SAFETY: the caller's unit keeps the header alive until the decrement below.
    let header = unsafe { &*ptr.as_ptr() };
    if header.refs.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // As in `Arc::drop`: see every other thread's use of the task before freeing it.
    fence(Ordering::Acquire);
    let dealloc = header.vtable.dealloc;
    // SAFETY: that was the last unit: no handle, waker or `Notified` is left. The locals'
    // unit goes last only after `release_local` dropped the `!Send` contents on the task's
    // thread, so only `Send` data is dropped here, on whatever thread this is.
    unsafe { dealloc(ptr) };
}

/// Wakes the task: queues it on its scheduler unless it is queued already (any thread).
///
/// # Safety
/// `ptr` is a live task header whose reference the caller holds during the call.
pub(crate) unsafe fn wake_by_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive.
    let header = unsafe { &*ptr.as_ptr() };
    if header.queued.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: a waker exists, so the task was bound: `scheduler` was written before any
    // waker was made and never again; the waker's transfer to this thread ordered that write
    // before this read.
    let scheduler = unsafe { &*header.scheduler.get() };
    if let Some(s) = scheduler {
        // SAFETY: the caller holds a reference, so the count is not zero.
        unsafe { ref_inc(ptr) };
        s.schedule(Notified { ptr });
    }
}

static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// A waker for the task (it holds a unit of `refs`).
///
/// # Safety
/// `ptr` is a live, bound task header; the returned waker owns a unit of `refs` the caller
/// has added for it (or must not be dropped: see `TaskRef::run`).
pub(crate) unsafe fn waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold `RawWaker`'s contract for a counted pointer to a
    // task header: clone adds a unit, drop gives one back, wake may run on any thread as it
    // only touches atomics, the scheduler (Send + Sync) and the allocation's lifetime.
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr().cast(), &WAKER_VTABLE)) }
}

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is the non-null header pointer of a waker, which holds a unit.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut()).cast::<Header>() };
    // SAFETY: the waker being cloned holds a unit, so the task is alive.
    unsafe { ref_inc(ptr) };
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: `data` is the non-null header pointer of a waker, which holds a unit.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut()).cast::<Header>() };
    // SAFETY: the consumed waker's unit keeps the task alive during the wake; then it is
    // given back.
    unsafe {
        wake_by_ref(ptr);
        ref_dec(ptr);
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: `data` is the non-null header pointer of a live waker.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut()).cast::<Header>() };
    // SAFETY: the borrowed waker holds a unit for the whole call.
    unsafe { wake_by_ref(ptr) };
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: `data` is the non-null header pointer of the waker being dropped.
    let ptr = unsafe { NonNull::new_unchecked(data.cast_mut()).cast::<Header>() };
    // SAFETY: the dropped waker owned this unit.
    unsafe { ref_dec(ptr) };
}

/// Polls the task once with its own waker; `Ready` once it is finished.
///
/// # Safety
/// `ptr` is a live task header, on the task's thread, and the caller holds a local handle.
pub(crate) unsafe fn run(ptr: NonNull<Header>) -> Polled {
    // SAFETY: the caller's local handle keeps the header alive.
    let header = unsafe { &*ptr.as_ptr() };
    // Woken from now on means polled again.
    header.queued.store(false, Ordering::Release);
    let flags = header.flags.get();
    if flags & (DONE | BUSY) != 0 {
        return if flags & DONE != 0 {
            Polled::Done
        } else {
            Polled::Pending
        };
    }
    assert!(flags & BOUND != 0, "a task was run before it was bound");
    header.flags.set(flags | BUSY);
    if flags & CANCEL_REQUESTED != 0 {
        // SAFETY: live cell, task's thread, `BUSY` set.
        unsafe { (header.vtable.abort)(ptr) };
        header.flags.set(header.flags.get() & !BUSY);
        return Polled::Done;
    }
    // The waker is borrowed for the poll without a unit of its own: the caller's local handle
    // keeps the task alive meanwhile, and `ManuallyDrop` keeps it from giving a unit back.
    // SAFETY: the task is bound and alive; the waker is never dropped (clones add units).
    let waker = std::mem::ManuallyDrop::new(unsafe { waker(ptr) });
    let mut cx = Context::from_waker(&waker);
    // The poll contains the future's panics, so the previous task is always put back.
    let outer = CURRENT.with(|c| c.replace(ptr.as_ptr()));
    // SAFETY: live cell, task's thread, `BUSY` set.
    let polled = unsafe { (header.vtable.poll)(ptr, &mut cx) };
    CURRENT.with(|c| c.set(outer));
    header.flags.set(header.flags.get() & !BUSY);
    polled
}
