//! [`UringDriver`]: a completion [`Driver`] over io_uring.
//!
//! Every [`Op`] becomes one SQE whose `user_data` is its [`OpKey`]. SQEs queued during a loop
//! iteration are submitted together with the wait, in one `io_uring_enter`. Cross-thread
//! wake-ups come through an eventfd whose read is kept in flight. Cancelling an op submits
//! `ASYNC_CANCEL`; the op's own completion still arrives and is what frees its buffers.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, opcode, squeue};
use loop_core::{Direction, Driver, DriverWaker, Op, OpKey, Ops, Started};

use crate::lending::Lending;
use crate::order::{Order, Turns, turn_of};

/// `user_data` of the eventfd read that wakes the loop.
const WAKE_TOKEN: u64 = u64::MAX;
/// `user_data` of ASYNC_CANCEL requests (their own completions carry nothing we need).
const CANCEL_TOKEN: u64 = u64::MAX - 1;
/// Submission queue size.
const ENTRIES: u32 = 256;
/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19; ignored before): the kernel arms its readiness
/// poll at once instead of first trying a receive that would find no data.
const RECVSEND_POLL_FIRST: u16 = 1;
/// `IORING_ENTER_GETEVENTS` (the io-uring crate keeps its constants private).
const IORING_ENTER_GETEVENTS: u32 = 1;
/// How long closing the loop waits for cancelled operations to complete.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A [`Driver`] over an io_uring instance.
///
/// # Invariant
/// Every SQE pushed for a key points only into heap memory owned by the key's op in [`Ops`]
/// (a `Vec`'s buffer, a `Box`), which the core keeps until [`Ops::complete`] is called for the
/// key, and `wake_buf` lives as long as the ring (or is leaked with it).
pub struct UringDriver {
    ring: IoUring,
    /// Submitted ops (by key) whose completion has not arrived.
    in_flight: usize,
    wake_fd: Arc<OwnedFd>,
    wake_buf: Box<u64>,
    wake_armed: bool,
    defer_taskrun: bool,
    /// Completions taken off the ring early (to make room when the kernel said EBUSY), not
    /// yet reported.
    reaped: Vec<(u64, i32)>,
    /// Ops to submit again after a reap (kept for its allocation).
    retry: Vec<OpKey>,
    /// Receives to cancel for waiting long (kept for its allocation).
    to_cancel: Vec<OpKey>,
    /// One receive and one send per socket in the kernel at a time (see [`crate::order`]).
    /// A receive goes with its buffer, with [`RECVSEND_POLL_FIRST`] unless the socket is
    /// likely readable (its turns' `readable` hint: the last receive filled its buffer, or a
    /// poll just said so); one that waits long gives its buffer up ([`crate::lending`]).
    order: Order,
    /// When receives in the kernel give their buffers up (see [`crate::lending`]).
    lending: Lending,
    /// The kernel has every opcode of the file operations ([`crate::files::FILE_OPCODES`]).
    file_ops: bool,
}

impl std::fmt::Debug for UringDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDriver")
            .field("in_flight", &self.in_flight)
            .field("defer_taskrun", &self.defer_taskrun)
            .finish()
    }
}

fn build_ring() -> io::Result<(IoUring, bool)> {
    let tuned = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(ENTRIES);
    match tuned {
        Ok(ring) => Ok((ring, true)),
        Err(_) => IoUring::new(ENTRIES).map(|r| (r, false)),
    }
}

impl UringDriver {
    /// Creates the ring (SINGLE_ISSUER + DEFER_TASKRUN where the kernel has them) and the
    /// wake-up eventfd. Call it on the thread that will run the loop.
    ///
    /// # Errors
    /// The reason io_uring cannot run (see [`probe`](crate::probe)), or the eventfd failing.
    pub fn new() -> Result<Self, loop_api::LoopError> {
        crate::probe()?;
        let (ring, defer_taskrun) = build_ring().map_err(|e| {
            let why = crate::probe::setup_error(&e);
            crate::probe::ring_failed(&why);
            why
        })?;
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let wake_fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let file_ops = crate::files::supported(&ring);
        Ok(UringDriver {
            ring,
            in_flight: 0,
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            defer_taskrun,
            reaped: Vec::new(),
            retry: Vec::new(),
            to_cancel: Vec::new(),
            order: Order::default(),
            lending: Lending::default(),
            file_ops,
        })
    }

