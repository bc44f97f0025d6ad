//! The parts of [`Ops`] a completion driver uses on its hot path: an op with its state in one
//! lookup, its request built under the key it gets before it enters the table, the default
//! start.

use std::io;
use std::task::Waker;

use super::{OpKey, Ops, Owner};
use crate::Started;
use loop_api::Op;

impl Ops {
    /// The operation under `key`, whether its receive buffer is parked
    /// ([`buffer_parked`](Self::buffer_parked)) and whether its future was dropped
    /// ([`is_orphaned`](Self::is_orphaned)): one lookup for a completion driver's hot path.
    #[inline]
    pub fn op_state(&mut self, key: OpKey) -> Option<(&mut Op, bool, bool)> {
        let slot = self.slots.get_mut(key.0)?;
        let orphaned = matches!(slot.owner, Owner::Orphaned(_));
        Some((&mut slot.op, slot.parked_buffer != 0, orphaned))
    }

    /// The key the next operation put in the table gets (a driver may build the request of
    /// an op under it, then [`insert_for_future`](Self::insert_for_future) it).
    #[inline]
    pub fn vacant_key(&self) -> OpKey {
        OpKey(self.slots.vacant_key())
    }

    /// Puts the op in `slot`, the operation of a future that awaits it, in the table (in
    /// flight: the driver reports its completion); gives its key (`None`: `slot` is empty).
    /// The waker is cloned first, so the op moves from `slot` straight into the table.
    #[inline]
    pub fn insert_for_future(&mut self, slot: &mut Option<Op>, waker: &Waker) -> Option<OpKey> {
        let owner = Owner::Future(Some(waker.clone()));
        slot.as_ref()?;
        let op = || slot.take().unwrap_or_else(|| unreachable!("checked above"));
        Some(self.insert_slot(owner, 0, op))
    }

    /// What [`Driver::start`](crate::Driver::start) does by default, for a driver that
    /// starts some ops its own way and the others so: puts the op in `slot` in the table,
    /// hands its key to `submit`, and gives it back with its result when it finished at once
    /// or could not be started.
    pub fn start_in_table(
        &mut self,
        slot: &mut Option<Op>,
        waker: &Waker,
        submit: impl FnOnce(&mut Ops, OpKey) -> io::Result<()>,
    ) -> Started {
        let Some(op) = slot.take() else {
            return Started::Done(Err(io::Error::other("no operation to start")));
        };
        // Its waker only once it did not finish at once (that would wake it for nothing).
        let key = self.insert(op, Owner::Future(None));
        if let Err(e) = submit(self, key) {
            *slot = self.remove(key);
            return Started::Done(Err(e));
        }
        match self.take_completed(key) {
            Some((res, op)) => {
                *slot = Some(op);
                Started::Done(res)
            }
            None => {
                self.set_waker(key, waker);
                Started::InFlight(key)
            }
        }
    }
}
