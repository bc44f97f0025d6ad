//! The core's table of in-flight operations, shared by every driver.
//!
//! A slot holds the [`Op`] (and so its buffers) from submission until the driver reports its
//! completion. If the future that started it is dropped first, the slot is marked orphaned and
//! the driver is asked to cancel; the slot, and everything the kernel may still write to, is
//! freed only when the completion arrives. Results that arrive for an orphan are not lost: bytes
//! received become read-ahead for the next `sock_recv` on that socket, an accepted connection is
//! handed to the next `sock_accept` on that listener.

//!
//! A receive that has waited [`IDLE_RECEIVE_AFTER`](loop_api::IDLE_RECEIVE_AFTER) for data
//! holds no buffer: its buffer goes to the loop's spares ([`crate::spares`]) while it waits.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::task::Waker;

mod driver_api;
mod holds;
mod leftovers;
mod slots;

use leftovers::Leftovers;
use slots::Slots;

use crate::spares::Spares;
use crate::sys::file_identity;
use loop_api::Op;

/// The key of an operation in the [`Ops`] table (what a driver is told and reports back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpKey(pub usize);

/// Who is waiting for an operation.
#[derive(Debug)]
pub(crate) enum Owner {
    /// A future; woken on completion.
    Future(Option<Waker>),
    /// The future was dropped: free the slot on completion, keeping any result for the next
    /// operation on the same socket (identified by device and inode, taken when orphaned).
    Orphaned(Option<(u64, u64)>),
    /// A reader/writer watch of `add_reader`/`add_writer`; the core runs the callback.
    Watch,
}

#[derive(Debug)]
pub(crate) struct OpSlot {
    pub(crate) op: Op,
    pub(crate) owner: Owner,
    pub(crate) result: Option<io::Result<usize>>,
    /// When the result arrived, in the table's completion order (see [`Ops::complete`]).
    completed_at: u64,
    /// When it entered the table: which of two waiting ops on a socket came first.
    started_at: u64,
    /// It takes what a dropped op of its socket left, at its completion (see
    /// [`Ops::orphan`]).
    hand_over: bool,
    /// The capacity of the receive buffer parked while the op waits (0: none parked).
    parked_buffer: usize,
}

/// What [`Ops::orphan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orphaned {
    /// The op is still in flight: the driver must be asked to cancel it.
    InFlight,
    /// It had completed: what it got is kept for the next op on its socket.
    Done,
    /// It had completed, and this op (the first still waiting on the same socket) is to take
    /// what it got: the driver must cancel that one, whose completion takes it.
    HandOver(OpKey),
    /// It had completed, and nothing waits for what it got in the table: an op parked on
    /// this fd and direction (if any) is to be woken to take it.
    WakeParked(RawFd, loop_api::Direction),
}

/// Takes ownership of what a successful operation made: the connection an `Accept` accepted
/// and the file an `Open` opened go into the op, owned (closed with it if nobody takes them).
/// A `Close` that ran gives its fd up: the kernel closed it (only one cancelled before it ran,
/// `ECANCELED`, keeps it, to be closed with the op).
#[inline]
pub(crate) fn own_result(op: &mut Op, result: &io::Result<usize>) {
    // Every request's receives and sends own nothing: one test of the variant.
    if matches!(op, Op::Accept { .. } | Op::Open { .. } | Op::Close { .. }) {
        own_made_fd(op, result);
    }
}

#[inline(never)]
fn own_made_fd(op: &mut Op, result: &io::Result<usize>) {
    match (op, result) {
        (Op::Accept { conn: fd, .. } | Op::Open { file: fd, .. }, Ok(new_fd)) if fd.is_none() => {
            // SAFETY: a successful accept or open returns a new fd that nothing else owns;
            // it is taken once (the slot was empty).
            *fd = Some(unsafe { OwnedFd::from_raw_fd(*new_fd as RawFd) });
        }
        (Op::Close { file }, result) => {
            let ran = !matches!(result, Err(e) if e.raw_os_error() == Some(libc::ECANCELED));
            if ran && let Some(closed) = file.take() {
                // The number is no longer ours: forget it without closing it again.
                let _ = std::os::fd::IntoRawFd::into_raw_fd(closed);
            }
        }
        _ => {}
    }
}