    /// True if the ring runs completions only when the loop waits (DEFER_TASKRUN).
    pub fn defer_taskrun(&self) -> bool {
        self.defer_taskrun
    }

    /// Queues one SQE; when the queue is full, submits what is queued and tries again.
    ///
    /// # Safety
    /// The memory `entry` points to must stay valid until its completion is reaped.
    #[inline]
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: the caller guarantees the entry's memory outlives the operation.
        if unsafe { self.ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { self.push_when_full(entry) }
    }

    /// [`push`](Self::push) when the queue is full.
    ///
    /// # Safety
    /// As for `push`.
    #[cold]
    #[inline(never)]
    unsafe fn push_when_full(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees the entry's memory outlives the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The completion queue is full and the kernel holds overflowed entries:
                    // take the completions off the ring (they are reported at the next reap)
                    // so the kernel can flush and accept our entries.
                    self.take_completions();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues an ASYNC_CANCEL of the op with `user_data`; false if it could not be queued
    /// (the op then completes on its own later; its buffers are kept until then either way).
    fn queue_cancel(&mut self, user_data: u64) -> bool {
        let entry = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(CANCEL_TOKEN);
        // SAFETY: ASYNC_CANCEL references no memory.
        unsafe { self.push(&entry) }.is_ok()
    }

    /// Submits the queued cancellations now and lets the kernel run the completion work they
    /// caused (with DEFER_TASKRUN it runs only inside an enter with GETEVENTS), without
    /// waiting for any completion. An op cancelled while waiting for readiness (an accept, a
    /// receive, a poll) is then finished and has dropped its reference to its file before
    /// this returns: a listener closed right after its accept was cancelled is really closed,
    /// as on the readiness backends, instead of at the loop's next wait. The completions are
    /// reported at the next reap, as usual.
    fn flush_cancels(&mut self) {
        let to_submit = self.ring.submission().len() as u32;
        // min_complete 0: never blocks. A failure (EINTR, EBUSY) only delays the cancellation
        // to the next wait, which submits what is still queued.
        // SAFETY: no argument is passed (null, size 0); every queued SQE points only into
        // memory kept until its completion (the type's invariant).
        let _ = unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                0,
                IORING_ENTER_GETEVENTS,
                None,
            )
        };
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        if self.wake_armed {
            return Ok(());
        }
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(Fd(self.wake_fd.as_raw_fd()), buf.cast(), 8)
            .build()
            .user_data(WAKE_TOKEN);
        // SAFETY: `wake_buf` is a Box owned by the driver; it is freed only after the ring
        // (Drop order) or leaked at shutdown if the read is still in flight.
        unsafe { self.push(&entry)? };
        self.wake_armed = true;
        Ok(())
    }

    /// Submits what is queued and waits up to `timeout` for at least one completion.
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let res = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(d) => {
                let ts = Timespec::from(d);
                let args = SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match res {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // Timed out, interrupted (retried by the loop with a recomputed timeout), or the
                // completion queue is full (reaping below makes room).
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Moves every completion on the ring into `reaped`.
    fn take_completions(&mut self) {
        let reaped = &mut self.reaped;
        reaped.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
    }

    /// Reports every completion taken off the ring or waiting on it.
    fn reap(&mut self, ops: &mut Ops) {
        let mut retry = std::mem::take(&mut self.retry);
        if !self.reaped.is_empty() {
            self.reap_taken(ops, &mut retry);
        }
        // One CQE at a time, straight off the ring.
        loop {
            let Some(cqe) = self.ring.completion().next() else {
                break;
            };
            self.reap_one(ops, cqe.user_data(), cqe.result(), &mut retry);
        }
        for key in retry.drain(..) {
            self.in_flight = self.in_flight.saturating_sub(1);
            if let Err(e) = self.submit(ops, key) {
                ops.complete(key, Err(e));
            }
        }
        self.retry = retry;
    }

    /// Reports the completions taken off the ring early (they came first).
    #[inline(never)]
    fn reap_taken(&mut self, ops: &mut Ops, retry: &mut Vec<OpKey>) {
        let mut taken = std::mem::take(&mut self.reaped);
        for (user_data, res) in taken.drain(..) {
            self.reap_one(ops, user_data, res, retry);
        }
        // Keep the allocation for the next time.
        if self.reaped.is_empty() {
            self.reaped = taken;
        }
    }

    /// Handles one CQE; an op to submit again goes into `retry`.
    #[inline(always)]
    fn reap_one(&mut self, ops: &mut Ops, user_data: u64, res: i32, retry: &mut Vec<OpKey>) {
        match user_data {
            WAKE_TOKEN => self.wake_armed = false,
            CANCEL_TOKEN => {}
            key => {
                let key = OpKey(key as usize);
                if res == -libc::EINTR {
                    self.interrupted(ops, key, retry);
                    return;
                }
                self.complete_or_retry(ops, key, res, retry);
            }
        }
    }

    /// Reports op `key`'s completion `res`; one that is not done goes into `retry` (it stays
    /// in flight).
    #[inline(always)]
    fn complete_or_retry(&mut self, ops: &mut Ops, key: OpKey, res: i32, retry: &mut Vec<OpKey>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !self.complete(ops, key, res) {
            self.in_flight += 1;
            retry.push(key);
        }
    }

    /// Op `key` completed with EINTR: one still waiting is submitted again (it stays in
    /// flight); another (already completed, which should not happen) is left alone.
    #[cold]
    #[inline(never)]
    fn interrupted(&mut self, ops: &mut Ops, key: OpKey, retry: &mut Vec<OpKey>) {
        if ops.is_pending(key) {
            retry.push(key);
            return;
        }
        self.complete_or_retry(ops, key, -libc::EINTR, retry);
    }

    /// Reports the completion `res` (a CQE's result) of op `key`. False: the op is not done
    /// and must be submitted again (an op io_uring has no opcode for, whose syscall would
    /// still block).
    #[inline(always)]
    fn complete(&mut self, ops: &mut Ops, key: OpKey, res: i32) -> bool {
        let Some((op, parked, orphaned)) = ops.op_state(key) else {
            return true;
        };
        // A receive or send the kernel ran with its buffer: the common case, one lookup of
        // the op and one of its turns.
        let (fd, dir, full) = match op {
            Op::Recv { fd, buf } if !parked => {
                if res > 0 {
                    let len = (buf.len() + res as usize).min(buf.capacity());
                    // SAFETY: the kernel wrote `res` bytes into the spare capacity it was
                    // given.
                    unsafe { buf.set_len(len) };
                }
                (*fd, Direction::Read, res > 0 && buf.len() == buf.capacity())
            }
            Op::Send { fd, .. } => (*fd, Direction::Write, false),
            _ => {
                let turn = turn_of(op);
                return self.complete_other(ops, key, res, turn);
            }
        };
        let result = if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        };
        let mut next = None;
        if let Some(turns) = self.order.turns(fd, dir)
            && turns.current == Some(key)
        {
            if dir == Direction::Read {
                if self.lending.release(turns) && res == -libc::ECANCELED && !orphaned {
                    // Cancelled for waiting long, having received nothing: it waits on with
                    // its buffer parked (a POLL_ADD), keeping its turn.
                    ops.park_buffer(key);
                    return false;
                }
                // Filled: more is likely waiting.
                turns.readable |= full;
                turns.received |= res > 0;
            }
            next = turns.pass();
        }
        ops.complete(key, result);
        if let Some(next) = next {
            self.push_next(ops, next, fd, dir);
        }
        true
    }

    /// [`complete`](Self::complete) for the other ops: a parked receive's poll, a poll for
    /// an op io_uring has no opcode for, datagrams, accepts, connects, file ops, watches.
    fn complete_other(
        &mut self,
        ops: &mut Ops,
        key: OpKey,
        res: i32,
        turn: Option<(i32, Direction)>,
    ) -> bool {
        let done = self.finish(ops, key, res);
        if done && let Some((fd, dir)) = turn {
            self.pass_turn(ops, key, fd, dir);
        }
        done
    }

    /// [`complete`](Self::complete) but for the turn of its socket.
    fn finish(&mut self, ops: &mut Ops, key: OpKey, res: i32) -> bool {
        let mut result = if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        };
        let wanted = !ops.is_orphaned(key);
        if ops.buffer_parked(key) {
            return self.poll_of_parked_receive(ops, key, result, wanted);
        }
        if let (Ok(_), Some(op)) = (&result, ops.op_mut(key))
            && needs_syscall_when_ready(op)
        {
            if !wanted {
                // Its future was dropped: the syscall must not run any more.
                ops.complete(key, Err(io::Error::from_raw_os_error(libc::ECANCELED)));
                return true;
            }
            // The poll said the socket is writable: now the syscall itself.
            result = loop_core::perform(op, true);
            if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                return false;
            }
        }
        if let (Ok(n), Some(op)) = (&result, ops.op_mut(key)) {
            // SAFETY: for a receive, the kernel wrote `n` bytes into the spare capacity (and
            // the address into the header) it was given.
            unsafe { op.assume_received(*n) };
            if let Op::Recv { fd, buf } = &*op
                && *n > 0
                && buf.len() == buf.capacity()
            {
                // Filled: more is likely waiting.
                self.set_readable(*fd);
            }
        }
        ops.complete(key, result);
        true
    }

    /// Op `key`, which had the turn of `fd` and `dir`, is done: the next op waiting there goes
    /// to the kernel (one that cannot be queued fails, and the turn goes on).
    fn pass_turn(&mut self, ops: &mut Ops, key: OpKey, fd: i32, dir: Direction) {
        if let Some(next) = self.order.pass_turn(key, fd, dir) {
            self.push_next(ops, next, fd, dir);
        }
    }

    /// Op `next` has the turn of `fd` and `dir` now: its SQE is queued (one that cannot be
    /// queued fails, and the turn goes on).
    fn push_next(&mut self, ops: &mut Ops, mut next: OpKey, fd: i32, dir: Direction) {
        while let Err(e) = self.push_op(ops, next, false) {
            ops.complete(next, Err(e));
            match self.order.pass_turn(next, fd, dir) {
                Some(key) => next = key,
                None => return,
            }
        }
    }

    /// False when a receive into a buffer of capacity `cap` on `fd` should wait holding no
    /// buffer: one worth lending, on a socket no receive got bytes from yet.
    #[inline]
    fn has_received(&mut self, fd: RawFd, cap: usize) -> bool {
        cap < loop_core::PARK_MIN
            || self
                .order
                .turns(fd, Direction::Read)
                .is_none_or(|t| t.received)
    }

    /// The next receive on `fd` goes without [`RECVSEND_POLL_FIRST`].
    fn set_readable(&mut self, fd: i32) {
        if let Some(turns) = self.order.turns(fd, Direction::Read) {
            turns.readable = true;
        }
    }

    /// Queues the SQE of op `key`. With `take`, it first takes the turn of its socket and
    /// direction: `Ok(false)` when it was queued behind the op that has it (no SQE).
    #[inline(always)]
    fn push_op(&mut self, ops: &mut Ops, key: OpKey, take: bool) -> io::Result<bool> {
        let Some((op, parked, _)) = ops.op_state(key) else {
            return Ok(true);
        };
        let turns = turn_of(op).and_then(|(fd, dir)| self.order.turns(fd, dir));
        let entry = match turns {
            Some(turns) => {
                if take && !turns.take(key) {
                    return Ok(false);
                }
                turn_sqe(op, parked, turns, &mut self.lending)
            }
            None => sqe_for(op),
        }
        .user_data(key.0 as u64);
        // SAFETY: the entry points into `ops[key]`'s heap buffers, which the core keeps until
        // `complete(key)` (the type's invariant).
        unsafe { self.push(&entry)? };
        self.in_flight += 1;
        Ok(true)
    }

    /// Starts the receive or send in `slot`: its SQE is built from the op where it is (it
    /// points only into the op's heap buffer, which stays where it is when the op moves) under
    /// the key the op then gets in the table. [`Driver::submit`] in one go, with no lookup.
    #[inline]
    fn start_stream_op(&mut self, ops: &mut Ops, slot: &mut Option<Op>, waker: &Waker) -> Started {
        let key = ops.vacant_key();
        let Some((op, (fd, dir))) = slot.as_mut().and_then(|op| turn_of(op).map(|t| (op, t)))
        else {
            return ops.start_in_table(slot, waker, |ops, key| self.submit(ops, key));
        };
        let Some(turns) = self.order.turns(fd, dir) else {
            return ops.start_in_table(slot, waker, |ops, key| self.submit(ops, key));
        };
        // Else queued behind the op of this socket and direction the kernel has.
        let entry = turns
            .take(key)
            .then(|| turn_sqe(op, false, turns, &mut self.lending).user_data(key.0 as u64));
        if let Some(entry) = entry {
            // SAFETY: the entry points only into the op's heap buffer, which the core keeps
            // (the op goes into the table under `key` right below) until `complete(key)`.
            if let Err(e) = unsafe { self.push(&entry) } {
                // Never reached the kernel: nothing waits behind it (it just took the turn).
                if let Some(turns) = self.order.turns(fd, dir) {
                    turns.current = None;
                    self.lending.release(turns);
                }
                return Started::Done(Err(e));
            }
            self.in_flight += 1;
        }
        let inserted = ops.insert_for_future(slot, waker);
        debug_assert_eq!(inserted, Some(key));
        Started::InFlight(key)
    }

    /// Some receive in the kernel holds a buffer: when a lending round is due, cancels those
    /// that waited long (see [`crate::lending`]). Gives the wait's timeout, cut to the next
    /// round.
    fn lend_idle_buffers(&mut self, ops: &Ops, timeout: Option<Duration>) -> Option<Duration> {
        let mut to_cancel = std::mem::take(&mut self.to_cancel);
        let cut = self
            .lending
            .round(ops, &mut self.order, &mut to_cancel, timeout);
        for key in to_cancel.drain(..) {
            // Not queued: the receive keeps its buffer until it completes (the ring is
            // failing anyway).
            self.queue_cancel(key.0 as u64);
        }
        self.to_cancel = to_cancel;
        cut
    }

    /// The POLL_ADD of a receive whose buffer is parked completed with `result`. False: the
    /// socket is readable, so the receive is submitted now, with a buffer.
    fn poll_of_parked_receive(
        &mut self,
        ops: &mut Ops,
        key: OpKey,
        result: io::Result<usize>,
        wanted: bool,
    ) -> bool {
        match (result, wanted) {
            (Ok(_), true) => {
                if let Some(Op::Recv { fd, .. }) = ops.op_mut(key) {
                    let fd = *fd;
                    self.set_readable(fd);
                }
                ops.unpark_buffer(key);
                false
            }
            // Its future was dropped: nothing was received, so nothing is lost.
            (Ok(_), false) => {
                ops.complete(key, Err(io::Error::from_raw_os_error(libc::ECANCELED)));
                true
            }
            (Err(e), _) => {
                ops.complete(key, Err(e));
                true
            }
        }
    }
}

