//! [`Handle`] and [`TimerHandle`]: a scheduled callback that can be cancelled.
//!
//! A handle owns its callback in one allocation (`Rc<CallbackCell<F>>`), so `call_soon` costs one
//! allocation, like pushing a `Box<dyn FnOnce()>` onto a queue.

use std::cell::Cell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Instant;

/// The type-erased part of a handle: a callback that runs at most once.
trait ScheduledCallback {
    fn run(&self);
    fn cancel(&self) -> bool;
    fn cancelled(&self) -> bool;
    fn name(&self) -> &'static str;
}

struct CallbackCell<F> {
    cancelled: Cell<bool>,
    callback: Cell<Option<F>>,
}

impl<F: FnOnce() + 'static> ScheduledCallback for CallbackCell<F> {
    fn run(&self) {
        if let Some(f) = self.callback.take() {
            f();
        }
    }

    fn cancel(&self) -> bool {
        if self.cancelled.replace(true) {
            return false;
        }
        // asyncio drops the callback's references on cancel; so do we (it may own big captures).
        drop(self.callback.take());
        true
    }

    fn cancelled(&self) -> bool {
        self.cancelled.get()
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// A callback scheduled with `call_soon` (asyncio's `Handle`).
///
/// Cloning gives another reference to the same scheduled callback. Cancelling any clone stops the
/// callback from running if it has not run yet.
#[derive(Clone)]
pub struct Handle {
    inner: Rc<dyn ScheduledCallback>,
}

impl Handle {
    /// Wraps a callback; loop implementations store the handle and later call [`Handle::run`].
    pub fn new(f: impl FnOnce() + 'static) -> Handle {
        Handle {
            inner: Rc::new(CallbackCell {
                cancelled: Cell::new(false),
                callback: Cell::new(Some(f)),
            }),
        }
    }

    /// Cancels the callback: it will not run. Cancelling twice, or after it ran, does nothing.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// True once [`Handle::cancel`] was called.
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }

    /// Runs the callback unless it was cancelled or has already run. For loop implementations.
    pub fn run(&self) {
        self.inner.run();
    }

    /// The callback's type name (for closures, the function that made them), for reports.
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Cancels and tells whether this call was the one that cancelled (false if already cancelled).
    fn cancel_first(&self) -> bool {
        self.inner.cancel()
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

/// Told when a timer is cancelled, so a loop can purge cancelled timers from its heap.
///
/// Loop implementations implement this on their shared state and hand a `Weak` of it to
/// [`TimerHandle::new`].
pub trait TimerCancelled {
    /// The timer due at `when` was cancelled (called once per timer).
    fn timer_cancelled(&self, when: Instant);
}

/// A callback scheduled with `call_later`/`call_at` (asyncio's `TimerHandle`).
#[derive(Clone)]
pub struct TimerHandle {
    handle: Handle,
    when: Instant,
    owner: Option<Weak<dyn TimerCancelled>>,
}

impl TimerHandle {
    /// Makes a timer handle for a callback due at `when`; `owner` is told when it is cancelled.
    pub fn new(handle: Handle, when: Instant, owner: Option<Weak<dyn TimerCancelled>>) -> Self {
        TimerHandle {
            handle,
            when,
            owner,
        }
    }

    /// Cancels the timer: its callback will not run.
    pub fn cancel(&self) {
        if self.handle.cancel_first()
            && let Some(owner) = self.owner.as_ref().and_then(Weak::upgrade)
        {
            owner.timer_cancelled(self.when);
        }
    }

    /// True once the timer was cancelled.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// When the timer is due, on the loop's clock.
    pub fn when(&self) -> Instant {
        self.when
    }

    /// The plain handle inside (what the loop runs when the timer is due).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerHandle")
            .field("callback", &self.handle.name())
            .field("when", &self.when)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}