/// Where a driver queues the loop's own tasks it wakes (see [`Ops::wake`]): the loop's ready
/// queue, and the scheduler its tasks are bound to (its `Arc`'s data pointer).
pub(crate) struct OwnTasks {
    pub(crate) queue: std::rc::Rc<crate::shared::LocalQueue>,
    pub(crate) scheduler: *const (),
}

impl std::fmt::Debug for OwnTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnTasks")
    }
}

/// The table of in-flight operations.
#[derive(Debug, Default)]
pub struct Ops {
    slots: Slots<OpSlot>,
    to_wake: Vec<Waker>,
    /// The loop's own tasks are queued straight onto its ready queue (`None`: a table made
    /// apart from a loop, whose wakers are woken).
    own_tasks: Option<OwnTasks>,
    fired_watches: Vec<OpKey>,
    leftovers: Leftovers,
    /// Completions reported so far: the order results arrived in. A driver reports the
    /// completions of one socket in the order the kernel delivered their data (io_uring's
    /// completion queue; the readiness driver performs them in turn), so this orders what
    /// dropped operations leave behind.
    completions: u64,
    /// Operations put in the table so far (their start order).
    starts: u64,
    /// Operations a driver parked in their futures' slots ([`Started::Parked`]): not in the
    /// table, but in flight all the same.
    ///
    /// [`Started::Parked`]: crate::Started::Parked
    parked_ops: usize,
    /// Parked receive buffers, for the next receive that needs one (see the module docs).
    spare: Spares,
    /// The real time the loop read just before the current poll of the driver (`None`: it
    /// did not, the poll does not block).
    poll_started: Option<std::time::Instant>,
}

impl Ops {
    /// A driver parked an operation (see [`parked`](Self::parked)); paired with
    /// [`note_unparked`](Self::note_unparked).
    pub fn note_parked(&mut self) {
        self.parked_ops += 1;
    }

    /// A parked operation finished or was given up.
    pub fn note_unparked(&mut self) {
        self.parked_ops = self.parked_ops.saturating_sub(1);
    }

    /// Number of parked operations.
    pub fn parked(&self) -> usize {
        self.parked_ops
    }

    /// Wakes `waker` (a parked operation's fd may be ready, an operation completed): at once
    /// when it is one of our tasks' (queuing the task runs no other code, see
    /// [`loop_api::is_loop_task_waker`]), any other once the driver returns (it might call
    /// back into the loop).
    ///
    /// A task of this loop goes straight onto the loop's ready queue, with no call to its
    /// scheduler (which would look the queue up among the thread's loops).
    ///
    /// Out of line, with the push of a waker left for later apart: our task's wake-up is
    /// then inlined into it, with no registers to save.
    #[inline(never)]
    pub fn wake(&mut self, waker: Waker) {
        let waker = match &self.own_tasks {
            Some(own) => match loop_api::wake_into(waker, own.scheduler) {
                Ok(Some(task)) => {
                    // SAFETY: the task is bound to this loop's scheduler, so it was spawned
                    // on this loop, on its thread; the table is only used on that thread
                    // (the loop is `!Send`).
                    let task = unsafe { task.into_local() };
                    own.queue.push(crate::shared::Ready::Task(task));
                    return;
                }
                Ok(None) => return,
                Err(waker) => waker,
            },
            None => waker,
        };
        if loop_api::is_loop_task_waker(&waker) {
            waker.wake();
        } else {
            self.wake_later(waker);
        }
    }

    /// Makes [`wake`](Self::wake) queue the tasks bound to `scheduler` (the loop's) onto
    /// `queue` (its ready queue) directly.
    pub(crate) fn queue_own_tasks(&mut self, own: OwnTasks) {
        self.own_tasks = Some(own);
    }

    /// [`wake`](Self::wake) of a waker that is not one of our tasks'.
    #[cold]
    #[inline(never)]
    fn wake_later(&mut self, waker: Waker) {
        self.to_wake.push(waker);
    }

    /// True when a driver called outside `poll` left wakers to wake.
    pub(crate) fn has_wakers(&self) -> bool {
        !self.to_wake.is_empty()
    }

    #[inline]
    pub(crate) fn insert(&mut self, op: Op, owner: Owner) -> OpKey {
        self.insert_slot(owner, 0, || op)
    }