/// True for the ops io_uring has no opcode for: their SQE is a poll for the op's readiness,
/// and the syscall (`loop_core::perform`) runs when the poll completes (again, if it would
/// still block).
fn needs_syscall_when_ready(op: &Op) -> bool {
    matches!(op, Op::SendFile { .. })
}

/// The SQE for `op`, which has the turn `turns` of its socket and direction (see
/// [`sqe_for`]). A receive that waited long waits for readiness holding no buffer (see
/// [`crate::lending`]; a poll interrupted by EINTR is submitted again as a poll); another
/// goes with its buffer, polling first unless the socket is likely readable.
#[inline]
fn turn_sqe(op: &mut Op, parked: bool, turns: &mut Turns, lending: &mut Lending) -> squeue::Entry {
    match op {
        Op::Recv { fd, .. } if parked => opcode::PollAdd::new(Fd(*fd), libc::POLLIN as u32).build(),
        Op::Recv { fd, buf } => {
            // Used up: the next receive polls first unless this one fills its buffer.
            let ioprio = if std::mem::take(&mut turns.readable) {
                0
            } else {
                RECVSEND_POLL_FIRST
            };
            if buf.is_empty() && buf.capacity() >= loop_core::PARK_MIN {
                lending.hold(turns);
            }
            recv_sqe(*fd, buf, ioprio)
        }
        Op::Send { fd, buf, pos } => send_sqe(*fd, buf, *pos),
        _ => sqe_for(op),
    }
}

