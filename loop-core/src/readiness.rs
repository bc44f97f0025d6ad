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

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::driver::{
    Driver, DriverWaker, Event, Interest, ParkKey, Registration, Selector, Started,
};
use crate::ops::{OpKey, Ops};
use crate::sys::is_stream_socket;
use loop_api::{Direction, IDLE_RECEIVE_AFTER, Op};

/// An op parked in its future's slot, waiting for readiness on a registered socket.
#[derive(Debug)]
struct Parked {
    /// Its key's generation (a later park on the same fd and direction has another).
    generation: u32,
    /// Its task's waker; taken when readiness is reported (the op's turn has come).
    waker: Option<Waker>,
    /// The capacity of its receive buffer, lent to the loop's spares once it had waited
    /// [`IDLE_RECEIVE_AFTER`] (0: it keeps its buffer, or has none): an idle connection
    /// holds no receive buffer.
    lent: usize,
    /// The capacity of the receive buffer it keeps, counted by
    /// [`Ops::receive_buffer_bytes`] (0 once lent).
    kept: usize,
    /// The lending round it parked in (see [`Lending`]).
    round: u32,
    /// Its buffer is to be lent when its future polls next (it waited long).
    lend: bool,
}

impl Parked {
    /// It is done with (finished, dropped, its socket released): it keeps nothing any more.
    fn forget(&self, ops: &mut Ops) {
        if self.kept != 0 {
            ops.note_kept(self.kept, false);
        }
    }
}

/// When the buffers of receives that wait long are lent (see [`IDLE_RECEIVE_AFTER`]): every
/// [`IDLE_RECEIVE_AFTER`] while some parked receive keeps a buffer it could lend, the driver
/// asks those parked since before the last such round to lend theirs (they have waited at
/// least that long), so a receive whose data comes within a round never lends.
#[derive(Debug, Default)]
struct Lending {
    /// The current round.
    round: u32,
    /// When the next round begins (`None`: no receive keeps a buffer it could lend).
    next: Option<Instant>,
    /// Polls that did not wait since the time was last read.
    unread: u32,
}

impl Lending {
    /// How many polls that do not wait go by without reading the time.
    const UNREAD_POLLS: u32 = 16;

    /// The time, read every [`UNREAD_POLLS`](Self::UNREAD_POLLS)th poll that does not wait.
    fn time_to_look(&mut self) -> Option<Instant> {
        self.unread += 1;
        (self.unread >= Self::UNREAD_POLLS).then(|| {
            self.unread = 0;
            Instant::now()
        })
    }
}