    /// Puts the op `make` gives in the table, owned by `owner`, with `parked_buffer` bytes of
    /// its receive buffer parked; the op is made once its slot is known, so it is built in
    /// place rather than built and copied.
    #[inline(always)]
    fn insert_slot(
        &mut self,
        owner: Owner,
        parked_buffer: usize,
        make: impl FnOnce() -> Op,
    ) -> OpKey {
        self.starts += 1;
        let started_at = self.starts;
        OpKey(self.slots.insert_with(|| OpSlot {
            op: make(),
            owner,
            result: None,
            completed_at: 0,
            started_at,
            hand_over: false,
            parked_buffer,
        }))
    }

    /// Inserts `op`, a future's operation that has to wait for data, parking its buffer if
    /// it is a receive and `lend` (see [`park_buffer`](Self::park_buffer)): the same as an
    /// insert and a park, with one table lookup.
    #[inline]
    pub(crate) fn insert_waiting(&mut self, mut op: Op, lend: bool, waker: &Waker) -> OpKey {
        let parked = if lend { self.spare.lend(&mut op) } else { 0 };
        self.insert_slot(Owner::Future(Some(waker.clone())), parked, || op)
    }

    /// Parks the buffer of receive `key`, which is about to wait for data: the op holds none
    /// while it waits ([`unpark_buffer`](Self::unpark_buffer) gives one back before the
    /// receive is made; an op completed without a receive gets one back when its future
    /// takes it). Only an empty `Recv` buffer of at least [`PARK_MIN`](crate::PARK_MIN) bytes
    /// is parked. True if it was.
    pub fn park_buffer(&mut self, key: OpKey) -> bool {
        let Some(slot) = self.slots.get_mut(key.0) else {
            return false;
        };
        if slot.parked_buffer != 0 {
            return false;
        }
        slot.parked_buffer = self.spare.lend(&mut slot.op);
        slot.parked_buffer != 0
    }

    /// The operation under `key`, to be performed now: a receive whose buffer was parked
    /// gets one back first.
    #[inline]
    pub fn op_to_perform(&mut self, key: OpKey) -> Option<&mut Op> {
        let slot = self.slots.get_mut(key.0)?;
        if slot.parked_buffer != 0 {
            unpark(&mut self.spare, slot);
        }
        Some(&mut slot.op)
    }

    /// Lends the buffer of `op`, a receive parked in its future (see [`Started::Parked`]), to
    /// the spares while it waits: its capacity, or 0 when it keeps it (not an empty receive
    /// buffer of at least [`PARK_MIN`](crate::PARK_MIN) bytes).
    ///
    /// [`Started::Parked`]: crate::Started::Parked
    #[inline]
    pub(crate) fn lend_buffer(&mut self, op: &mut Op) -> usize {
        self.spare.lend(op)
    }

    /// The real time the loop read just before this poll of the driver, if it did (it does
    /// before every poll that may block): a driver that needs the time for its own rounds
    /// (lending idle receives' buffers) reads it here rather than from the OS again.
    pub fn poll_started(&self) -> Option<std::time::Instant> {
        self.poll_started
    }

    pub(crate) fn set_poll_started(&mut self, at: Option<std::time::Instant>) {
        self.poll_started = at;
    }

    /// Gives `op`, a parked receive that lent its buffer, one of capacity `lent` back (a
    /// spare one, or a new one); nothing when `lent` is 0.
    #[inline]
    pub(crate) fn return_buffer(&mut self, op: &mut Op, lent: usize) {
        self.spare.give_back(op, lent);
    }

    /// A round of the loop ends (the driver is about to wait for events): see the module docs.
    pub(crate) fn end_round(&mut self) {
        self.spare.end_round();
    }

    /// True while receive `key` waits with its buffer parked.
    pub fn buffer_parked(&self, key: OpKey) -> bool {
        self.slots.get(key.0).is_some_and(|s| s.parked_buffer != 0)
    }

    /// Gives receive `key` a buffer of the capacity it was started with, if its own was
    /// parked: a spare one of that capacity, or a new one.
    pub fn unpark_buffer(&mut self, key: OpKey) {
        if let Some(slot) = self.slots.get_mut(key.0) {
            unpark(&mut self.spare, slot);
        }
    }