/// The SEND of `buf` from `pos` on `fd`.
#[inline]
fn send_sqe(fd: i32, buf: &[u8], pos: usize) -> squeue::Entry {
    let rest = &buf[pos.min(buf.len())..];
    let len = rest.len().min(u32::MAX as usize) as u32;
    opcode::Send::new(Fd(fd), rest.as_ptr(), len)
        .flags(libc::MSG_NOSIGNAL)
        .build()
}

/// The RECV of `buf`'s spare capacity on `fd`.
#[inline]
fn recv_sqe(fd: i32, buf: &mut Vec<u8>, ioprio: u16) -> squeue::Entry {
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(u32::MAX as usize) as u32;
    opcode::Recv::new(Fd(fd), spare.as_mut_ptr().cast(), len)
        .ioprio(ioprio)
        .build()
}

/// The SQE for `op`, pointing into the op's heap-allocated buffers (a receive's polls first).
fn sqe_for(op: &mut Op) -> squeue::Entry {
    match op {
        Op::Accept { fd, addr, .. } => {
            addr.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let storage: *mut libc::sockaddr_storage = &mut addr.storage;
            opcode::Accept::new(Fd(*fd), storage.cast(), &mut addr.len)
                .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .build()
        }
        Op::Connect { sock, addr, .. } => {
            opcode::Connect::new(Fd(sock.as_raw_fd()), addr.as_ptr().cast(), addr.len()).build()
        }
        Op::Recv { fd, buf } => recv_sqe(*fd, buf, RECVSEND_POLL_FIRST),
        Op::Send { fd, buf, pos } => send_sqe(*fd, buf, *pos),
        Op::RecvFrom { fd, buf, msg } => {
            opcode::RecvMsg::new(Fd(*fd), msg.prepare_recv(buf)).build()
        }
        Op::SendTo { fd, buf, msg } => opcode::SendMsg::new(Fd(*fd), msg.prepare_send(buf))
            .flags(libc::MSG_NOSIGNAL as u32)
            .build(),
        // No sendfile in io_uring: wait until the socket is writable, then the syscall (see
        // `needs_syscall_when_ready`).
        Op::SendFile { sock, .. } => opcode::PollAdd::new(Fd(*sock), libc::POLLOUT as u32).build(),
        Op::Open { .. }
        | Op::Read { .. }
        | Op::Write { .. }
        | Op::Sync { .. }
        | Op::Statx { .. }
        | Op::Unlink { .. }
        | Op::Rename { .. }
        | Op::Mkdir { .. }
        | Op::Close { .. } => crate::files::sqe_for_file_op(op),
        Op::PollReadable { fd } => opcode::PollAdd::new(Fd(*fd), libc::POLLIN as u32).build(),
        Op::PollWritable { fd } => opcode::PollAdd::new(Fd(*fd), libc::POLLOUT as u32).build(),
    }
}

