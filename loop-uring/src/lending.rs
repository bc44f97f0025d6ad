//! When a receive in the kernel gives its buffer up (see [`IDLE_RECEIVE_AFTER`]).
//!
//! A receive goes to the kernel with its buffer (a busy connection's data comes within a
//! request, so it never hands its buffer over). Every [`IDLE_RECEIVE_AFTER`] while some
//! receive in the kernel holds a buffer it could lend, the driver cancels those sent before
//! the last such round (they have waited at least that long); a cancel that wins (the
//! receive ends `ECANCELED`, having received nothing) turns the receive into a readiness
//! poll with its buffer parked in the loop's spares ([`Ops::park_buffer`]), so an idle
//! connection holds no receive buffer. A receive whose data comes first completes as usual.
//!
//! [`Ops::park_buffer`]: loop_core::Ops::park_buffer

use std::time::{Duration, Instant};

use loop_api::IDLE_RECEIVE_AFTER;
use loop_core::OpKey;

use crate::order::{Order, Turns};

/// The lending rounds and the receives in the kernel that hold a buffer they could lend.
#[derive(Debug, Default)]
pub(crate) struct Lending {
    /// The current round.
    round: u32,
    /// When the next round begins (`None` until a receive first held a buffer).
    next: Option<Instant>,
    /// Receives in the kernel holding a buffer they could lend.
    holding: usize,
}

impl Lending {
    /// True while some receive in the kernel holds a buffer it could lend.
    #[inline]
    pub(crate) fn any_held(&self) -> bool {
        self.holding != 0
    }

    /// The receive of `turns` goes to the kernel with a buffer it could lend.
    #[inline]
    pub(crate) fn hold(&mut self, turns: &mut Turns) {
        if turns.held_since.is_none() {
            turns.held_since = Some(self.round);
            self.holding += 1;
        }
    }

    /// The receive of `turns` came back from the kernel (with its buffer): true if it had
    /// been cancelled for waiting long (see the module docs).
    #[inline]
    pub(crate) fn release(&mut self, turns: &mut Turns) -> bool {
        if turns.held_since.take().is_some() {
            self.holding = self.holding.saturating_sub(1);
        }
        std::mem::take(&mut turns.idle_cancel)
    }

    /// Some receive holds a buffer: when a round is due, puts the keys of those sent before
    /// the last round into `to_cancel` (marked as cancelled for waiting long). Gives the
    /// wait's timeout, cut to the next round, and whether it was cut.
    pub(crate) fn round(
        &mut self,
        order: &mut Order,
        to_cancel: &mut Vec<OpKey>,
        timeout: Option<Duration>,
    ) -> (Option<Duration>, bool) {
        let now = Instant::now();
        let mut next = *self.next.get_or_insert(now + IDLE_RECEIVE_AFTER);
        if now >= next {
            let round = self.round;
            for turns in order.read_turns() {
                if let (Some(since), Some(key)) = (turns.held_since, turns.current)
                    && since != round
                    && !turns.idle_cancel
                {
                    turns.idle_cancel = true;
                    to_cancel.push(key);
                }
            }
            self.round = round.wrapping_add(1);
            next = now + IDLE_RECEIVE_AFTER;
            self.next = Some(next);
        }
        let left = next - now;
        match timeout {
            Some(t) if t <= left => (Some(t), false),
            _ => (Some(left), true),
        }
    }
}