/// The capacity of the receive buffer `op` keeps while parked (0: not a receive).
fn kept_capacity(op: &Op) -> usize {
    match op {
        Op::Recv { buf, .. } => buf.capacity(),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct FdEntry {
    /// The op parked per direction (read, write): it goes before the queued ones.
    parked: [Option<Parked>; 2],
    readers: VecDeque<OpKey>,
    writers: VecDeque<OpKey>,
    /// The selector watches it (as far as the driver knows).
    in_selector: bool,
    /// A registered socket ([`Driver::register_socket`]), whose owner says when the fd goes
    /// away: registered for both directions, edge-triggered, for good; no re-arm is needed.
    socket: bool,
    /// A registered stream socket: a short read or write proves it drained (see
    /// [`drained_by`](crate::drained_by)).
    stream: bool,
    /// What a registered socket may be ready for, as last seen: cleared when a syscall finds
    /// it drained (`WouldBlock`, or a short read on a stream), set again by its next event.
    /// While cleared, an op waits for the edge instead of trying a syscall that would fail.
    /// Always true for other fds.
    readable: bool,
    writable: bool,
    /// An event said the read side is closed or the fd is in error: final, the readiness
    /// cache is no longer used.
    closed: bool,
    /// A registered socket was made non-blocking (it stays the same socket until released).
    nonblocking: bool,
    /// A receive on the fd got bytes: the connection is in use. Until then (a new
    /// connection, which may well stay idle) a parked receive lends its buffer at once.
    received: bool,
}

impl FdEntry {
    /// An fd not seen yet: not registered, assumed ready.
    fn fresh() -> Self {
        FdEntry {
            readable: true,
            writable: true,
            ..FdEntry::default()
        }
    }

    fn queue(&mut self, dir: Direction) -> &mut VecDeque<OpKey> {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }

    fn parked_mut(&mut self, dir: Direction) -> &mut Option<Parked> {
        &mut self.parked[dir as usize]
    }

    /// True while the op of `generation` is the one parked in `dir`.
    fn parks(&self, dir: Direction, generation: u32) -> bool {
        self.parked[dir as usize]
            .as_ref()
            .is_some_and(|p| p.generation == generation)
    }

    /// Ends the park in `dir` (its op finished, was dropped, or its socket is going): the op
    /// is no longer in flight and keeps no buffer the loop counts.
    fn end_park(&mut self, dir: Direction, ops: &mut Ops) -> Option<Parked> {
        let parked = self.parked_mut(dir).take()?;
        parked.forget(ops);
        ops.note_unparked();
        Some(parked)
    }

    /// A registered socket the selector watches for good (no re-arm per wait).
    fn armed_for_good(&self) -> bool {
        self.socket && self.in_selector
    }

    fn interest(&self) -> Interest {
        if self.socket {
            return Interest::BOTH;
        }
        let mut i = Interest::NONE;
        if !self.readers.is_empty() {
            i = i.union(Interest::READABLE);
        }
        if !self.writers.is_empty() {
            i = i.union(Interest::WRITABLE);
        }
        i
    }

    /// False only when a registered socket is known to be drained in `dir`.
    fn may_be_ready(&self, dir: Direction) -> bool {
        if self.closed {
            return true;
        }
        match dir {
            Direction::Read => self.readable,
            Direction::Write => self.writable,
        }
    }

    fn set_ready(&mut self, dir: Direction, ready: bool) {
        // Only registered sockets keep a readiness cache: others are re-armed per wait instead.
        let ready = ready || !self.socket;
        match dir {
            Direction::Read => self.readable = ready,
            Direction::Write => self.writable = ready,
        }
    }

    /// True when no op waits in `dir` (none parked, none queued): a new one may go first.
    fn idle(&self, dir: Direction) -> bool {
        self.parked[dir as usize].is_none() && self.queue_ref(dir).is_empty()
    }

    fn queue_ref(&self, dir: Direction) -> &VecDeque<OpKey> {
        match dir {
            Direction::Read => &self.readers,
            Direction::Write => &self.writers,
        }
    }

    /// Performs `op` on this fd (see [`perform`](crate::perform::perform)) and notes what its
    /// result says of the fd's readiness in `dir`. Every request's receive and send take the
    /// short arms (one test of the variant).
    #[inline(always)]
    fn perform(&mut self, op: &mut Op, dir: Direction, ready: bool) -> io::Result<usize> {
        let (res, drained) = match op {
            Op::Recv { fd, buf } => {
                let res = crate::perform::receive(*fd, buf);
                // A short read on a stream drained the receive queue.
                let got = matches!(res, Ok(n) if n > 0);
                self.received |= got;
                let short = got && buf.len() < buf.capacity();
                (res, short && self.stream)
            }
            Op::Send { fd, buf, pos } => {
                let (fd, pos) = (*fd, *pos);
                let res = crate::perform::send_from(fd, buf, pos);
                // A partial send filled the send buffer.
                let short = matches!(res, Ok(n) if pos + n < buf.len());
                (res, short && self.stream)
            }
            // A watch makes no syscall: its WouldBlock says nothing about the fd.
            _ if op.is_watch() => return crate::perform::perform(op, ready),
            _ => {
                let res = crate::perform::perform(op, ready);
                let drained = self.stream && crate::perform::drained_by(op, &res);
                (res, drained)
            }
        };
        if drained || is_would_block(&res) {
            self.set_ready(dir, false);
        }
        res
    }
}

/// The fd entries, indexed by fd number (fds are small integers: a vector beats hashing on
/// every operation).
#[derive(Debug, Default)]
struct FdTable {
    entries: Vec<FdEntry>,
}

impl FdTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get_mut(&mut self, fd: RawFd) -> Option<&mut FdEntry> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// The entry of `fd` (non-negative: callers check), made if needed.
    fn entry(&mut self, fd: RawFd) -> &mut FdEntry {
        let i = usize::try_from(fd).unwrap_or(0);
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, FdEntry::fresh);
        }
        &mut self.entries[i]
    }

    /// Takes the entry of `fd` out (leaving a fresh one).
    fn remove(&mut self, fd: RawFd) -> Option<FdEntry> {
        self.get_mut(fd)
            .map(|e| std::mem::replace(e, FdEntry::fresh()))
    }

    /// Takes every entry out.
    fn drain(&mut self) -> impl Iterator<Item = FdEntry> + '_ {
        self.entries.drain(..)
    }
}

