//! When a receive in the kernel gives its buffer up (see [`IDLE_RECEIVE_AFTER`]).
//!
//! A receive goes to the kernel with its buffer (a busy connection's data comes within a
//! request, so it never hands its buffer over). In the lending rounds ([`LendingRounds`],
//! one every [`IDLE_RECEIVE_AFTER`] while some receive in the kernel holds a buffer it could
//! lend), the driver cancels those sent in an earlier round (they have waited at least that
//! long); a cancel that wins (the receive ends `ECANCELED`, having received nothing) turns the
//! receive into a readiness poll with its buffer parked in the loop's spares
//! ([`Ops::park_buffer`]), so an idle connection holds no receive buffer. A receive whose
//! data comes first completes as usual.
//!
//! [`IDLE_RECEIVE_AFTER`]: loop_api::IDLE_RECEIVE_AFTER
//! [`Ops::park_buffer`]: loop_core::Ops::park_buffer

use std::time::Duration;

use loop_core::{LendingRounds, OpKey, Ops};

use crate::order::{Order, Turns};

/// The receives in the kernel that hold a buffer they could lend, and the lending rounds.
#[derive(Debug, Default)]
pub(crate) struct Lending {
    /// The rounds (shared with the readiness driver's lending).
    rounds: LendingRounds,
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
            turns.held_since = Some(self.rounds.current());
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

    /// Some receive holds a buffer: when a round ends, puts the keys of those sent in an
    /// earlier round into `to_cancel` (marked as cancelled for waiting long). Gives the wait's
    /// timeout, cut to the next round.
    pub(crate) fn round(
        &mut self,
        ops: &Ops,
        order: &mut Order,
        to_cancel: &mut Vec<OpKey>,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        let check = self.rounds.before_wait(ops.poll_started(), timeout);
        if let Some(ended) = check.ended {
            for turns in order.read_turns() {
                if let (Some(since), Some(key)) = (turns.held_since, turns.current)
                    && since != ended
                    && !turns.idle_cancel
                {
                    turns.idle_cancel = true;
                    to_cancel.push(key);
                }
            }
        }
        check.timeout
    }
}