    /// Bytes of receive buffers the table holds: those of receives in flight and the spare
    /// ones (a parked buffer counts once, as a spare). What parked ops keep in their futures
    /// is their driver's to count ([`Driver::kept_receive_bytes`](crate::Driver::kept_receive_bytes)).
    pub fn receive_buffer_bytes(&self) -> usize {
        let held: usize = self
            .slots
            .iter()
            .filter(|(_, s)| s.result.is_none())
            .map(|(_, s)| match &s.op {
                Op::Recv { buf, .. } | Op::RecvFrom { buf, .. } => buf.capacity(),
                _ => 0,
            })
            .sum();
        held + self.spare.bytes()
    }

    /// The operation under `key`, for a driver to perform or to build its request from.
    pub fn op_mut(&mut self, key: OpKey) -> Option<&mut Op> {
        self.slots.get_mut(key.0).map(|s| &mut s.op)
    }

    /// True while `key` is in the table and has no result yet.
    pub fn is_pending(&self, key: OpKey) -> bool {
        self.slots.get(key.0).is_some_and(|s| s.result.is_none())
    }

    /// True when the future that started `key` was dropped (the op only waits for its
    /// completion to be freed): a driver must not start anything more for it.
    pub fn is_orphaned(&self, key: OpKey) -> bool {
        self.slots
            .get(key.0)
            .is_some_and(|s| matches!(s.owner, Owner::Orphaned(_)))
    }

