//! The allocation-free path of `sock_recv` and `sock_sendall`: plain data ([`SockOp`]) and three
//! object-safe primitives of [`AbstractEventLoop`] (`start_sock_op`, `poll_sock_op`,
//! `drop_sock_op`) instead of a boxed future per call.
//!
//! A loop that does not implement the primitives answers [`SockOpPoll::Unsupported`], and the
//! futures here fall back to its boxed `sock_recv`/`sock_sendall`.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use crate::abstract_loop::AbstractEventLoop;
use crate::{BufResult, LocalBoxFuture};

/// A socket operation with its owned buffer.
#[derive(Debug)]
pub enum SockOp {
    /// Receive into `buf`'s spare capacity (its length is set to the count).
    Recv {
        /// The socket.
        fd: RawFd,
        /// The buffer.
        buf: Vec<u8>,
    },
    /// Send `buf[pos..]` once; the result is the count sent (maybe fewer bytes).
    Send {
        /// The socket.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// Where in `buf` to start.
        pos: usize,
    },
}

impl SockOp {
    fn into_buf(self) -> Vec<u8> {
        match self {
            SockOp::Recv { buf, .. } | SockOp::Send { buf, .. } => buf,
        }
    }
}

/// An operation in flight on a loop, named by the loop (see
/// [`AbstractEventLoop::start_sock_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockOpId(pub u64);

/// What [`AbstractEventLoop::start_sock_op`] did.
#[derive(Debug)]
pub enum SockOpPoll {
    /// Finished: the result and the op with its buffer (`None` if the loop lost it, e.g. it
    /// was closed while the op was in flight).
    Done(io::Result<usize>, Option<SockOp>),
    /// In flight: the caller's waker is woken at completion; then call `poll_sock_op`, or
    /// `drop_sock_op` to give it up.
    Pending(SockOpId),
    /// The loop has no allocation-free path: the op is given back untouched.
    Unsupported(SockOp),
}

enum State {
    Start(SockOp),
    Waiting(SockOpId),
    Fallback(LocalBoxFuture<(io::Result<usize>, Option<SockOp>)>),
    Finished,
}

/// One [`SockOp`] on a loop, as a future. It holds the loop weakly: a future kept in one of
/// the loop's own tasks must not keep the loop alive (the loop owns the task), and once the
/// loop is gone the future gives the closed-loop error.
struct OpFuture {
    lp: Weak<dyn AbstractEventLoop>,
    state: State,
}

impl OpFuture {
    fn new(lp: &Rc<dyn AbstractEventLoop>, op: SockOp) -> Self {
        OpFuture {
            lp: Rc::downgrade(lp),
            state: State::Start(op),
        }
    }

    fn poll_op(&mut self, cx: &mut Context<'_>) -> Poll<(io::Result<usize>, Option<SockOp>)> {
        let Some(lp) = self.lp.upgrade() else {
            let op = match std::mem::replace(&mut self.state, State::Finished) {
                State::Start(op) => Some(op),
                _ => None,
            };
            return Poll::Ready((Err(crate::error::closed_loop_io_error()), op));
        };
        // The waiting state is polled in place: no move of the state per poll.
        match &mut self.state {
            State::Waiting(id) => {
                let polled = lp.poll_sock_op(*id, cx);
                if polled.is_ready() {
                    self.state = State::Finished;
                }
                return polled;
            }
            State::Fallback(fut) => {
                let polled = fut.as_mut().poll(cx);
                if polled.is_ready() {
                    self.state = State::Finished;
                }
                return polled;
            }
            State::Start(_) => {}
            State::Finished => {
                let e = io::Error::other("socket operation polled after it finished");
                return Poll::Ready((Err(e), None));
            }
        }
        let State::Start(op) = std::mem::replace(&mut self.state, State::Finished) else {
            unreachable!("matched just above")
        };
        match lp.start_sock_op(op, cx) {
            SockOpPoll::Done(res, op) => Poll::Ready((res, op)),
            SockOpPoll::Pending(id) => {
                self.state = State::Waiting(id);
                Poll::Pending
            }
            SockOpPoll::Unsupported(op) => {
                let mut fut = fallback(&*lp, op);
                let polled = fut.as_mut().poll(cx);
                if polled.is_pending() {
                    self.state = State::Fallback(fut);
                }
                polled
            }
        }
    }
}

impl Drop for OpFuture {
    fn drop(&mut self) {
        if let State::Waiting(id) = self.state
            && let Some(lp) = self.lp.upgrade()
        {
            lp.drop_sock_op(id);
        }
    }
}

/// The boxed primitives, for a loop without the allocation-free path.
fn fallback(
    lp: &dyn AbstractEventLoop,
    op: SockOp,
) -> LocalBoxFuture<(io::Result<usize>, Option<SockOp>)> {
    match op {
        SockOp::Recv { fd, buf } => {
            let fut = lp.sock_recv(fd, buf);
            Box::pin(async move {
                let (res, buf) = fut.await;
                (res, Some(SockOp::Recv { fd, buf }))
            })
        }
        SockOp::Send { fd, buf, pos } => {
            let fut = lp.sock_send(fd, buf[pos.min(buf.len())..].to_vec());
            Box::pin(async move {
                let (res, _) = fut.await;
                (res, Some(SockOp::Send { fd, buf, pos }))
            })
        }
    }
}

/// The future of `EventLoop::sock_recv`.
pub(crate) struct SockRecv {
    op: OpFuture,
}

impl SockRecv {
    pub(crate) fn new(lp: &Rc<dyn AbstractEventLoop>, fd: RawFd, buf: Vec<u8>) -> Self {
        SockRecv {
            op: OpFuture::new(lp, SockOp::Recv { fd, buf }),
        }
    }
}

impl Future for SockRecv {
    type Output = BufResult<usize>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.op
            .poll_op(cx)
            .map(|(res, op)| (res, op.map(SockOp::into_buf).unwrap_or_default()))
    }
}

impl fmt::Debug for SockRecv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SockRecv")
    }
}

/// The future of `EventLoop::sock_sendall`: sends until every byte is out.
pub(crate) struct SockSendAll {
    op: OpFuture,
}

impl SockSendAll {
    pub(crate) fn new(lp: &Rc<dyn AbstractEventLoop>, fd: RawFd, buf: Vec<u8>) -> Self {
        SockSendAll {
            op: OpFuture::new(lp, SockOp::Send { fd, buf, pos: 0 }),
        }
    }
}

impl Future for SockSendAll {
    type Output = BufResult<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            if let State::Start(SockOp::Send { buf, pos, .. }) = &this.op.state
                && *pos >= buf.len()
            {
                let State::Start(op) = std::mem::replace(&mut this.op.state, State::Finished)
                else {
                    unreachable!("matched just above")
                };
                return Poll::Ready((Ok(()), op.into_buf()));
            }
            match this.op.poll_op(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready((Ok(n), Some(SockOp::Send { fd, buf, pos }))) => {
                    this.op.state = State::Start(SockOp::Send {
                        fd,
                        buf,
                        pos: pos + n,
                    });
                }
                Poll::Ready((Err(e), op)) => {
                    return Poll::Ready((Err(e), op.map(SockOp::into_buf).unwrap_or_default()));
                }
                Poll::Ready((Ok(_), _)) => {
                    let e = crate::error::closed_loop_io_error();
                    return Poll::Ready((Err(e), Vec::new()));
                }
            }
        }
    }
}

impl fmt::Debug for SockSendAll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SockSendAll")
    }
}
