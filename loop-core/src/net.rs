//! Socket operations with owned buffers (`sock_accept`, `sock_connect`, `sock_recv`,
//! `sock_sendall`), built on [`OpFuture`]: submit an [`Op`], await its completion, get the op
//! (and so its buffer) back.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use loop_api::{BufResult, LocalBoxFuture, SockAddr};

use crate::base_loop::IoCell;
use crate::driver::{Driver, Started};
use crate::op::{AddrBuf, MsgBuf, Op};
use crate::ops::{OpKey, Ops};
use crate::sys::set_nonblocking;

/// What an I/O primitive gives on a closed loop.
pub(crate) fn closed_error() -> io::Error {
    loop_api::closed_loop_io_error()
}

/// `sock_recv`'s rules before any receive: a buffer without capacity is `InvalidInput`, the
/// buffer is cleared, and bytes a cancelled receive left on the socket come first. `Some`: the
/// receive is answered without the OS. `ops` is `None` on a closed loop.
pub(crate) fn recv_without_os(
    ops: Option<&mut Ops>,
    fd: RawFd,
    buf: &mut Vec<u8>,
) -> Option<io::Result<usize>> {
    if buf.capacity() == 0 {
        return Some(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sock_recv needs a buffer with capacity: pass Vec::with_capacity(n)",
        )));
    }
    buf.clear();
    let ops = ops.filter(|ops| ops.has_leftovers())?;
    ops.take_received(fd, buf).map(Ok)
}

/// What a cancelled operation left for the next one on the same socket (see `Ops`), if any:
/// `take` runs only when something was left at all (the common case costs one check).
fn leftover<D: Driver, T>(
    io: &IoCell<D>,
    take: impl FnOnce(&mut crate::ops::Ops) -> Option<T>,
) -> Option<T> {
    let mut cell = io.borrow_mut();
    let state = cell.as_mut()?;
    if state.ops.has_leftovers() {
        take(&mut state.ops)
    } else {
        None
    }
}

enum OpState {
    Init(Op),
    Waiting(OpKey),
    Finished,
}

/// Runs one [`Op`] on the loop's driver. Resolves to the result and the op (with its buffers);
/// the op is `None` only if the loop was closed while it was in flight.
///
/// Dropping the future while the op is in flight cancels it; the op's buffers stay in the
/// loop's table until the driver reports the completion.
pub(crate) struct OpFuture<D: Driver> {
    io: IoCell<D>,
    state: OpState,
}

impl<D: Driver> OpFuture<D> {
    pub(crate) fn new(io: IoCell<D>, op: Op) -> Self {
        OpFuture {
            io,
            state: OpState::Init(op),
        }
    }
}

impl<D: Driver> Unpin for OpFuture<D> {}

impl<D: Driver> Future for OpFuture<D> {
    type Output = (io::Result<usize>, Option<Op>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut io = this.io.borrow_mut();
        match std::mem::replace(&mut this.state, OpState::Finished) {
            OpState::Init(op) => {
                let Some(io) = io.as_mut() else {
                    return Poll::Ready((Err(closed_error()), Some(op)));
                };
                let key = match io.driver.start(&mut io.ops, op) {
                    Started::Done(res, op) => return Poll::Ready((res, op)),
                    Started::InFlight(key) => key,
                };
                io.ops.set_waker(key, cx.waker());
                this.state = OpState::Waiting(key);
                Poll::Pending
            }
            OpState::Waiting(key) => {
                let Some(io) = io.as_mut() else {
                    return Poll::Ready((Err(closed_error()), None));
                };
                if let Some((res, op)) = io.ops.take_completed(key) {
                    return Poll::Ready((res, Some(op)));
                }
                io.ops.set_waker(key, cx.waker());
                this.state = OpState::Waiting(key);
                Poll::Pending
            }
            OpState::Finished => Poll::Ready((
                Err(io::Error::other("operation polled after it finished")),
                None,
            )),
        }
    }
}

