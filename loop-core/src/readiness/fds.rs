//! The readiness driver's state per fd: [`FdEntry`] (what waits on the fd, its readiness
//! cache), the op parked on it ([`Parked`]) and the table of entries ([`FdTable`]).

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::task::Waker;

use crate::driver::{Interest, ParkKey};
use crate::ops::{OpKey, Ops};
use loop_api::{Direction, Op};

/// An op parked in its future's slot, waiting for readiness on a registered socket.
#[derive(Debug)]
pub(super) struct Parked {
    /// Its key's generation (a later park on the same fd and direction has another).
    pub(super) generation: u32,
    /// Its task's waker; taken when readiness is reported (the op's turn has come).
    pub(super) waker: Option<Waker>,
    /// The capacity of its receive buffer, lent to the loop's spares once it had waited
    /// `IDLE_RECEIVE_AFTER` (0: it keeps its buffer, or has none): an idle connection holds
    /// no receive buffer.
    pub(super) lent: usize,
    /// The capacity of the receive buffer it keeps (0 once lent), counted in the loop's
    /// receive buffer bytes (see [`Driver::kept_receive_bytes`](crate::Driver::kept_receive_bytes)).
    pub(super) kept: usize,
    /// The lending round it parked in (see [`LendingRounds`](crate::LendingRounds)).
    pub(super) round: u32,
    /// Its buffer is to be lent when its future polls next (it waited long).
    pub(super) lend: bool,
}

/// The capacity of the receive buffer `op` keeps while parked (0: not a receive).
pub(super) fn kept_capacity(op: &Op) -> usize {
    match op {
        Op::Recv { buf, .. } => buf.capacity(),
        _ => 0,
    }
}

#[derive(Debug, Default)]
pub(super) struct FdEntry {
    /// The op parked per direction (read, write): it goes before the queued ones.
    pub(super) parked: [Option<Parked>; 2],
    pub(super) readers: VecDeque<OpKey>,
    pub(super) writers: VecDeque<OpKey>,
    /// The selector watches it (as far as the driver knows).
    pub(super) in_selector: bool,
    /// A registered socket ([`Driver::register_socket`]), whose owner says when the fd goes
    /// away: registered for both directions, edge-triggered, for good; no re-arm is needed.
    pub(super) socket: bool,
    /// A registered stream socket: a short read or write proves it drained (see
    /// [`drained_by`](crate::drained_by)).
    pub(super) stream: bool,
    /// What a registered socket may be ready for, as last seen: cleared when a syscall finds
    /// it drained (`WouldBlock`, or a short read on a stream), set again by its next event.
    /// While cleared, an op waits for the edge instead of trying a syscall that would fail.
    /// Always true for other fds.
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// An event said the read side is closed or the fd is in error: final, the readiness
    /// cache is no longer used.
    pub(super) closed: bool,
    /// A registered socket was made non-blocking (it stays the same socket until released).
    pub(super) nonblocking: bool,
    /// A receive on the fd got bytes: the connection is in use. Until then (a new
    /// connection, which may well stay idle) a parked receive lends its buffer at once.
    pub(super) received: bool,
}

impl FdEntry {
    /// An fd not seen yet: not registered, assumed ready.
    pub(super) fn fresh() -> Self {
        FdEntry {
            readable: true,
            writable: true,
            ..FdEntry::default()
        }
    }

    pub(super) fn queue(&mut self, dir: Direction) -> &mut VecDeque<OpKey> {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }

    pub(super) fn parked_mut(&mut self, dir: Direction) -> &mut Option<Parked> {
        &mut self.parked[dir as usize]
    }

    /// True while the op of `generation` is the one parked in `dir`.
    pub(super) fn parks(&self, dir: Direction, generation: u32) -> bool {
        self.parked[dir as usize]
            .as_ref()
            .is_some_and(|p| p.generation == generation)
    }

