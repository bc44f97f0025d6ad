//! The core's operation path: [`AbstractEventLoop`](loop_api::AbstractEventLoop)'s
//! `start_op`/`poll_op`/`drop_op`, which every `sock_*` method and loop-net socket runs
//! through. An op goes straight to the driver, after the rules every loop applies the same
//! way (see [`Op`]); only one that has to wait enters the [`Ops`] table.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use loop_api::{Op, OpId, OpPoll};

use crate::driver::{Driver, ParkKey, Started};
use crate::io::{Io, IoCell};
use crate::ops::{OpKey, Orphaned};
use crate::sys::set_nonblocking;

/// What an I/O primitive gives on a closed loop.
pub(crate) fn closed_error() -> io::Error {
    loop_api::closed_loop_io_error()
}

/// The rules of [`Op`] applied before the OS sees `op`: `Some` answers it without the OS (a
/// bad buffer, leftovers of a cancelled operation, an empty send); the op stays in place.
fn prepare<D: Driver>(io: &mut Io<D>, op: &mut Op) -> Option<io::Result<usize>> {
    match op {
        Op::Recv { fd, buf } => {
            if let Err(e) = check_receive_buffer("sock_recv", buf) {
                return Some(Err(e));
            }
            io.ops.take_received(*fd, buf).map(Ok)
        }
        Op::RecvFrom { fd, buf, msg } => {
            if let Err(e) = check_receive_buffer("sock_recvfrom", buf) {
                return Some(Err(e));
            }
            io.ops.take_datagram(*fd, buf, msg).map(Ok)
        }
        Op::Send { buf, pos, .. } if *pos >= buf.len() => Some(Ok(0)),
        Op::Send { .. } => None,
        // A readiness driver makes the listener non-blocking before it calls accept(2)
        // itself; a completion driver needs no such thing.
        Op::Accept { fd, addr, conn } => {
            let (left_conn, left_addr) = io.ops.take_accepted(*fd)?;
            **addr = *left_addr;
            let raw = left_conn.as_raw_fd() as usize;
            *conn = Some(left_conn);
            Some(Ok(raw))
        }
        Op::Connect { sock, .. } => set_nonblocking(sock.as_raw_fd()).err().map(Err),
        _ if op.is_file_op() && !io.driver.runs_file_ops() => {
            Some(Err(file_ops_unsupported(io.driver.name())))
        }
        _ => None,
    }
}

/// What a loop whose driver does not run file operations answers them.
pub(crate) fn file_ops_unsupported(backend: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "the {backend} loop does not run file operations natively (EventLoop::runs_file_ops \
             is false): use loop-fs, which runs them on the loop's executor"
        ),
    )
}

/// A receive needs a buffer with capacity; it is cleared first.
#[inline(always)]
fn check_receive_buffer(what: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.capacity() == 0 {
        return Err(no_capacity(what));
    }
    buf.clear();
    Ok(())
}

#[cold]
fn no_capacity(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} needs a buffer with capacity: pass Vec::with_capacity(n)"),
    )
}

/// The bit of an [`OpId`] that names a parked op ([`Started::Parked`]) rather than a key of
/// the table.
const PARKED: u64 = 1 << 63;

fn key_of(id: OpId) -> OpKey {
    OpKey(id.0 as usize)
}

fn park_key_of(id: OpId) -> Option<ParkKey> {
    (id.0 & PARKED != 0).then_some(ParkKey(id.0 & !PARKED))
}

/// Wakes what a driver, called outside its `poll` (a parked op's turn passing to the ops
/// queued behind it, a released socket), completed: after the loop's I/O part is released.
pub(crate) fn wake_stray<D: Driver>(mut cell: std::cell::RefMut<'_, Option<Io<D>>>) {
    let mut wakers = Vec::new();
    if let Some(io) = cell.as_mut()
        && io.ops.has_wakers()
    {
        io.ops.drain_wakers(&mut wakers);
    }
    drop(cell);
    wakers.into_iter().for_each(std::task::Waker::wake);
}

/// `start_op`: the rules, then the driver; an op that has to wait moves into the table
/// (once), one that finishes at once stays in the caller's slot.
pub(crate) fn start<D: Driver>(
    io: &IoCell<D>,
    slot: &mut Option<Op>,
    cx: &mut Context<'_>,
) -> OpPoll {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return OpPoll::Failed(closed_error());
    };
    let Some(op) = slot.as_mut() else {
        return OpPoll::Failed(io::Error::other("start_op: no operation given"));
    };
    if let Some(res) = prepare(io, op) {
        return res.into();
    }
    match io.driver.start(&mut io.ops, slot, cx.waker()) {
        Started::Done(res) => {
            if let Some(op) = slot.as_mut() {
                crate::ops::own_result(op, &res);
            }
            res.into()
        }
        // The driver gave the op its future's waker.
        Started::InFlight(key) => OpPoll::Pending(OpId(key.0 as u64)),
        Started::Parked(key) => OpPoll::Pending(OpId(PARKED | key.0)),
    }
}

/// `try_sock_send`: the driver's send from a borrowed slice, if it can make one at once (an
/// empty send, or a closed or busy loop, goes the op's way).
pub(crate) fn try_send<D: Driver>(
    io: &IoCell<D>,
    fd: std::os::fd::RawFd,
    src: &[u8],
) -> Option<io::Result<usize>> {
    if src.is_empty() {
        return None;
    }
    let mut cell = io.try_borrow_mut().ok()?;
    cell.as_mut()?.driver.try_send(fd, src)
}

/// `poll_op`: the result once the driver reported it; the op goes back to the caller's slot.
pub(crate) fn poll<D: Driver>(
    io: &IoCell<D>,
    id: OpId,
    slot: &mut Option<Op>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return Poll::Ready(Err(closed_error()));
    };
    if let Some(park) = park_key_of(id) {
        let polled = io.driver.poll_parked(&mut io.ops, park, slot, cx.waker());
        if let (Poll::Ready(res), Some(op)) = (&polled, slot.as_mut()) {
            crate::ops::own_result(op, res);
        }
        if io.ops.has_wakers() {
            wake_stray(cell);
        }
        return polled;
    }
    let key = key_of(id);
    if let Some((res, op)) = io.ops.take_completed(key) {
        *slot = Some(op);
        return Poll::Ready(res);
    }
    if !io.ops.is_pending(key) {
        let e = io::Error::other(format!("poll_op: no operation {} on this loop", id.0));
        return Poll::Ready(Err(e));
    }
    io.ops.set_waker(key, cx.waker());
    Poll::Pending
}

/// `drop_op`: cancels the op; the table keeps it (and its buffers) until its completion.
pub(crate) fn drop_op<D: Driver>(io: &IoCell<D>, id: OpId) {
    if let Ok(mut cell) = io.try_borrow_mut()
        && let Some(io) = cell.as_mut()
    {
        if let Some(park) = park_key_of(id) {
            io.driver.unpark(&mut io.ops, park);
            if io.ops.has_wakers() {
                wake_stray(cell);
            }
            return;
        }
        let key = key_of(id);
        match io.ops.orphan(key) {
            Orphaned::InFlight => io.driver.cancel(&mut io.ops, key),
            // Its completion takes what the dropped op left.
            Orphaned::HandOver(next) => io.driver.cancel(&mut io.ops, next),
            Orphaned::WakeParked(fd, dir) => io.driver.wake_parked(&mut io.ops, fd, dir),
            Orphaned::Done => {}
        }
        if io.ops.has_wakers() {
            wake_stray(cell);
        }
    }
}
