//! [`TimerHandle`]: a callback scheduled for a time, that can be cancelled. The callback's
//! cell, [`Handle`], is in `raw` (its one allocation is made and freed with `unsafe` code).

use std::fmt;
use std::rc::Weak;
use std::time::Instant;

pub use crate::raw::Handle;

/// Told when a timer is cancelled, so a loop can forget it (and purge it from its heap).
///
/// Loop implementations implement this on their timer queue and hand a `Weak` of it to
/// [`TimerHandle::new`], with the key they gave the timer.
pub trait TimerCancelled {
    /// The timer of `key` was cancelled (called once per timer).
    fn timer_cancelled(&self, key: u64);
}

/// A callback scheduled with `call_later`/`call_at` (asyncio's `TimerHandle`).
#[derive(Clone)]
pub struct TimerHandle {
    handle: Handle,
    when: Instant,
    key: u64,
    owner: Option<Weak<dyn TimerCancelled>>,
}

impl TimerHandle {
    /// Makes a timer handle for a callback due at `when`; `owner` is told (with `key`) when it
    /// is cancelled.
    pub fn new(
        handle: Handle,
        when: Instant,
        key: u64,
        owner: Option<Weak<dyn TimerCancelled>>,
    ) -> Self {
        TimerHandle {
            handle,
            when,
            key,
            owner,
        }
    }

    /// Cancels the timer: its callback will not run.
    pub fn cancel(&self) {
        if self.handle.cancel_first()
            && let Some(owner) = self.owner.as_ref().and_then(Weak::upgrade)
        {
            owner.timer_cancelled(self.key);
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
