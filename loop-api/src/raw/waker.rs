//! The reference-count protocol (`refs`) and the hand-written waker over it; polling a task
//! with that waker. The rules are in the [module docs](super).

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{Ordering, fence};
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

use super::cell::{BOUND, BUSY, CANCEL_REQUESTED, DONE, EXTRA, Header, Polled, TIMED};
use super::task::Notified;
use super::timing;

thread_local! {
    /// The task being polled on this thread (null outside task polls): set around the poll by
    /// [`run`], read by `Task::poll` (a task awaiting itself) and `current_task`.
    static CURRENT: Cell<*const Header> = const { Cell::new(std::ptr::null()) };
}

/// The task being polled on this thread, if any.
pub(super) fn current() -> Option<NonNull<Header>> {
    NonNull::new(CURRENT.with(Cell::get).cast_mut())
}

/// Gives back the locals' unit of `refs` (loop thread, after the `!Send` contents are gone).
///
/// # Safety
/// As [`ref_dec`]; moreover the caller has dropped the task's `!Send` contents.
pub(super) unsafe fn release_locals_unit(ptr: NonNull<Header>) {
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
pub(super) unsafe fn ref_inc(ptr: NonNull<Header>) {
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
pub(super) unsafe fn ref_dec(ptr: NonNull<Header>) {
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
pub(super) unsafe fn wake_by_ref(ptr: NonNull<Header>) {
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
        s.get().schedule(Notified { ptr });
    }
}

/// The waker's functions. What each may assume (`RawWaker`'s contract, for our pointers):
/// `data` is the header of a live task for which the waker owns one unit of `refs` (the
/// borrowed waker of [`run`] stands on the polling local handle's unit instead, and is never
/// dropped), on any thread, concurrently with the task's thread. So they touch only `refs`,
/// `queued`, `vtable` and `scheduler`, which are `Sync` (see the module docs).
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// True for the waker of a task of one of this crate's loops. Waking it only queues the
/// task on its loop (on the loop's thread: a push onto the ready queue; elsewhere: onto the
/// remote queue, and the loop's driver is woken); it runs no other code, so a loop may wake
/// it while it holds its own state borrowed (a foreign waker might call back into the loop).
pub fn is_loop_task_waker(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &WAKER_VTABLE)
}

/// Consumes `waker` as its `wake` would when it is one of our tasks' wakers whose scheduler
/// is the one at `scheduler` (the data pointer of the `Arc<dyn Schedule>` the task was bound
/// to, see `Arc::as_ptr`), handing the task back instead of giving it to the scheduler:
/// `Ok(Some)` when it was not queued yet (the caller queues it, as that scheduler would),
/// `Ok(None)` when it was. Any other waker comes back unused in `Err`.
///
/// For a loop whose driver wakes the loop's own tasks on its thread: it queues them without
/// the scheduler's call and its search for the thread's queue.
pub fn wake_into(waker: Waker, scheduler: *const ()) -> Result<Option<Notified>, Waker> {
    if !is_loop_task_waker(&waker) {
        return Err(waker);
    }
    // SAFETY: a waker of ours: its data is a live task header it holds a unit of.
    let ptr = unsafe { header_of(waker.data()) };
    // SAFETY: the waker's unit keeps the header alive during the call.
    let header = unsafe { &*ptr.as_ptr() };
    // SAFETY: as in `waker_wake`: a waker exists, so `scheduler` was written (once) before.
    let bound = unsafe { &*header.scheduler.get() };
    if !bound
        .as_ref()
        .is_some_and(|s| std::ptr::eq(s.addr(), scheduler))
    {
        return Err(waker);
    }
    std::mem::forget(waker);
    // SAFETY: the forgotten waker's unit is handed over.
    Ok(unsafe { claim_queued(ptr) })
}

/// Marks the task queued with the unit of a consumed waker: the unit moves into the
/// `Notified` when the task was not queued yet, else it is given back (`None`).
///
/// # Safety
/// `ptr` is a live task header and the caller owns a unit of its `refs`, which it gives up.
#[inline(always)]
unsafe fn claim_queued(ptr: NonNull<Header>) -> Option<Notified> {
    // SAFETY: the caller's unit keeps the header alive during the call.
    let header = unsafe { &*ptr.as_ptr() };
    if header.queued.swap(true, Ordering::AcqRel) {
        // SAFETY: the caller's unit is given back (the task was queued already).
        unsafe { ref_dec(ptr) };
        return None;
    }
    Some(Notified { ptr })
}

/// A waker for the task (it holds a unit of `refs`).
///
/// # Safety
/// `ptr` is a live, bound task header; the returned waker owns a unit of `refs` the caller
/// has added for it (or must not be dropped: see [`run`]).
pub(super) unsafe fn waker(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable's functions uphold `RawWaker`'s contract for a counted pointer to a
    // task header: clone adds a unit, drop gives one back, wake may run on any thread as it
    // only touches atomics, the scheduler (Send + Sync) and the allocation's lifetime.
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr().cast(), &WAKER_VTABLE)) }
}