impl<D: Driver> Drop for OpFuture<D> {
    fn drop(&mut self) {
        if let OpState::Waiting(key) = self.state
            && let Ok(mut io) = self.io.try_borrow_mut()
            && let Some(io) = io.as_mut()
            && io.ops.orphan(key)
        {
            io.driver.cancel(&mut io.ops, key);
        }
    }
}

pub(crate) fn sock_recv<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
    mut buf: Vec<u8>,
) -> LocalBoxFuture<(io::Result<usize>, Vec<u8>)> {
    Box::pin(async move {
        let early = {
            let mut cell = io.borrow_mut();
            recv_without_os(cell.as_mut().map(|state| &mut state.ops), fd, &mut buf)
        };
        if let Some(res) = early {
            return (res, buf);
        }
        match OpFuture::new(io, Op::Recv { fd, buf }).await {
            (res, Some(Op::Recv { buf, .. })) => (res, buf),
            (res, _) => (res, Vec::new()),
        }
    })
}

pub(crate) fn sock_sendall<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
    buf: Vec<u8>,
) -> LocalBoxFuture<(io::Result<()>, Vec<u8>)> {
    Box::pin(async move {
        let mut buf = buf;
        let mut pos = 0;
        while pos < buf.len() {
            match OpFuture::new(io.clone(), Op::Send { fd, buf, pos }).await {
                (Ok(n), Some(Op::Send { buf: b, .. })) => {
                    buf = b;
                    pos += n;
                }
                (Err(e), Some(Op::Send { buf: b, .. })) => return (Err(e), b),
                (Ok(_), _) => return (Err(closed_error()), Vec::new()),
                (Err(e), _) => return (Err(e), Vec::new()),
            }
        }
        (Ok(()), buf)
    })
}

pub(crate) fn sock_accept<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
) -> LocalBoxFuture<io::Result<(TcpStream, SocketAddr)>> {
    let accept = sock_accept_raw(io, fd);
    Box::pin(async move {
        let (conn, addr) = accept.await?;
        match addr.as_socket() {
            Some(peer) => Ok((TcpStream::from(conn), peer)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sock_accept: the listener is not a TCP (IPv4/IPv6) socket; use sock_accept_raw",
            )),
        }
    })
}

pub(crate) fn sock_accept_raw<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
) -> LocalBoxFuture<io::Result<(OwnedFd, SockAddr)>> {
    Box::pin(async move {
        {
            let mut cell = io.borrow_mut();
            let state = cell.as_mut().ok_or_else(closed_error)?;
            // Once per owned listener; every time for a borrowed one.
            state.driver.set_nonblocking(fd)?;
        }
        if let Some((conn, addr)) = leftover(&io, |ops| ops.take_accepted(fd)) {
            return Ok((conn, addr_of(&addr)));
        }
        let op = Op::Accept {
            fd,
            addr: AddrBuf::new_boxed(),
        };
        match OpFuture::new(io, op).await {
            (Ok(new_fd), op) => {
                // SAFETY: accept4 just returned `new_fd`; nothing else owns it.
                let conn = unsafe { OwnedFd::from_raw_fd(new_fd as RawFd) };
                match op {
                    Some(Op::Accept { addr, .. }) => Ok((conn, addr_of(&addr))),
                    // The loop closed: the connection is closed with `conn`.
                    _ => Err(closed_error()),
                }
            }
            (Err(e), _) => Err(e),
        }
    })
}

fn addr_of(addr: &AddrBuf) -> SockAddr {
    // SAFETY: `storage` holds `len` bytes of a socket address written by the kernel.
    unsafe { SockAddr::new(addr.storage, addr.len) }
}