    /// Number of operations in the table (in flight or completed but not yet collected).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no operation is in the table and none is parked.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.parked_ops == 0
    }

    /// Number of operations a future is waiting for (not the reader/writer watches).
    pub fn pending_futures(&self) -> usize {
        let in_table = self
            .slots
            .iter()
            .filter(|(_, s)| s.result.is_none() && matches!(s.owner, Owner::Future(_)))
            .count();
        in_table + self.parked_ops
    }

    /// Keys of every operation still waiting for its completion.
    pub fn pending_keys(&self) -> Vec<OpKey> {
        self.slots
            .iter()
            .filter(|(_, s)| s.result.is_none())
            .map(|(k, _)| OpKey(k))
            .collect()
    }

    /// A driver reports that operation `key` finished with `result`.
    ///
    /// The waiting future is woken (see [`wake`](Self::wake)); an orphan's slot is freed now.
    /// Inlined: a driver's completion loop calls it for every operation (the rare cases are
    /// out of line, in `complete_rest`).
    #[inline(always)]
    pub fn complete(&mut self, key: OpKey, result: io::Result<usize>) {
        let Some(slot) = self.slots.get_mut(key.0) else {
            return;
        };
        self.completions += 1;
        slot.completed_at = self.completions;
        own_result(&mut slot.op, &result);
        match &mut slot.owner {
            // The common case: a future waits for it.
            Owner::Future(waker) if !slot.hand_over => {
                slot.result = Some(result);
                if let Some(w) = waker.take() {
                    self.wake(w);
                }
            }
            _ => self.complete_rest(key, result),
        }
    }

    /// [`complete`](Self::complete) of a watch, of an orphan, or of an op that takes what a
    /// dropped op left (its slot's completion order and made fd are set).
    #[inline(never)]
    fn complete_rest(&mut self, key: OpKey, result: io::Result<usize>) {
        let Some(slot) = self.slots.get(key.0) else {
            return;
        };
        let result = if slot.hand_over {
            self.take_handed_over(key, result)
        } else {
            result
        };
        let Some(slot) = self.slots.get_mut(key.0) else {
            return;
        };
        match &mut slot.owner {
            Owner::Future(waker) => {
                slot.result = Some(result);
                if let Some(w) = waker.take() {
                    self.wake(w);
                }
            }
            Owner::Watch => {
                slot.result = Some(result);
                self.fired_watches.push(key);
            }
            Owner::Orphaned(identity) => {
                let identity = *identity;
                let Some(slot) = self.slots.try_remove(key.0) else {
                    return;
                };
                self.keep_leftover(slot.op, result, identity, slot.completed_at);
            }
        }
    }

    /// Makes `waker` the one woken when operation `key` (a future's) completes; a driver that
    /// answers [`Started::InFlight`](crate::Started::InFlight) has done it (or inserted the op
    /// with it).
    pub fn set_waker(&mut self, key: OpKey, waker: &Waker) {
        if let Some(OpSlot {
            owner: Owner::Future(w),
            ..
        }) = self.slots.get_mut(key.0)
        {
            match w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        }
    }

    /// Takes a completed operation out of the table.
    #[inline]
    pub(crate) fn take_completed(&mut self, key: OpKey) -> Option<(io::Result<usize>, Op)> {
        let done = self.slots.get(key.0)?;
        done.result.as_ref()?;
        if done.parked_buffer != 0 {
            return self.take_completed_parked(key);
        }
        let slot = self.slots.remove(key.0);
        slot.result.map(|r| (r, slot.op))
    }

    /// [`take_completed`](Self::take_completed) of a receive that ended without receiving
    /// (cancelled, failed): its future gets a buffer back, only now (a loop closing with idle
    /// receives allocates nothing for them).
    #[cold]
    #[inline(never)]
    fn take_completed_parked(&mut self, key: OpKey) -> Option<(io::Result<usize>, Op)> {
        let mut slot = self.slots.try_remove(key.0)?;
        unpark(&mut self.spare, &mut slot);
        slot.result.map(|r| (r, slot.op))
    }

    /// Takes an operation out whatever its state (a driver that cancels synchronously).
    pub(crate) fn remove(&mut self, key: OpKey) -> Option<Op> {
        let mut slot = self.slots.try_remove(key.0)?;
        if slot.parked_buffer != 0 {
            unpark(&mut self.spare, &mut slot);
        }
        Some(slot.op)
    }

    /// The future of `key` was dropped. An op still in flight is marked so its completion
    /// frees it; a completed op's result is kept as a leftover, handed to the first op
    /// waiting on the same socket if there is one (it would otherwise wait for newer data
    /// and get it first).
    pub(crate) fn orphan(&mut self, key: OpKey) -> Orphaned {
        let Some(slot) = self.slots.get_mut(key.0) else {
            return Orphaned::Done;
        };
        // Only a socket's received bytes or accepted connection are worth keeping.
        let identity = match slot.op {
            Op::Recv { fd, .. } | Op::Accept { fd, .. } | Op::RecvFrom { fd, .. } => {
                file_identity(fd)
            }
            _ => None,
        };
        if slot.result.is_none() {
            slot.owner = Owner::Orphaned(identity);
            return Orphaned::InFlight;
        }
        let slot = self.slots.remove(key.0);
        let (fd, dir, kind) = (
            slot.op.fd(),
            slot.op.direction(),
            std::mem::discriminant(&slot.op),
        );
        let Some(result) = slot.result else {
            return Orphaned::Done;
        };
        if !self.keep_leftover(slot.op, result, identity, slot.completed_at) {
            return Orphaned::Done;
        }
        let waiting = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.result.is_none()
                    && matches!(s.owner, Owner::Future(_))
                    && s.op.fd() == fd
                    && std::mem::discriminant(&s.op) == kind
            })
            .min_by_key(|(_, s)| s.started_at)
            .map(|(k, _)| k);
        match waiting {
            Some(k) => {
                if let Some(slot) = self.slots.get_mut(k) {
                    slot.hand_over = true;
                }
                Orphaned::HandOver(OpKey(k))
            }
            None => Orphaned::WakeParked(fd, dir),
        }
    }

    pub(crate) fn drain_wakers(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.to_wake);
    }

    pub(crate) fn drain_fired_watches(&mut self, out: &mut Vec<OpKey>) {
        out.append(&mut self.fired_watches);
    }

    /// Forgets (leaks) every operation still in flight: for a driver that could not get their
    /// completions at shutdown, so memory the kernel may still write to is never freed.
    pub fn forget_pending(&mut self) {
        for key in self.pending_keys() {
            if let Some(slot) = self.slots.try_remove(key.0) {
                std::mem::forget(slot.op);
            }
        }
    }

    /// Drops everything (the loop is closing; the driver has drained its in-flight ops).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.to_wake.clear();
        self.fired_watches.clear();
        self.leftovers = Leftovers::default();
        self.parked_ops = 0;
        self.spare = Spares::default();
    }
}

/// Gives `slot`'s receive a buffer of its parked capacity: a spare one, or a new one.
#[inline]
fn unpark(spare: &mut Spares, slot: &mut OpSlot) {
    spare.give_back(&mut slot.op, std::mem::take(&mut slot.parked_buffer));
}
