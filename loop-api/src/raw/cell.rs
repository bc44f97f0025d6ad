//! The one allocation of a task: a type-erased [`Header`], the outcome, then the future; and
//! the functions of the future's type that the header points to ([`TaskVTable`]).
//!
//! The counting rules that decide who may touch which part, on which thread, are in the
//! [module docs](super).

use std::cell::{Cell, UnsafeCell};
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::task::{Context, Poll, Waker};

use crate::error::{TaskError, panic_message};
use crate::panics::{CaughtPanic, catch_printed, catch_reported};
use crate::task::Schedule;

/// The task finished: its outcome is (or was) in `output`.
pub(super) const DONE: u16 = 1;
/// The outcome was taken by the `Task` awaiting it.
pub(super) const TAKEN: u16 = 2;
/// `Task::cancel` was called.
pub(super) const CANCEL_REQUESTED: u16 = 4;
/// A panic is not reported to the exception handler (`run_until_complete`'s future).
pub(super) const NO_REPORT: u16 = 8;
/// A scheduler was given (`TaskRef::bind`): wakers may exist from now on.
pub(super) const BOUND: u16 = 16;
/// The future is being polled or dropped: nothing else may touch it.
pub(super) const BUSY: u16 = 32;
/// `extra` may hold something (a name, a done-callback, a panic).
pub(super) const EXTRA: u16 = 64;
/// `extra` holds a panic of the future that the loop has not taken yet (`TaskRef::take_panic`).
pub(super) const PANIC_KEPT: u16 = 128;
/// `Header::slot` of a task whose slot is in `Extra::far_slot` (others hold slot + 1, so 0 is
/// `usize::MAX`, no slot).
pub(super) const SLOT_FAR: u32 = u32::MAX;

/// The task ended `Cancelled` (its future was dropped unfinished).
pub(super) const CANCELLED: u16 = 256;
/// The task ended `Panicked` (its future panicked).
pub(super) const FAILED: u16 = 512;
/// `extra` holds when the task's last poll ended (or when it was made): that moment was timed.
pub(super) const TIMED: u16 = 1024;

/// How a poll went.
pub(super) enum Polled {
    /// The future is not finished.
    Pending,
    /// It finished (the output is stored, the future dropped).
    Done,
    /// It panicked (the outcome `Panicked` is stored, the future dropped); what and where.
    /// Boxed, so a poll's answer is one word (returned in a register).
    Panicked(Box<CaughtPanic>),
}

/// What is known about the task's future type: the functions of its `TaskCell<F>`.
///
/// Each function's contract (its `# Safety`): `ptr` is the header of a live task whose cell
/// was made for this vtable's `F`, the call is made on the task's thread, and (except for
/// `dealloc`) the caller has set `BUSY`, so nothing else touches the future meanwhile.
pub(super) struct TaskVTable {
    /// Polls the future.
    pub(super) poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Polled,
    /// Drops the future unfinished and stores the outcome `Cancelled`.
    pub(super) abort: unsafe fn(NonNull<Header>),
    /// Drops the future (if still there) and the output (if still there).
    pub(super) drop_contents: unsafe fn(NonNull<Header>),
    /// Frees the allocation. No unit of `refs` is left, and the contents that are not `Send`
    /// are gone (so this one may run on any thread).
    pub(super) dealloc: unsafe fn(NonNull<Header>),
}

/// The type-erased start of every task cell.
pub(super) struct Header {
    /// Wakers, `Notified`s, plus one for all the local handles together (any thread).
    pub(super) refs: AtomicUsize,
    /// True while the task sits in (or is on its way to) a ready queue (any thread).
    pub(super) queued: AtomicBool,
    /// `DONE`, `TAKEN`, ... (loop thread only).
    pub(super) flags: Cell<u16>,
    /// Local handles (loop thread only).
    pub(super) local: Cell<u32>,
    pub(super) vtable: &'static TaskVTable,
    /// Written once by `bind` before any waker exists, then only read (any thread).
    pub(super) scheduler: UnsafeCell<Option<BoundScheduler>>,
    /// A word the loop keeps for itself, e.g. the task's index in its task list, plus one
    /// (wrapping: 0 is `usize::MAX`); `SLOT_FAR` when it is kept in `extra` as it does not fit
    /// in 32 bits (the header stays small this way: every task carries one).
    pub(super) slot: Cell<u32>,
    pub(super) id: u64,
    /// Where the task was made (the user's `create_task` call).
    pub(super) created_at: &'static Location<'static>,
    /// The polls of the future so far, modulo 2^32; `extra` counts the wraps (loop thread
    /// only).
    pub(super) polls: Cell<u32>,
    /// The waker of the one awaiting the task's `Task` (loop thread only).
    pub(super) awaiter: Cell<Option<Waker>>,
    /// What few tasks have, kept out of line to keep the cell small (loop thread only).
    pub(super) extra: Cell<Option<Box<Extra>>>,
}