    /// Ends the park in `dir` (its op finished, was dropped, or its socket is going): the op
    /// is no longer in flight.
    pub(super) fn end_park(&mut self, dir: Direction, ops: &mut Ops) -> Option<Parked> {
        let parked = self.parked_mut(dir).take()?;
        ops.note_unparked();
        Some(parked)
    }

    /// A registered socket the selector watches for good (no re-arm per wait).
    pub(super) fn armed_for_good(&self) -> bool {
        self.socket && self.in_selector
    }

    pub(super) fn interest(&self) -> Interest {
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
    pub(super) fn may_be_ready(&self, dir: Direction) -> bool {
        if self.closed {
            return true;
        }
        match dir {
            Direction::Read => self.readable,
            Direction::Write => self.writable,
        }
    }

    pub(super) fn set_ready(&mut self, dir: Direction, ready: bool) {
        // Only registered sockets keep a readiness cache: others are re-armed per wait instead.
        let ready = ready || !self.socket;
        match dir {
            Direction::Read => self.readable = ready,
            Direction::Write => self.writable = ready,
        }
    }

    /// True when no op waits in `dir` (none parked, none queued): a new one may go first.
    pub(super) fn idle(&self, dir: Direction) -> bool {
        self.parked[dir as usize].is_none() && self.queue_ref(dir).is_empty()
    }

    /// True when a new op in `dir` may be tried at once: none waits before it (ops on one fd
    /// and direction complete in order) and the fd may be ready.
    pub(super) fn may_try_now(&self, dir: Direction) -> bool {
        self.idle(dir) && self.may_be_ready(dir)
    }

    pub(super) fn queue_ref(&self, dir: Direction) -> &VecDeque<OpKey> {
        match dir {
            Direction::Read => &self.readers,
            Direction::Write => &self.writers,
        }
    }

    /// Performs `op` on this fd (see [`perform`](crate::perform::perform)) and notes what its
    /// result says of the fd's readiness in `dir`. Every request's receive and send take the
    /// short arms (one test of the variant).
    #[inline(always)]
    pub(super) fn perform(
        &mut self,
        op: &mut Op,
        dir: Direction,
        ready: bool,
    ) -> io::Result<usize> {
        let (res, drained) = match op {
            Op::Recv { fd, buf } => {
                let res = crate::perform::receive(*fd, buf);
                self.received |= matches!(res, Ok(n) if n > 0);
                let (len, cap) = (buf.len(), buf.capacity());
                let short = matches!(res, Ok(n) if crate::perform::receive_drained(n, len, cap));
                (res, short && self.stream)
            }
            Op::Send { fd, buf, pos } => return self.send(*fd, &buf[(*pos).min(buf.len())..]),
            // A watch makes no syscall: its WouldBlock says nothing about the fd.
            _ if op.is_watch() => return crate::perform::perform(op, ready),
            // The other ops say nothing of a stream's readiness (see `drained_by`).
            _ => (crate::perform::perform(op, ready), false),
        };
        if drained || is_would_block(&res) {
            self.set_ready(dir, false);
        }
        res
    }

    /// send(2) of `src` on this entry's fd `fd`: a send that took less than all of `src` (on
    /// a stream) or would block says the fd is not writable any more.
    #[inline(always)]
    pub(super) fn send(&mut self, fd: RawFd, src: &[u8]) -> io::Result<usize> {
        let res = crate::perform::send_from(fd, src, 0);
        let short = matches!(res, Ok(n) if n < src.len()) && self.stream;
        if short || is_would_block(&res) {
            self.set_ready(Direction::Write, false);
        }
        res
    }
}

/// The fd entries, indexed by fd number (fds are small integers: a vector beats hashing on
/// every operation).
#[derive(Debug, Default)]
pub(super) struct FdTable {
    pub(super) entries: Vec<FdEntry>,
}

impl FdTable {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get_mut(&mut self, fd: RawFd) -> Option<&mut FdEntry> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    /// The entry of `fd` (non-negative: callers check), made if needed.
    pub(super) fn entry(&mut self, fd: RawFd) -> &mut FdEntry {
        let i = usize::try_from(fd).unwrap_or(0);
        if i >= self.entries.len() {
            self.entries.resize_with(i + 1, FdEntry::fresh);
        }
        &mut self.entries[i]
    }