impl Driver for UringDriver {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn submit(&mut self, ops: &mut Ops, key: OpKey) -> io::Result<()> {
        // Ok(false): queued behind the op of this socket and direction the kernel has.
        let Err(e) = self.push_op(ops, key, true) else {
            return Ok(());
        };
        if let Some((fd, dir)) = ops.op_mut(key).and_then(|op| turn_of(op)) {
            self.pass_turn(ops, key, fd, dir);
        }
        Err(e)
    }

    fn start(&mut self, ops: &mut Ops, slot: &mut Option<Op>, waker: &Waker) -> Started {
        match slot {
            Some(Op::Recv { fd, buf }) if !self.has_received(*fd, buf.capacity()) => {
                // A new connection's receive waits without its buffer (a POLL_ADD first).
                ops.start_in_table(slot, waker, |ops, key| {
                    ops.park_buffer(key);
                    self.submit(ops, key)
                })
            }
            Some(Op::Recv { .. } | Op::Send { .. }) => self.start_stream_op(ops, slot, waker),
            _ => ops.start_in_table(slot, waker, |ops, key| self.submit(ops, key)),
        }
    }

    fn register_socket(&mut self, fd: RawFd) -> io::Result<()> {
        // A new socket: its first receive waits holding no buffer.
        if let Some(turns) = self.order.turns(fd, Direction::Read) {
            turns.received = false;
        }
        Ok(())
    }