/// The scheduler a task was bound to: an `Arc<dyn Schedule>` kept as its raw pointer (one
/// unit of the `Arc`'s count), so a wake reaches it without the `Arc`'s offset arithmetic and
/// its address compares in one step ([`wake_into`](super::wake_into)).
pub(super) struct BoundScheduler(NonNull<dyn Schedule>);

impl BoundScheduler {
    pub(super) fn new(scheduler: Arc<dyn Schedule>) -> Self {
        // SAFETY: `Arc::into_raw` never gives a null pointer.
        BoundScheduler(unsafe { NonNull::new_unchecked(Arc::into_raw(scheduler).cast_mut()) })
    }

    /// The scheduler's data pointer (what `Arc::as_ptr` gives for it).
    #[inline(always)]
    pub(super) fn addr(&self) -> *const () {
        self.0.as_ptr().cast_const().cast()
    }

    #[inline(always)]
    pub(super) fn get(&self) -> &dyn Schedule {
        // SAFETY: `self` owns a unit of the `Arc`, so the scheduler is alive while it lives;
        // it is only read (`Schedule` is `Sync`).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for BoundScheduler {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Arc::into_raw` in `new`, and its unit is given back
        // once, here.
        drop(unsafe { Arc::from_raw(self.0.as_ptr().cast_const()) });
    }
}

/// The rarely used parts of a task.
#[derive(Default)]
pub(super) struct Extra {
    /// The name given to `create_task_named`.
    pub(super) name: Option<Box<str>>,
    /// Called when the task finishes (`run_until_complete` stops the loop with it).
    pub(super) on_done: Option<Box<dyn FnOnce()>>,
    /// The future's panic, kept for the loop that ran the task to report (`PANIC_KEPT`).
    pub(super) panic: Option<Box<CaughtPanic>>,
    /// How many times `Header::polls` wrapped.
    pub(super) polls_high: u32,
    /// The loop's word when it does not fit in `Header::slot`.
    pub(super) far_slot: usize,
    /// Nanoseconds spent in the polls timed so far (task timing is rarely on: kept here, out
    /// of the header every task carries).
    pub(super) busy_ns: u64,
    /// When the last timed poll ended (or the task was made), as [`super::timing`]'s clock
    /// reads it; meaningful while `TIMED` is set.
    pub(super) mark_ns: u64,
}

/// The first flags and the `extra` of a new task: its name, and its creation time if task
/// timing is on.
#[inline]
fn first_extra(name: Option<Box<str>>) -> (u16, Option<Box<Extra>>) {
    let mark_ns = super::timing::now_if_on();
    if name.is_none() && mark_ns == 0 {
        return (0, None);
    }
    let flags = if mark_ns == 0 { EXTRA } else { EXTRA | TIMED };
    let extra = Extra {
        name,
        mark_ns,
        ..Extra::default()
    };
    (flags, Some(Box::new(extra)))
}

/// The header and the outcome: everything a `Task<T>` needs, whatever the future's type.
#[repr(C)]
pub(super) struct Head<T> {
    pub(super) header: Header,
    pub(super) output: Cell<Option<Result<T, TaskError>>>,
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
                let flags = &head.header.flags;
                flags.set(flags.get() | FAILED);
                head.output
                    .set(Some(Err(TaskError::Panicked(caught.message.clone()))));
                Polled::Panicked(Box::new(caught))
            }
        }
    }

    /// # Safety
    /// See [`TaskVTable::abort`].
    unsafe fn abort(ptr: NonNull<Header>) {
        // SAFETY: forwarded from the caller (live cell, task's thread, `BUSY` set).
        Self::drop_future(unsafe { Self::future(ptr) });
        // SAFETY: as above.
        let head = unsafe { Self::head(ptr) };
        head.output.set(Some(Err(TaskError::Cancelled)));
        head.header.flags.set(head.header.flags.get() | CANCELLED);
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
pub(super) fn allocate<F: Future + 'static>(
    future: F,
    id: u64,
    name: Option<Box<str>>,
    created_at: &'static Location<'static>,
) -> NonNull<Header> {
    let (flags, extra) = first_extra(name);
    let mut cell = Box::<TaskCell<F>>::new_uninit();
    let p = cell.as_mut_ptr();
    // SAFETY: `p` points to the uninitialised cell: every field is written once, in place
    // (no copy of the whole cell through the stack), before `assume_init` below.
    unsafe {
        (&raw mut (*p).head.header).write(Header {
            refs: AtomicUsize::new(1),
            queued: AtomicBool::new(false),
            flags: Cell::new(flags),
            local: Cell::new(1),
            vtable: &TaskCell::<F>::VTABLE,
            scheduler: UnsafeCell::new(None),
            slot: Cell::new(0),
            id,
            created_at,
            polls: Cell::new(0),
            awaiter: Cell::new(None),
            extra: Cell::new(extra),
        });
        (&raw mut (*p).head.output).write(Cell::new(None));
        (&raw mut (*p).future).write(UnsafeCell::new(Some(future)));
    }
    // SAFETY: every field was initialised above.
    let cell = unsafe { cell.assume_init() };
    NonNull::from(Box::leak(cell)).cast()
}