/// A [`Driver`] for any readiness [`Selector`] (mio, polling, ...).
pub struct ReadinessDriver<S: Selector> {
    selector: S,
    fds: FdTable,
    events: Vec<Event>,
    waker: DriverWaker,
    /// The generation of the last parked op (31 bits, wrapping).
    generation: u32,
    /// Parked ops whose socket was released while they had lent their buffer: generation and
    /// capacity, until their future polls (and gets a buffer back) or is dropped.
    released: Vec<(u32, usize)>,
    lending: Lending,
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
            events: Vec::with_capacity(256),
            waker,
            generation: 0,
            released: Vec::new(),
            lending: Lending::default(),
        }
    }

    /// The selector inside.
    pub fn selector(&self) -> &S {
        &self.selector
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

    /// Some parked receive keeps a buffer it could lend and the loop is about to wait (it is
    /// `now`): when a lending round is due, asks
    /// those parked before the last round to lend theirs (their tasks are woken; the buffer
    /// is lent when the future polls). Gives the wait's timeout, cut to the next round, and
    /// whether it was cut.
    fn lend_idle_buffers(
        &mut self,
        ops: &mut Ops,
        now: Instant,
        timeout: Option<Duration>,
    ) -> (Option<Duration>, bool) {
        let mut next = *self.lending.next.get_or_insert(now + IDLE_RECEIVE_AFTER);
        if now >= next {
            let round = self.lending.round;
            for entry in &mut self.fds.entries {
                let Some(parked) = entry.parked_mut(Direction::Read) else {
                    continue;
                };
                if parked.round != round && parked.kept >= crate::PARK_MIN && !parked.lend {
                    parked.lend = true;
                    if let Some(waker) = parked.waker.take() {
                        ops.wake(waker);
                    }
                }
            }
            self.lending.round = round.wrapping_add(1);
            next = now + IDLE_RECEIVE_AFTER;
            self.lending.next = Some(next);
        }
        let left = next - now;
        match timeout {
            Some(t) if t <= left => (Some(t), false),
            _ => (Some(left), true),
        }
    }

    /// Readiness in direction `dir` was reported for `entry`'s fd: the parked op's task is
    /// woken (it goes first), else the queued ops are retried.
    fn retry(entry: &mut FdEntry, ops: &mut Ops, dir: Direction) {
        entry.set_ready(dir, true);
        if let Some(parked) = entry.parked_mut(dir) {
            if let Some(waker) = parked.waker.take() {
                // A task of ours is queued at once (that runs nothing else); any other
                // waker once the driver returns.
                if loop_api::is_loop_task_waker(&waker) {
                    waker.wake();
                } else {
                    ops.wake(waker);
                }
            }
            return;
        }
        if !entry.queue(dir).is_empty() {
            Self::run_queue(entry, ops, dir);
        }
    }

    /// Retries the ops queued on an fd in direction `dir`, in order, until one would block
    /// (or a short read shows the fd drained).
    fn run_queue(entry: &mut FdEntry, ops: &mut Ops, dir: Direction) {
        while let Some(&key) = entry.queue(dir).front() {
            // A receive's buffer was parked while it waited: it gets one back only now.
            let Some(op) = ops.op_to_perform(key) else {
                entry.queue(dir).pop_front();
                continue;
            };
            let res = entry.perform(op, dir, true);
            if is_would_block(&res) {
                ops.park_buffer(key);
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
        self.generation = next_generation(self.generation);
        let tag = ParkTag {
            generation: self.generation,
            round: self.lending.round,
        };
        Some(park_in(entry, tag, ops, op, fd, dir, waker))
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
        self.generation = next_generation(self.generation);
        let tag = ParkTag {
            generation: self.generation,
            round: self.lending.round,
        };
        Some(Started::Parked(park_in(
            entry, tag, ops, op, fd, dir, waker,
        )))
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
        // Ops on one fd and direction complete in order: only try at once if none is waiting.
        if !entry.idle(dir) || !entry.may_be_ready(dir) {
            return None;
        }
        let res = entry.perform(op, dir, false);
        (!is_would_block(&res)).then_some(res)
    }
}

fn is_would_block(res: &io::Result<usize>) -> bool {
    matches!(res, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A [`ParkKey`]: the generation, the fd and the direction, below 2^63.
fn park_key(fd: RawFd, dir: Direction, generation: u32) -> ParkKey {
    ParkKey((u64::from(generation) << 32) | (u64::from(fd as u32) << 1) | dir as u64)
}

/// The generation after `g` (31 bits, wrapping).
fn next_generation(g: u32) -> u32 {
    (g + 1) & 0x7fff_ffff
}

/// Lends the buffer of `parked` (its op is `op`), a receive that waited long, to the
/// loop's spares.
fn lend_parked_buffer(parked: &mut Parked, ops: &mut Ops, op: &mut Op) {
    if parked.lent != 0 {
        return;
    }
    let lent = ops.lend_buffer(op);
    if lent != 0 {
        ops.note_kept(parked.kept, false);
        parked.kept = 0;
        parked.lent = lent;
    }
}

/// Gives `parked`'s op (`op`), which lent its buffer, one back before it is tried: kept
/// (and counted) while the op is still parked.
fn take_lent_buffer(parked: &mut Parked, ops: &mut Ops, op: &mut Op) {
    let lent = std::mem::take(&mut parked.lent);
    ops.return_buffer(op, lent);
    parked.kept = lent;
    ops.note_kept(lent, true);
}

/// What a park is named by: its generation, and its lending round.
#[derive(Debug, Clone, Copy)]
struct ParkTag {
    generation: u32,
    round: u32,
}

/// Parks `op`, which has to wait on `entry` (a registered socket, nothing else waiting in
/// `dir`), in its caller's slot: a receive keeps its buffer (counted) until it has waited
/// long (see [`Lending`]).
#[inline(always)]
fn park_in(
    entry: &mut FdEntry,
    tag: ParkTag,
    ops: &mut Ops,
    op: &mut Op,
    fd: RawFd,
    dir: Direction,
    waker: &Waker,
) -> ParkKey {
    let kept = kept_capacity(op);
    if kept != 0 {
        ops.note_kept(kept, true);
    }
    *entry.parked_mut(dir) = Some(Parked {
        generation: tag.generation,
        waker: Some(waker.clone()),
        lent: 0,
        kept,
        round: tag.round,
        lend: false,
    });
    ops.note_parked();
    if !entry.received
        && let Some(parked) = entry.parked_mut(dir)
    {
        // A connection that has received nothing yet may stay idle: no buffer meanwhile.
        lend_parked_buffer(parked, ops, op);
    }
    park_key(fd, dir, tag.generation)
}

fn park_parts(key: ParkKey) -> (RawFd, Direction, u32) {
    let fd = ((key.0 >> 1) & 0x7fff_ffff) as RawFd;
    let dir = if key.0 & 1 == 0 {
        Direction::Read
    } else {
        Direction::Write
    };
    (fd, dir, (key.0 >> 32) as u32)
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
        // Nothing to read yet: a receive waits without its buffer.
        let key = ops.insert_waiting(op);
        match self.wait_for_readiness(key, fd, dir, is_watch) {
            Ok(()) => Started::InFlight(key),
            Err(e) => {
                *slot = ops.remove(key);
                Started::Done(Err(e))
            }
        }
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
                    Self::run_queue(entry, ops, dir);
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
            Self::run_queue(entry, ops, dir);
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
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        // Lending rounds are checked before a wait (the loop read the time for it), and
        // every few polls that do not wait (a loop that never waits lends too).
        let now = match ops.holding() {
            0 => None,
            _ => ops.poll_started().or_else(|| self.lending.time_to_look()),
        };
        let (timeout, cut) = match now {
            Some(now) => self.lend_idle_buffers(ops, now, timeout),
            None => (timeout, false),
        };
        let res = self.selector.select(&mut events, timeout);
        if cut && events.is_empty() && !ops.has_wakers() {
            ops.note_wait_cut_short();
        }
        match res {
            Ok(()) => {}
            // EINTR, or (polling's poll(2) mode, when several threads notify at once) EAGAIN
            // from draining its notification pipe: a wake-up with nothing to report. No
            // wake-up is lost: the loop checks its `notified` flag before every poll.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => {
                self.events = events;
                return Err(e);
            }
        }
        let oneshot = self.selector.is_oneshot();
        for ev in &events {
            let fd = ev.token as RawFd;
            let Some(entry) = self.fds.get_mut(fd) else {
                continue;
            };
            if ev.ready.is_closed() {
                entry.closed = true;
            }
            if ev.ready.is_readable() {
                Self::retry(entry, ops, Direction::Read);
            }
            if ev.ready.is_writable() {
                Self::retry(entry, ops, Direction::Write);
            }
            // A one-shot registration is now disarmed: re-arm it for the ops still waiting
            // (if that fails, the fd is gone; its ops fail with the error). Registered sockets
            // are registered for good.
            if oneshot
                && !entry.socket
                && let Err(e) = self.arm(fd)
            {
                self.fail_waiters(ops, fd, &e);
            }
        }
        self.events = events;
        Ok(())
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
