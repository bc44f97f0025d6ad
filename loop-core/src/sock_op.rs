//! The allocation-free primitives behind `EventLoop::sock_recv`/`sock_sendall`
//! (`AbstractEventLoop::start_sock_op` and friends): the op goes straight to the driver, and
//! only one that has to wait enters the [`Ops`](crate::Ops) table.

use std::io;
use std::task::{Context, Poll};

use loop_api::{SockOp, SockOpId, SockOpPoll};

use crate::base_loop::IoCell;
use crate::driver::{Driver, Started};
use crate::net::{closed_error, recv_without_os};
use crate::op::Op;
use crate::ops::OpKey;

fn to_op(op: SockOp) -> Op {
    match op {
        SockOp::Recv { fd, buf } => Op::Recv { fd, buf },
        SockOp::Send { fd, buf, pos } => Op::Send { fd, buf, pos },
    }
}

/// The op back as the caller's type (the core only ever holds Recv/Send for these).
fn to_sock_op(op: Op) -> Option<SockOp> {
    match op {
        Op::Recv { fd, buf } => Some(SockOp::Recv { fd, buf }),
        Op::Send { fd, buf, pos } => Some(SockOp::Send { fd, buf, pos }),
        _ => None,
    }
}

fn key_of(id: SockOpId) -> OpKey {
    OpKey(id.0 as usize)
}

pub(crate) fn start<D: Driver>(io: &IoCell<D>, op: SockOp, cx: &mut Context<'_>) -> SockOpPoll {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return SockOpPoll::Done(Err(closed_error()), Some(op));
    };
    let op = match op {
        SockOp::Recv { fd, mut buf } => {
            if let Some(res) = recv_without_os(Some(&mut io.ops), fd, &mut buf) {
                return SockOpPoll::Done(res, Some(SockOp::Recv { fd, buf }));
            }
            Op::Recv { fd, buf }
        }
        send => to_op(send),
    };
    match io.driver.start(&mut io.ops, op) {
        Started::Done(res, op) => SockOpPoll::Done(res, op.and_then(to_sock_op)),
        Started::InFlight(key) => {
            io.ops.set_waker(key, cx.waker());
            SockOpPoll::Pending(SockOpId(key.0 as u64))
        }
    }
}

pub(crate) fn poll<D: Driver>(
    io: &IoCell<D>,
    id: SockOpId,
    cx: &mut Context<'_>,
) -> Poll<(io::Result<usize>, Option<SockOp>)> {
    let mut cell = io.borrow_mut();
    let Some(io) = cell.as_mut() else {
        return Poll::Ready((Err(closed_error()), None));
    };
    let key = key_of(id);
    match io.ops.take_completed(key) {
        Some((res, op)) => Poll::Ready((res, to_sock_op(op))),
        None => {
            io.ops.set_waker(key, cx.waker());
            Poll::Pending
        }
    }
}

pub(crate) fn drop_op<D: Driver>(io: &IoCell<D>, id: SockOpId) {
    if let Ok(mut cell) = io.try_borrow_mut()
        && let Some(io) = cell.as_mut()
    {
        let key = key_of(id);
        if io.ops.orphan(key) {
            io.driver.cancel(&mut io.ops, key);
        }
    }
}