/// The header a waker's data points to.
///
/// # Safety
/// `data` is the data pointer of one of our wakers (see [`WAKER_VTABLE`]).
#[inline]
unsafe fn header_of(data: *const ()) -> NonNull<Header> {
    // SAFETY: our wakers are only made by `waker` (and `waker_clone`), from a `NonNull`.
    unsafe { NonNull::new_unchecked(data.cast_mut()).cast::<Header>() }
}

/// # Safety
/// See [`WAKER_VTABLE`]: `data` is a live waker's, which holds a unit.
unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds a unit, so the task is alive; the clone owns the
    // unit added here.
    unsafe { ref_inc(header_of(data)) };
    RawWaker::new(data, &WAKER_VTABLE)
}

/// # Safety
/// See [`WAKER_VTABLE`]: `data` is the consumed waker's, whose unit is given back here.
unsafe fn waker_wake(data: *const ()) {
    // SAFETY: a waker's data.
    let ptr = unsafe { header_of(data) };
    // SAFETY: the consumed waker's unit is handed over (into the `Notified`: no add and give
    // back).
    let Some(task) = (unsafe { claim_queued(ptr) }) else {
        return;
    };
    // SAFETY: the `Notified`'s unit keeps the header alive.
    let header = unsafe { &*ptr.as_ptr() };
    // SAFETY: as in `wake_by_ref`: the task was bound before any waker was made.
    let scheduler = unsafe { &*header.scheduler.get() };
    if let Some(s) = scheduler {
        s.get().schedule(task);
    }
    // Else (never bound) the `Notified` drops here, giving the unit back.
}

/// # Safety
/// See [`WAKER_VTABLE`]: `data` is a live waker's, borrowed for the call.
unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: the borrowed waker holds a unit for the whole call.
    unsafe { wake_by_ref(header_of(data)) };
}

/// # Safety
/// See [`WAKER_VTABLE`]: `data` is the dropped waker's, whose unit is given back here.
unsafe fn waker_drop(data: *const ()) {
    // SAFETY: the dropped waker owned this unit.
    unsafe { ref_dec(header_of(data)) };
}

/// `Header::polls` wrapped: counts it in `extra`.
#[cold]
fn carry_polls(header: &Header) {
    let mut extra = header.extra.take().unwrap_or_default();
    extra.polls_high = extra.polls_high.wrapping_add(1);
    header.extra.set(Some(extra));
    header.flags.set(header.flags.get() | EXTRA);
}

/// Adds the poll that started at `start` to the task's busy time and marks its end.
#[cold]
fn record_poll_time(header: &Header, start: u64) {
    let end = timing::now();
    let mut extra = header.extra.take().unwrap_or_default();
    extra.busy_ns = extra.busy_ns.saturating_add(end.saturating_sub(start));
    extra.mark_ns = end;
    header.extra.set(Some(extra));
    header.flags.set(header.flags.get() | EXTRA | TIMED);
}

/// Polls the task once with its own waker; `Ready` once it is finished. `timed`: task timing
/// is on (the caller read the mode).
///
/// # Safety
/// `ptr` is a live task header, on the task's thread, and the caller holds a local handle.
#[inline]
pub(super) unsafe fn run(ptr: NonNull<Header>, timed: bool) -> Polled {
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
    let polls = header.polls.get().wrapping_add(1);
    header.polls.set(polls);
    if polls == 0 {
        carry_polls(header);
    }
    // The clock is read only when timing is on.
    let start = if timed { timing::now() } else { 0 };
    // The poll contains the future's panics, so the previous task is always put back.
    let outer = CURRENT.with(|c| c.replace(ptr.as_ptr()));
    // SAFETY: live cell, task's thread, `BUSY` set.
    let polled = unsafe { (header.vtable.poll)(ptr, &mut cx) };
    CURRENT.with(|c| c.set(outer));
    // Untimed, the poll's end is not known: `TIMED` goes (in the store that clears `BUSY`).
    header.flags.set(header.flags.get() & !(BUSY | TIMED));
    if timed {
        record_poll_time(header, start);
    }
    polled
}