    /// Takes the entry of `fd` out (leaving a fresh one).
    pub(super) fn remove(&mut self, fd: RawFd) -> Option<FdEntry> {
        self.get_mut(fd)
            .map(|e| std::mem::replace(e, FdEntry::fresh()))
    }

    /// Takes every entry out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = FdEntry> + '_ {
        self.entries.drain(..)
    }
}

pub(super) fn is_would_block(res: &io::Result<usize>) -> bool {
    matches!(res, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A [`ParkKey`]: the generation, the fd and the direction, below 2^63.
pub(super) fn park_key(fd: RawFd, dir: Direction, generation: u32) -> ParkKey {
    ParkKey((u64::from(generation) << 32) | (u64::from(fd as u32) << 1) | dir as u64)
}

impl ParkTag {
    /// The tag of the next park: the generation after `generation` (31 bits, wrapping; it
    /// becomes the last one), in the current lending round.
    pub(super) fn next(generation: &mut u32, lending: &crate::LendingRounds) -> Self {
        *generation = (*generation + 1) & 0x7fff_ffff;
        ParkTag {
            generation: *generation,
            round: lending.current(),
        }
    }
}

/// Lends the buffer of `parked` (its op is `op`), a receive that waited long, to the
/// loop's spares.
pub(super) fn lend_parked_buffer(parked: &mut Parked, ops: &mut Ops, op: &mut Op) {
    if parked.lent != 0 {
        return;
    }
    let lent = ops.lend_buffer(op);
    if lent != 0 {
        parked.kept = 0;
        parked.lent = lent;
    }
}

/// Gives `parked`'s op (`op`), which lent its buffer, one back before it is tried: kept
/// while the op is still parked (the caller notes that parks hold buffers again).
pub(super) fn take_lent_buffer(parked: &mut Parked, ops: &mut Ops, op: &mut Op) {
    let lent = std::mem::take(&mut parked.lent);
    ops.return_buffer(op, lent);
    parked.kept = lent;
}

/// What a park is named by: its generation, and its lending round.
#[derive(Debug, Clone, Copy)]
pub(super) struct ParkTag {
    pub(super) generation: u32,
    pub(super) round: u32,
}

/// Parks `op`, which has to wait on `entry` (a registered socket, nothing else waiting in
/// `dir`), in its caller's slot: a receive keeps its buffer until it has waited long (see
/// [`LendingRounds`](crate::LendingRounds)). Gives its key, and whether it keeps a buffer it
/// could lend.
#[inline(always)]
pub(super) fn park_in(
    entry: &mut FdEntry,
    tag: ParkTag,
    ops: &mut Ops,
    op: &mut Op,
    fd: RawFd,
    dir: Direction,
    waker: &Waker,
) -> (ParkKey, bool) {
    let kept = kept_capacity(op);
    *entry.parked_mut(dir) = Some(Parked {
        generation: tag.generation,
        waker: Some(waker.clone()),
        lent: 0,
        kept,
        round: tag.round,
        lend: false,
    });
    ops.note_parked();
    let mut holds = kept >= crate::PARK_MIN;
    if !entry.received
        && let Some(parked) = entry.parked_mut(dir)
    {
        // A connection that has received nothing yet may stay idle: no buffer meanwhile.
        lend_parked_buffer(parked, ops, op);
        holds = false;
    }
    (park_key(fd, dir, tag.generation), holds)
}

pub(super) fn park_parts(key: ParkKey) -> (RawFd, Direction, u32) {
    let fd = ((key.0 >> 1) & 0x7fff_ffff) as RawFd;
    let dir = if key.0 & 1 == 0 {
        Direction::Read
    } else {
        Direction::Write
    };
    (fd, dir, (key.0 >> 32) as u32)
}
