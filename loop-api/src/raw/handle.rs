//! [`Handle`]: a scheduled callback that can be cancelled (what `call_soon` returns, and what a
//! [`TimerHandle`](crate::TimerHandle) holds).
//!
//! A handle owns its callback in one allocation: a two-word header (a reference count that
//! also holds the callback's state, and a pointer to the functions of the callback's type) and
//! the callback. The handle itself is one pointer, so `call_soon` costs one allocation of the
//! size a `Box<dyn FnOnce()>` would have, and a queue entry of one word.

use std::cell::Cell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// The callback has neither run nor been cancelled: it is still in the cell.
const PENDING: usize = 0;
/// The callback ran (it was moved out of the cell).
const RAN: usize = 1;
/// The callback was cancelled (it was dropped in the cell).
const CANCELLED: usize = 2;
const STATE_MASK: usize = 3;
/// One reference, counted above the two state bits.
const REF_ONE: usize = 4;

/// What is known about a callback's type, for the type-erased header.
struct VTable {
    /// Moves the callback out and calls it. The state must have been set from `PENDING`.
    run: unsafe fn(NonNull<Header>),
    /// Moves the callback out, frees the cell, then calls the callback. The state was
    /// `PENDING` and the caller gives up the last reference.
    run_and_free: unsafe fn(NonNull<Header>),
    /// Drops the callback in place. The state must have been set from `PENDING`.
    drop_callback: unsafe fn(NonNull<Header>),
    /// Frees the allocation (the callback is already gone).
    dealloc: unsafe fn(NonNull<Header>),
    /// The callback's type name.
    name: fn() -> &'static str,
}

/// The start of every callback cell. Only ever touched on the thread that made it (`Handle`
/// is neither `Send` nor `Sync`).
struct Header {
    /// `references * REF_ONE | state`.
    word: Cell<usize>,
    vtable: &'static VTable,
}

/// # Invariant
/// `callback` holds a live `F` exactly while the state in the header is `PENDING`.
#[repr(C)]
struct CallbackCell<F> {
    header: Header,
    callback: ManuallyDrop<F>,
}

impl<F: FnOnce() + 'static> CallbackCell<F> {
    const VTABLE: VTable = VTable {
        run: Self::run,
        run_and_free: Self::run_and_free,
        drop_callback: Self::drop_callback,
        dealloc: Self::dealloc,
        name: std::any::type_name::<F>,
    };

    /// # Safety
    /// `ptr` is the header of a live `CallbackCell<F>` whose state was `PENDING` and has just
    /// been changed (so this is the only move out of `callback`).
    unsafe fn run(ptr: NonNull<Header>) {
        let cell = ptr.cast::<CallbackCell<F>>();
        // SAFETY: the caller guarantees the cell is live and that `callback` holds an `F` that
        // nothing else will read or drop (its state no longer says `PENDING`).
        let f = unsafe { ManuallyDrop::take(&mut (*cell.as_ptr()).callback) };
        f();
    }

    /// # Safety
    /// `ptr` is the header of a live `CallbackCell<F>` (from `Box::leak`) whose state is
    /// `PENDING`, and the caller owns its last reference.
    unsafe fn run_and_free(ptr: NonNull<Header>) {
        // SAFETY: the caller owns the last reference to this boxed cell; `ManuallyDrop` keeps
        // the box from dropping the callback, which is moved out and called after the free.
        let cell = unsafe { Box::from_raw(ptr.cast::<CallbackCell<F>>().as_ptr()) };
        // Moving everything out of the box frees it here, before the call.
        let CallbackCell { callback, .. } = *cell;
        ManuallyDrop::into_inner(callback)();
    }

    /// # Safety
    /// As [`Self::run`].
    unsafe fn drop_callback(ptr: NonNull<Header>) {
        let cell = ptr.cast::<CallbackCell<F>>();
        // SAFETY: as in `run`: a live `F` that nothing else will read or drop.
        unsafe { ManuallyDrop::drop(&mut (*cell.as_ptr()).callback) };
    }

    /// # Safety
    /// `ptr` came from `Box::into_raw` of a `CallbackCell<F>` whose callback is gone (state not
    /// `PENDING`), and no reference to it is left.
    unsafe fn dealloc(ptr: NonNull<Header>) {
        // SAFETY: the caller guarantees the allocation is a `Box<CallbackCell<F>>` nobody
        // refers to any more; `ManuallyDrop` keeps the (gone) callback from being dropped.
        drop(unsafe { Box::from_raw(ptr.cast::<CallbackCell<F>>().as_ptr()) });
    }
}

/// A callback scheduled with `call_soon` (asyncio's `Handle`).
///
/// Cloning gives another reference to the same scheduled callback. Cancelling any clone stops the
/// callback from running if it has not run yet.
pub struct Handle {
    ptr: NonNull<Header>,
}

