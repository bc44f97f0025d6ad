//! [`ReadinessDriver`]: a [`Driver`] over any readiness [`Selector`], written once for all of
//! them. It performs each operation as a non-blocking syscall; on `WouldBlock` it queues the
//! operation on its fd and retries it when the selector reports readiness.
//!
//! Fds stay registered (edge-triggered) once seen: a busy socket costs no `epoll_ctl` while ops
//! complete at once. When an op has to wait on an fd with no other waiter in that direction,
//! the fd is re-armed (`reregister`, which re-evaluates readiness), falling back to `register`
//! when the selector answers [`Registration::NotRegistered`] (a new fd, or a closed fd whose
//! number was reused), and the other way round on [`Registration::AlreadyRegistered`].
//!
//! Everything only a readiness driver needs lives here, not in the [`Driver`] trait: keeping a
//! registered socket ([`Driver::register_socket`]) armed for good with a readiness cache, and
//! making a listener non-blocking before `accept(2)` (once for a registered socket, every time
//! for a borrowed one, which may be another socket than last time).

use std::io;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::driver::{Driver, DriverWaker, ParkKey, Registration, Selector, Started};
use crate::ops::{OpKey, Ops};
use crate::spares::LendingRounds;
use crate::sys::is_stream_socket;
use loop_api::{Direction, Op};

mod fds;

use fds::{
    FdEntry, FdTable, ParkTag, is_would_block, lend_parked_buffer, park_in, park_parts,
    take_lent_buffer,
};

/// A [`Driver`] for any readiness [`Selector`] (mio, polling, ...).
pub struct ReadinessDriver<S: Selector> {
    selector: S,
    fds: FdTable,
    /// The fds of a one-shot selector to re-arm after the events of a poll (scratch).
    rearm: Vec<RawFd>,
    waker: DriverWaker,
    /// The generation of the last parked op (31 bits, wrapping).
    generation: u32,
    /// Parked ops whose socket was released while they had lent their buffer: generation and
    /// capacity, until their future polls (and gets a buffer back) or is dropped.
    released: Vec<(u32, usize)>,
    lending: LendingRounds,
    /// A parked receive may keep a buffer it could lend: set when one parks (or gets its
    /// buffer back) keeping one, worked out again when a lending round ends.
    parks_hold: bool,
    /// Receives in the table keeping their buffer while they wait (a connection in use), and
    /// the lending round each began in.
    table_holds: Vec<(OpKey, u32)>,
}

/// The receives in the table that keep their buffer while they wait (the driver's
/// `table_holds`), with the current lending round.
struct TableHolds<'a> {
    held: &'a mut Vec<(OpKey, u32)>,
    round: u32,
}

impl<'a> TableHolds<'a> {
    fn new(held: &'a mut Vec<(OpKey, u32)>, lending: &LendingRounds) -> Self {
        TableHolds {
            held,
            round: lending.current(),
        }
    }

    /// Receive `key`, in the table, has to wait on `entry`'s fd: a new connection's lends its
    /// buffer at once, one of a connection in use keeps it until a lending round.
    fn wait(&mut self, entry: &FdEntry, ops: &mut Ops, key: OpKey) {
        if entry.received && ops.holds_lendable(key) {
            self.hold(key);
        } else {
            ops.park_buffer(key);
        }
    }

    /// Receive `key` keeps its buffer from this round on.
    fn hold(&mut self, key: OpKey) {
        self.held.push((key, self.round));
    }

    /// The lending round `ended` ended: the receives that began to keep their buffer in an
    /// earlier one lend it if they still wait (an entry of an op that finished meanwhile is
    /// just dropped).
    fn lend(&mut self, ops: &mut Ops, ended: u32) {
        self.held.retain(|&(key, since)| {
            if since == ended {
                return true;
            }
            ops.lend_if_waiting(key);
            false
        });
    }
}

impl<S: Selector> std::fmt::Debug for ReadinessDriver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadinessDriver")
            .field("selector", &self.selector.name())
            .field("fds", &self.fds.len())
            .finish()
    }
}

fn cancelled() -> io::Error {
    io::Error::from_raw_os_error(libc::ECANCELED)
}

impl<S: Selector> ReadinessDriver<S> {
    /// Wraps a selector.
    pub fn new(selector: S) -> Self {
        let waker = selector.waker();
        ReadinessDriver {
            selector,
            fds: FdTable::default(),
            rearm: Vec::new(),
            waker,
            generation: 0,
            released: Vec::new(),
            lending: LendingRounds::default(),
            parks_hold: false,
            table_holds: Vec::new(),
        }
    }