pub(crate) fn sock_connect<D: Driver>(
    io: IoCell<D>,
    addr: SocketAddr,
) -> LocalBoxFuture<io::Result<TcpStream>> {
    Box::pin(async move {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        let fd = sock_connect_raw(io, OwnedFd::from(sock), SockAddr::from(addr)).await?;
        Ok(TcpStream::from(fd))
    })
}

pub(crate) fn sock_connect_raw<D: Driver>(
    io: IoCell<D>,
    sock: OwnedFd,
    addr: SockAddr,
) -> LocalBoxFuture<io::Result<OwnedFd>> {
    Box::pin(async move {
        set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&sock))?;
        let op = Op::Connect {
            sock,
            addr: Box::new(addr),
            started: false,
        };
        match OpFuture::new(io, op).await {
            (Ok(_), Some(Op::Connect { sock, .. })) => Ok(sock),
            (Ok(_), _) => Err(closed_error()),
            (Err(e), _) => Err(e),
        }
    })
}

pub(crate) fn sock_send<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
    buf: Vec<u8>,
) -> LocalBoxFuture<BufResult<usize>> {
    Box::pin(async move {
        if buf.is_empty() {
            return (Ok(0), buf);
        }
        match OpFuture::new(io, Op::Send { fd, buf, pos: 0 }).await {
            (res, Some(Op::Send { buf, .. })) => (res, buf),
            (res, _) => (res, Vec::new()),
        }
    })
}

pub(crate) fn sock_recvfrom<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
    mut buf: Vec<u8>,
) -> LocalBoxFuture<BufResult<(usize, SockAddr)>> {
    Box::pin(async move {
        if buf.capacity() == 0 {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "sock_recvfrom needs a buffer with capacity: pass Vec::with_capacity(n)",
            );
            return (Err(e), buf);
        }
        buf.clear();
        if let Some(found) = leftover(&io, |ops| ops.take_datagram(fd, &mut buf)) {
            return (Ok(found), buf);
        }
        let op = Op::RecvFrom {
            fd,
            buf,
            msg: MsgBuf::new_boxed(),
        };
        match OpFuture::new(io, op).await {
            (Ok(n), Some(Op::RecvFrom { buf, msg, .. })) => (Ok((n, msg.peer())), buf),
            (Err(e), Some(Op::RecvFrom { buf, .. })) => (Err(e), buf),
            (Ok(_), _) => (Err(closed_error()), Vec::new()),
            (Err(e), _) => (Err(e), Vec::new()),
        }
    })
}

pub(crate) fn sock_sendto<D: Driver>(
    io: IoCell<D>,
    fd: RawFd,
    buf: Vec<u8>,
    addr: SockAddr,
) -> LocalBoxFuture<BufResult<usize>> {
    Box::pin(async move {
        let op = Op::SendTo {
            fd,
            buf,
            msg: MsgBuf::to_addr(&addr),
        };
        match OpFuture::new(io, op).await {
            (res, Some(Op::SendTo { buf, .. })) => (res, buf),
            (res, _) => (res, Vec::new()),
        }
    })
}

/// sendfile(2) on a non-blocking socket, waiting for writability (as a poll op, so it works on
/// every driver) whenever the socket is full.
pub(crate) fn sock_sendfile<D: Driver>(
    io: IoCell<D>,
    sock: RawFd,
    file: RawFd,
    offset: u64,
    count: Option<u64>,
) -> LocalBoxFuture<io::Result<u64>> {
    Box::pin(async move {
        let mut sent = 0u64;
        let mut off = offset;
        loop {
            let want = match count {
                Some(c) => c - sent,
                None => 1 << 30,
            };
            if want == 0 {
                return Ok(sent);
            }
            match crate::sys::sendfile(sock, file, &mut off, want.min(1 << 30) as usize) {
                Ok(0) => return Ok(sent),
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    OpFuture::new(io.clone(), Op::PollWritable { fd: sock })
                        .await
                        .0?;
                }
                Err(e) => return Err(e),
            }
        }
    })
}
