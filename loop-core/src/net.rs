//! The core's operation path: [`AbstractEventLoop`](loop_api::AbstractEventLoop)'s
//! `start_op`/`poll_op`/`drop_op`, which every `sock_*` method and loop-net socket runs
//! through. An op goes straight to the driver, after the rules every loop applies the same
//! way (see [`Op`]); only one that has to wait enters the [`Ops`] table.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use loop_api::{Op, OpId, OpPoll};

use crate::driver::{Driver, Started};
use crate::io::{Io, IoCell};
use crate::ops::OpKey;
use crate::sys::set_nonblocking;

/// What an I/O primitive gives on a closed loop.
pub(crate) fn closed_error() -> io::Error {
    loop_api::closed_loop_io_error()
}

/// The rules of [`Op`] applied before the OS sees `op`: `Err` gives the op back finished
/// (answered without the OS: a bad buffer, leftovers of a cancelled operation, an empty send).
fn prepare<D: Driver>(io: &mut Io<D>, mut op: Op) -> Result<Op, (io::Result<usize>, Op)> {
    match &mut op {
        Op::Recv { fd, buf } => {
            let fd = *fd;
            if let Err(e) = check_receive_buffer("sock_recv", buf) {
                return Err((Err(e), op));
            }
            match io.ops.take_received(fd, buf) {
                Some(n) => Err((Ok(n), op)),
                None => Ok(op),
            }
        }
        Op::RecvFrom { fd, buf, msg } => {
            let fd = *fd;
            if let Err(e) = check_receive_buffer("sock_recvfrom", buf) {
                return Err((Err(e), op));
            }
            match io.ops.take_datagram(fd, buf, msg) {
                Some(n) => Err((Ok(n), op)),
                None => Ok(op),
            }
        }
        Op::Send { buf, pos, .. } if *pos >= buf.len() => Err((Ok(0), op)),
        // A readiness driver makes the listener non-blocking before it calls accept(2)
        // itself; a completion driver needs no such thing.
        Op::Accept { fd, addr, conn } => match io.ops.take_accepted(*fd) {
            Some((left_conn, left_addr)) => {
                **addr = *left_addr;
                let raw = left_conn.as_raw_fd() as usize;
                *conn = Some(left_conn);
                Err((Ok(raw), op))
            }
            None => Ok(op),
        },
        Op::Connect { sock, .. } => match set_nonblocking(sock.as_raw_fd()) {
            Ok(()) => Ok(op),
            Err(e) => Err((Err(e), op)),
        },
        _ => Ok(op),
    }
}

/// A receive needs a buffer with capacity; it is cleared first.
fn check_receive_buffer(what: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.capacity() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} needs a buffer with capacity: pass Vec::with_capacity(n)"),
        ));
    }
    buf.clear();
    Ok(())
}

fn key_of(id: OpId) -> OpKey {
    OpKey(id.0 as usize)
}

/// `start_op`: the rules, then the driver; an op that has to wait waits in the table.
pub(crate) fn start<D: Driver>(io: &IoCell<D>, op: Op, cx: &mut Context<'_>) -> OpPoll {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return OpPoll::Done(Err(closed_error()), Some(op));
    };
    let op = match prepare(io, op) {
        Ok(op) => op,
        Err((res, op)) => return OpPoll::Done(res, Some(op)),
    };
    match io.driver.start(&mut io.ops, op) {
        Started::Done(res, mut op) => {
            if let Some(op) = &mut op {
                crate::ops::own_result(op, &res);
            }
            OpPoll::Done(res, op)
        }
        Started::InFlight(key) => {
            io.ops.set_waker(key, cx.waker());
            OpPoll::Pending(OpId(key.0 as u64))
        }
    }
}

/// `poll_op`: the result once the driver reported it.
pub(crate) fn poll<D: Driver>(
    io: &IoCell<D>,
    id: OpId,
    cx: &mut Context<'_>,
) -> Poll<(io::Result<usize>, Option<Op>)> {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return Poll::Ready((Err(closed_error()), None));
    };
    let key = key_of(id);
    if let Some((res, op)) = io.ops.take_completed(key) {
        return Poll::Ready((res, Some(op)));
    }
    if !io.ops.is_pending(key) {
        let e = io::Error::other(format!("poll_op: no operation {} on this loop", id.0));
        return Poll::Ready((Err(e), None));
    }
    io.ops.set_waker(key, cx.waker());
    Poll::Pending
}

/// `drop_op`: cancels the op; the table keeps it (and its buffers) until its completion.
pub(crate) fn drop_op<D: Driver>(io: &IoCell<D>, id: OpId) {
    if let Ok(mut cell) = io.try_borrow_mut()
        && let Some(io) = cell.as_mut()
    {
        let key = key_of(id);
        if io.ops.orphan(key) {
            io.driver.cancel(&mut io.ops, key);
        }
    }
}
