//! Receives in the table that keep their buffer while they wait (those of a connection in
//! use, see [`IDLE_RECEIVE_AFTER`](loop_api::IDLE_RECEIVE_AFTER)) until a lending round of
//! their driver finds they waited long.

use super::{OpKey, Ops};
use loop_api::Op;

impl Ops {
    /// True when the op under `key` is a receive that waits (no result yet) holding an empty
    /// buffer it could lend (at least [`PARK_MIN`](crate::PARK_MIN) bytes).
    pub(crate) fn holds_lendable(&self, key: OpKey) -> bool {
        self.slots.get(key.0).is_some_and(|slot| {
            slot.result.is_none()
                && slot.parked_buffer == 0
                && matches!(&slot.op, Op::Recv { buf, .. }
                    if buf.is_empty() && buf.capacity() >= crate::PARK_MIN)
        })
    }

    /// A receive in the table begins (`true`) or stops keeping a buffer it could lend:
    /// counted in [`holding`](Self::holding), which keeps the driver's lending rounds going.
    pub(crate) fn note_holding(&mut self, on: bool) {
        if on {
            self.holding += 1;
        } else {
            self.holding = self.holding.saturating_sub(1);
        }
    }

    /// Lends the buffer of the op under `key` if it is still a receive waiting with one.
    pub(crate) fn lend_if_waiting(&mut self, key: OpKey) {
        if self.holds_lendable(key) {
            self.park_buffer(key);
        }
    }
}