impl Handle {
    /// Wraps a callback; loop implementations store the handle and later call [`Handle::run`].
    #[inline]
    pub fn new<F: FnOnce() + 'static>(f: F) -> Handle {
        let cell = Box::new(CallbackCell {
            header: Header {
                word: Cell::new(REF_ONE | PENDING),
                vtable: &CallbackCell::<F>::VTABLE,
            },
            callback: ManuallyDrop::new(f),
        });
        Handle {
            ptr: NonNull::from(Box::leak(cell)).cast(),
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the handle holds a reference, so the cell (which starts with its header, as
        // `CallbackCell` is `repr(C)`) is alive for as long as `self` is borrowed.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn state(&self) -> usize {
        self.header().word.get() & STATE_MASK
    }

    /// Moves the state from `PENDING` to `to`; false if it was not pending.
    #[inline]
    fn leave_pending(&self, to: usize) -> bool {
        let word = &self.header().word;
        let w = word.get();
        if w & STATE_MASK != PENDING {
            return false;
        }
        word.set(w | to);
        true
    }

    /// Cancels the callback: it will not run. Cancelling twice, or after it ran, does nothing.
    pub fn cancel(&self) {
        self.cancel_first();
    }

    /// True once [`Handle::cancel`] was called (before the callback ran).
    #[inline]
    pub fn cancelled(&self) -> bool {
        self.state() == CANCELLED
    }

    /// True while the callback has neither run nor been cancelled.
    #[inline]
    pub fn pending(&self) -> bool {
        self.state() == PENDING
    }

    /// Runs the callback unless it was cancelled or has already run. For loop implementations.
    #[inline]
    pub fn run(&self) {
        if self.leave_pending(RAN) {
            // SAFETY: the state just left `PENDING` (this is the only run or drop of the
            // callback) and `self` keeps the cell alive during the call; a callback that drops
            // every other clone of this handle cannot free the cell under us.
            unsafe { (self.header().vtable.run)(self.ptr) };
        }
    }

    /// Like [`run`](Self::run), consuming the handle: when it is the last one (no clone is
    /// left), the cell is freed before the callback runs, with one dynamic call. For loop
    /// implementations.
    #[inline]
    pub fn run_once(self) {
        let w = self.header().word.get();
        if w == REF_ONE | PENDING {
            let this = ManuallyDrop::new(self);
            // SAFETY: the only reference (count one, which `ManuallyDrop` keeps us from giving
            // back twice) to a pending callback: the cell can be freed and the callback run.
            unsafe { (this.header().vtable.run_and_free)(this.ptr) };
        } else {
            self.run();
        }
    }

    /// What gives the callback's type name (cheap to keep while the callback runs).
    #[inline]
    pub fn name_fn(&self) -> fn() -> &'static str {
        self.header().vtable.name
    }

    /// The callback's type name (for closures, the function that made them), for reports.
    pub fn name(&self) -> &'static str {
        (self.header().vtable.name)()
    }

    /// Cancels and tells whether this call was the one that cancelled (false if already
    /// cancelled or already run).
    pub(crate) fn cancel_first(&self) -> bool {
        if !self.leave_pending(CANCELLED) {
            return false;
        }
        // asyncio drops the callback's references on cancel; so do we (it may own big captures).
        // SAFETY: the state just left `PENDING`, so this is the only drop of the callback, and
        // `self` keeps the cell alive while the callback's destructor runs.
        unsafe { (self.header().vtable.drop_callback)(self.ptr) };
        true
    }
}

impl Clone for Handle {
    #[inline]
    fn clone(&self) -> Self {
        let word = &self.header().word;
        let Some(w) = word.get().checked_add(REF_ONE) else {
            // As `Rc` does: so many clones means leaked clones; never wrap the count.
            std::process::abort();
        };
        word.set(w);
        Handle { ptr: self.ptr }
    }
}

impl Drop for Handle {
    #[inline]
    fn drop(&mut self) {
        let header = self.header();
        let w = header.word.get() - REF_ONE;
        if w >= REF_ONE {
            header.word.set(w);
            return;
        }
        // The last reference.
        let vtable = header.vtable;
        if w & STATE_MASK == PENDING {
            header.word.set(w | CANCELLED);
            // SAFETY: the state just left `PENDING` (only drop of the callback); the count
            // is zero, but nothing can reach the cell any more except through this handle, and
            // the callback's destructor cannot get a reference to it (it holds none).
            unsafe { (vtable.drop_callback)(self.ptr) };
        }
        // SAFETY: no reference is left and the callback is gone; the cell came from
        // `Box::into_raw` (`Box::leak`) in `Handle::new`.
        unsafe { (vtable.dealloc)(self.ptr) };
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("callback", &self.name())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