    fn cancel(&mut self, ops: &mut Ops, key: OpKey) {
        if let Some((fd, dir)) = ops.op_mut(key).and_then(|op| turn_of(op)) {
            if self.order.withdraw(key, fd, dir) {
                // It never reached the kernel.
                ops.complete(key, Err(io::Error::from_raw_os_error(libc::ECANCELED)));
                return;
            }
            if let Some(turns) = self.order.turns(fd, dir)
                && turns.current == Some(key)
            {
                // Its future is done with it: its cancellation completes it, whoever asked.
                turns.idle_cancel = false;
            }
        }
        if self.queue_cancel(key.0 as u64) {
            self.flush_cancels();
        }
    }

    fn runs_file_ops(&self) -> bool {
        self.file_ops
    }

    fn poll(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> io::Result<()> {
        self.arm_wake()?;
        let timeout = match self.lending.any_held() {
            false => timeout,
            true => self.lend_idle_buffers(ops, timeout),
        };
        self.enter(timeout)?;
        self.reap(ops);
        Ok(())
    }

    fn waker(&self) -> DriverWaker {
        let fd = self.wake_fd.clone();
        Arc::new(move || {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to the eventfd. EAGAIN (counter full)
            // already means a wake-up is pending.
            let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        })
    }

    fn shutdown(&mut self, ops: &mut Ops) {
        // Every in-flight op holds a reference to its file (a listener with an accept pending
        // stays bound): cancel them all and wait for their completions, so that the files the
        // loop's users closed are really closed once `close()` returns, rather than whenever
        // the kernel's asynchronous teardown of the ring gets to them. Ops still waiting for
        // their turn never reached the kernel.
        for key in self.order.drain_waiting() {
            ops.complete(key, Err(io::Error::from_raw_os_error(libc::ECANCELED)));
        }
        for key in ops.pending_keys() {
            self.queue_cancel(key.0 as u64);
        }
        if self.wake_armed {
            self.queue_cancel(WAKE_TOKEN);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.in_flight > 0 || self.wake_armed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if self.enter(Some(deadline - now)).is_err() {
                break;
            }
            self.reap(ops);
        }
        if self.in_flight > 0 {
            // The kernel still owns these buffers: never free them.
            ops.forget_pending();
        }
        if self.wake_armed {
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
        }
    }
}
