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

    /// Lends the buffer of the op under `key` if it is still a receive waiting with one.
    pub(crate) fn lend_if_waiting(&mut self, key: OpKey) {
        if self.holds_lendable(key) {
            self.park_buffer(key);
        }
    }
}