    /// The selector inside.
    pub fn selector(&self) -> &S {
        &self.selector
    }

    /// The receives in the table that keep their buffer (see [`TableHolds`]).
    fn holds(&mut self) -> TableHolds<'_> {
        TableHolds::new(&mut self.table_holds, &self.lending)
    }

    /// Registers or re-arms `fd` for what its waiters need.
    fn arm(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.fds.get_mut(fd) else {
            return Ok(());
        };
        let interest = entry.interest();
        if interest.is_empty() {
            return Ok(());
        }
        let token = fd as usize;
        let sel = &mut self.selector;
        let answer = if entry.socket {
            match sel.reregister_socket(fd, token) {
                Registration::NotRegistered => sel.register_socket(fd, token),
                other => other,
            }
        } else if entry.in_selector {
            match sel.reregister(fd, token, interest) {
                Registration::NotRegistered => sel.register(fd, token, interest),
                other => other,
            }
        } else {
            match sel.register(fd, token, interest) {
                Registration::AlreadyRegistered => sel.reregister(fd, token, interest),
                other => other,
            }
        };
        let res = answer.into_result();
        entry.in_selector = res.is_ok();
        res
    }

    /// `accept(2)` on a blocking listener would block the loop: makes it non-blocking (once
    /// for a registered socket, which stays the same socket until released; every time for
    /// a borrowed one, which may be another socket than last time).
    fn make_listener_nonblocking(&mut self, fd: RawFd) -> io::Result<()> {
        match self.fds.get_mut(fd) {
            Some(entry) if entry.socket => {
                if !entry.nonblocking {
                    crate::sys::set_nonblocking(fd)?;
                    entry.nonblocking = true;
                }
                Ok(())
            }
            _ => crate::sys::set_nonblocking(fd),
        }
    }

    /// Completes every op waiting on `fd` with `err` (the fd can no longer be watched).
    fn fail_waiters(&mut self, ops: &mut Ops, fd: RawFd, err: &io::Error) {
        if let Some(entry) = self.fds.get_mut(fd) {
            for key in entry.readers.drain(..).chain(entry.writers.drain(..)) {
                let e = io::Error::new(err.kind(), err.to_string());
                ops.complete(key, Err(e));
            }
        }
    }

    /// Before a wait of at most `timeout`, while receives keep buffers they could lend: ends
    /// the lending round if it is due (those that waited long lend theirs); gives the
    /// timeout, cut to the next round.
    fn lending_round(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> Option<Duration> {
        let check = self.lending.before_wait(ops.poll_started(), timeout);
        if let Some(ended) = check.ended {
            self.lend_idle_buffers(ops, ended);
            self.holds().lend(ops, ended);
        }
        check.timeout
    }

    /// The lending round `ended` (see [`LendingRounds`]): the receives parked in another
    /// round than it, holding a buffer they could lend, are to lend it (their tasks are
    /// woken; the buffer is lent when the future polls). Notes whether any parked receive
    /// still holds one (it parked in the round that ended).
    fn lend_idle_buffers(&mut self, ops: &mut Ops, ended: u32) {
        let mut still = false;
        for entry in &mut self.fds.entries {
            let Some(parked) = entry.parked_mut(Direction::Read) else {
                continue;
            };
            if parked.kept < crate::PARK_MIN || parked.lend {
                continue;
            }
            if parked.round == ended {
                still = true;
                continue;
            }
            parked.lend = true;
            if let Some(waker) = parked.waker.take() {
                ops.wake(waker);
            }
        }
        self.parks_hold = still;
    }

    /// Readiness in direction `dir` was reported for `entry`'s fd: the parked op's task is
    /// woken (it goes first), else the queued ops are retried.
    fn retry(entry: &mut FdEntry, ops: &mut Ops, dir: Direction, holds: &mut TableHolds<'_>) {
        entry.set_ready(dir, true);
        if let Some(parked) = entry.parked_mut(dir) {
            if let Some(waker) = parked.waker.take() {
                ops.wake(waker);
            }
            return;
        }
        if !entry.queue(dir).is_empty() {
            Self::run_queue(entry, ops, dir, holds);
        }
    }

    /// Retries the ops queued on an fd in direction `dir`, in order, until one would block
    /// (or a short read shows the fd drained).
    fn run_queue(entry: &mut FdEntry, ops: &mut Ops, dir: Direction, holds: &mut TableHolds<'_>) {
        while let Some(&key) = entry.queue(dir).front() {
            // A receive's buffer was parked while it waited: it gets one back only now.
            let Some(op) = ops.op_to_perform(key) else {
                entry.queue(dir).pop_front();
                continue;
            };
            let res = entry.perform(op, dir, true);
            if is_would_block(&res) {
                holds.wait(entry, ops, key);
                break;
            }
            entry.queue(dir).pop_front();
            ops.complete(key, res);
            if !entry.may_be_ready(dir) {
                break;
            }
        }
    }

    /// Parks `op` (which has to wait) in its caller's slot, when it is alone on a registered
    /// socket armed for good in its direction: no table entry, and its task performs it once
    /// woken. `None`: it has to wait in the queue instead.
    fn park(
        &mut self,
        ops: &mut Ops,
        op: &mut Op,
        fd: RawFd,
        dir: Direction,
        waker: &Waker,
    ) -> Option<ParkKey> {
        let parkable = !op.is_watch() && !matches!(op, Op::Connect { .. });
        let entry = self.fds.get_mut(fd)?;
        if !(parkable && entry.armed_for_good() && entry.idle(dir)) {
            return None;
        }
        let tag = ParkTag::next(&mut self.generation, &self.lending);
        let (key, holds) = park_in(entry, tag, ops, op, fd, dir, waker);
        self.parks_hold |= holds;
        Some(key)
    }

    /// The short path of [`Driver::start`]: a receive or send on a registered socket with
    /// nothing waiting before it (every request's): tried at once if the socket may be ready,
    /// else parked. `None`: any other op, or one that has to queue (the general path).
    #[inline]
    fn start_on_socket(
        &mut self,
        ops: &mut Ops,
        slot: &mut Option<Op>,
        waker: &Waker,
    ) -> Option<Started> {
        let op = slot.as_mut()?;
        let (fd, dir) = match op {
            Op::Recv { fd, .. } => (*fd, Direction::Read),
            Op::Send { fd, .. } => (*fd, Direction::Write),
            _ => return None,
        };
        let entry = self.fds.get_mut(fd)?;
        if !(entry.armed_for_good() && entry.idle(dir)) {
            return None;
        }
        if entry.may_be_ready(dir) {
            let res = entry.perform(op, dir, false);
            if !is_would_block(&res) {
                return Some(Started::Done(res));
            }
        }
        let tag = ParkTag::next(&mut self.generation, &self.lending);
        let (key, holds) = park_in(entry, tag, ops, op, fd, dir, waker);
        self.parks_hold |= holds;
        Some(Started::Parked(key))
    }

    /// Queues op `key` on its fd (it has to wait) and arms the fd if needed. On error the op
    /// is not queued.
    fn wait_for_readiness(
        &mut self,
        key: OpKey,
        fd: RawFd,
        dir: Direction,
        is_watch: bool,
    ) -> io::Result<()> {
        let entry = self.fds.entry(fd);
        let armed_for_good = entry.socket && entry.in_selector;
        let queue = entry.queue(dir);
        let was_empty = queue.is_empty();
        queue.push_back(key);
        if ((was_empty && !armed_for_good) || is_watch)
            && let Err(e) = self.arm(fd)
        {
            if let Some(entry) = self.fds.get_mut(fd) {
                entry.queue(dir).retain(|k| *k != key);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Tries `op` at once if nothing waits before it on its fd and direction and the fd may
    /// be ready. `None`: it has to wait (it may have been tried and would block).
    fn try_now(&mut self, op: &mut Op, fd: RawFd, dir: Direction) -> Option<io::Result<usize>> {
        let entry = self.fds.entry(fd);
        if !entry.may_try_now(dir) {
            return None;
        }
        let res = entry.perform(op, dir, false);
        (!is_would_block(&res)).then_some(res)
    }
}

impl<S: Selector> Driver for ReadinessDriver<S> {
    fn name(&self) -> &'static str {
        self.selector.name()
    }

    fn submit(&mut self, ops: &mut Ops, key: OpKey) -> io::Result<()> {
        let Some(op) = ops.op_mut(key) else {
            return Ok(());
        };
        let fd = op.fd();
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if matches!(op, Op::Accept { .. }) {
            self.make_listener_nonblocking(fd)?;
        }
        let dir = op.direction();
        let is_watch = op.is_watch();
        if let Some(res) = self.try_now(op, fd, dir) {
            ops.complete(key, res);
            return Ok(());
        }
        self.wait_for_readiness(key, fd, dir, is_watch)
    }

    fn start(&mut self, ops: &mut Ops, slot: &mut Option<Op>, waker: &Waker) -> Started {
        if let Some(started) = self.start_on_socket(ops, slot, waker) {
            return started;
        }
        let Some(op) = slot.as_mut() else {
            return Started::Done(Err(io::Error::other("no operation to start")));
        };
        let fd = op.fd();
        if fd < 0 {
            return Started::Done(Err(io::Error::from_raw_os_error(libc::EBADF)));
        }
        if matches!(op, Op::Accept { .. })
            && let Err(e) = self.make_listener_nonblocking(fd)
        {
            return Started::Done(Err(e));
        }
        let dir = op.direction();
        let is_watch = op.is_watch();
        // The common case: the syscall succeeds at once and the op never leaves the slot.
        if let Some(res) = self.try_now(op, fd, dir) {
            return Started::Done(res);
        }
        if let Some(key) = self.park(ops, op, fd, dir, waker) {
            return Started::Parked(key);
        }
        let Some(op) = slot.take() else {
            unreachable!("the slot held the op just above")
        };
        // Nothing to read yet: a new connection's receive waits without its buffer, one of a
        // connection in use keeps it until a lending round finds it waited long.
        let received = self.fds.get_mut(fd).is_some_and(|e| e.received);
        let key = ops.insert_waiting(op, !received, waker);
        if received && ops.holds_lendable(key) {
            self.holds().hold(key);
        }
        match self.wait_for_readiness(key, fd, dir, is_watch) {
            Ok(()) => Started::InFlight(key),
            Err(e) => {
                *slot = ops.remove(key);
                Started::Done(Err(e))
            }
        }
    }

    fn try_send(&mut self, fd: RawFd, src: &[u8]) -> Option<io::Result<usize>> {
        let entry = self.fds.get_mut(fd)?;
        if !(entry.armed_for_good() && entry.may_try_now(Direction::Write)) {
            return None;
        }
        let res = entry.send(fd, src);
        (!is_would_block(&res)).then_some(res)
    }

    fn kept_receive_bytes(&self) -> usize {
        let parked = self
            .fds
            .entries
            .iter()
            .flat_map(|e| e.parked.iter().flatten());
        parked.map(|p| p.kept).sum()
    }

    fn poll_parked(
        &mut self,
        ops: &mut Ops,
        key: ParkKey,
        slot: &mut Option<Op>,
        waker: &Waker,
    ) -> Poll<io::Result<usize>> {
        let (fd, dir, generation) = park_parts(key);
        let Some(op) = slot.as_mut() else {
            return Poll::Ready(Err(io::Error::other("poll_parked: no operation given")));
        };
        let Some(entry) = self.fds.get_mut(fd).filter(|e| e.parks(dir, generation)) else {
            // The socket was released (and maybe registered again) while the op was parked.
            if let Some(i) = self.released.iter().position(|(g, _)| *g == generation) {
                let (_, lent) = self.released.swap_remove(i);
                ops.return_buffer(op, lent);
            }
            return Poll::Ready(Err(cancelled()));
        };
        let leftovers = ops.has_leftovers();
        if leftovers || entry.may_be_ready(dir) {
            if let Some(parked) = entry.parked_mut(dir)
                && parked.lent != 0
            {
                take_lent_buffer(parked, ops, op);
                self.parks_hold = true;
            }
            // What a dropped op of the socket left comes before anything newer (and says
            // nothing of the socket's readiness).
            let left = if leftovers {
                ops.take_leftover(op)
            } else {
                None
            };
            let res = match left {
                Some(n) => Ok(n),
                None => entry.perform(op, dir, true),
            };
            if !is_would_block(&res) {
                entry.end_park(dir, ops);
                if entry.may_be_ready(dir) && !entry.queue(dir).is_empty() {
                    let mut holds = TableHolds::new(&mut self.table_holds, &self.lending);
                    Self::run_queue(entry, ops, dir, &mut holds);
                }
                return Poll::Ready(res);
            }
        }
        // Still waiting (without its buffer); the newest waker is the one to wake.
        if let Some(parked) = entry.parked_mut(dir) {
            if std::mem::take(&mut parked.lend) {
                lend_parked_buffer(parked, ops, op);
            }
            match &parked.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => parked.waker = Some(waker.clone()),
            }
        }
        Poll::Pending
    }

    fn unpark(&mut self, ops: &mut Ops, key: ParkKey) {
        let (fd, dir, generation) = park_parts(key);
        let Some(entry) = self.fds.get_mut(fd).filter(|e| e.parks(dir, generation)) else {
            // Its socket was released while it was parked.
            self.released.retain(|(g, _)| *g != generation);
            return;
        };
        entry.end_park(dir, ops);
        // The readiness it was woken for, if any, goes to the ops queued behind it.
        if entry.may_be_ready(dir) {
            let mut holds = TableHolds::new(&mut self.table_holds, &self.lending);
            Self::run_queue(entry, ops, dir, &mut holds);
        }
    }

    fn wake_parked(&mut self, ops: &mut Ops, fd: RawFd, dir: Direction) {
        let parked = self
            .fds
            .get_mut(fd)
            .and_then(|e| e.parked_mut(dir).as_mut());
        if let Some(waker) = parked.and_then(|p| p.waker.take()) {
            ops.wake(waker);
        }
    }

    fn register_socket(&mut self, fd: RawFd) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let token = fd as usize;
        let answer = match self.selector.register_socket(fd, token) {
            Registration::AlreadyRegistered => self.selector.reregister_socket(fd, token),
            other => other,
        };
        if let Registration::Unsupported = answer {
            // No edge mode (poll(2)): a one-shot registration is re-armed per operation.
            return Ok(());
        }
        answer.into_result()?;
        let stream = self.selector.reports_read_closed() && is_stream_socket(fd);
        let entry = self.fds.entry(fd);
        // A fresh entry (registering reports what is ready now: until then, assume anything
        // may be), keeping the ops already waiting on the fd.
        *entry = FdEntry {
            parked: std::mem::take(&mut entry.parked),
            readers: std::mem::take(&mut entry.readers),
            writers: std::mem::take(&mut entry.writers),
            in_selector: true,
            socket: true,
            stream,
            ..FdEntry::fresh()
        };
        Ok(())
    }

    fn release_socket(&mut self, ops: &mut Ops, fd: RawFd) {
        if let Some(mut entry) = self.fds.remove(fd) {
            // A parked op's task is woken to find its socket gone (ECANCELED).
            for dir in [Direction::Read, Direction::Write] {
                let Some(parked) = entry.end_park(dir, ops) else {
                    continue;
                };
                if parked.lent != 0 {
                    // Its future gets a buffer back when it sees the socket gone.
                    self.released.push((parked.generation, parked.lent));
                }
                if let Some(waker) = parked.waker {
                    ops.wake(waker);
                }
            }
            for key in entry.readers.drain(..).chain(entry.writers.drain(..)) {
                ops.complete(key, Err(cancelled()));
            }
            if entry.in_selector {
                // The fd is about to close: what the selector answers changes nothing.
                let _ = self.selector.deregister(fd);
            }
        }
    }

    fn cancel(&mut self, ops: &mut Ops, key: OpKey) {
        let Some(op) = ops.op_mut(key) else {
            return;
        };
        let fd = op.fd();
        let dir = op.direction();
        if let Some(entry) = self.fds.get_mut(fd) {
            entry.queue(dir).retain(|k| *k != key);
        }
        ops.complete(key, Err(cancelled()));
    }

    fn poll(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = if self.parks_hold || !self.table_holds.is_empty() {
            self.lending_round(ops, timeout)
        } else {
            timeout
        };
        let oneshot = self.selector.is_oneshot();
        let mut rearm = std::mem::take(&mut self.rearm);
        let (fds, table_holds, lending) = (&mut self.fds, &mut self.table_holds, &self.lending);
        let res = self.selector.select_each(timeout, |ev| {
            let fd = ev.token as RawFd;
            let Some(entry) = fds.get_mut(fd) else {
                return;
            };
            if ev.ready.is_closed() {
                entry.closed = true;
            }
            let mut holds = TableHolds::new(table_holds, lending);
            if ev.ready.is_readable() {
                Self::retry(entry, ops, Direction::Read, &mut holds);
            }
            if ev.ready.is_writable() {
                Self::retry(entry, ops, Direction::Write, &mut holds);
            }
            // A one-shot registration is now disarmed: re-armed below for the ops still
            // waiting. Registered sockets are registered for good.
            if oneshot && !entry.socket {
                rearm.push(fd);
            }
        });
        // If re-arming fails, the fd is gone: its ops fail with the error.
        for fd in rearm.drain(..) {
            if let Err(e) = self.arm(fd) {
                self.fail_waiters(ops, fd, &e);
            }
        }
        self.rearm = rearm;
        match res {
            // EINTR, or EAGAIN from a selector whose wake-up had nothing to report
            // (loop-polling retries polling's own, see `PollingSelector::wait`). No wake-up is
            // lost: the loop checks its `notified` flag before every poll.
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    fn waker(&self) -> DriverWaker {
        self.waker.clone()
    }

    fn shutdown(&mut self, ops: &mut Ops) {
        self.released.clear();
        for mut entry in self.fds.drain() {
            entry.end_park(Direction::Read, ops);
            entry.end_park(Direction::Write, ops);
            for key in entry.readers.drain(..).chain(entry.writers.drain(..)) {
                ops.complete(key, Err(cancelled()));
            }
        }
    }
}
