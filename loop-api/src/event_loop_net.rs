//! asyncio's low-level socket API on [`EventLoop`]: `sock_accept`, `sock_connect`,
//! `sock_recv`, `sock_recv_into`, `sock_send`, `sock_sendall`, `sock_recvfrom`,
//! `sock_sendto`, `sock_sendfile`. Each builds an [`Op`] and runs it with the one
//! [`OpFuture`]; none allocates beyond what the op itself owns.

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::closed_loop_io_error;
use crate::op::{AddrBuf, MsgBuf, Op, OpFuture};
use crate::{BufResult, EventLoop, SockAddr};

/// How much the `sock_sendfile` fallback reads at a time.
const SENDFILE_CHUNK: usize = 256 * 1024;

/// The most one sendfile(2) is asked for (it sends what the socket takes anyway).
const SENDFILE_MAX: u64 = 1 << 30;

/// The future of [`EventLoop::sock_recv`]: the count and the buffer.
pub struct SockRecv {
    op: OpFuture,
}

impl SockRecv {
    /// The receive `op` runs (an [`Op::Recv`], from [`EventLoop::run_op`] or
    /// [`WeakEventLoop::run_op`](crate::WeakEventLoop::run_op)), giving the buffer back.
    pub fn new(op: OpFuture) -> Self {
        SockRecv { op }
    }
}

impl Future for SockRecv {
    type Output = BufResult<usize>;

    // Inlined into the awaiting future: a frame of its own was a third of its cost.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let op = &mut self.op;
        op.poll_in_place(cx).map(|res| {
            let buf = match op.op_mut() {
                Some(Op::Recv { buf, .. }) => {
                    let buf = std::mem::take(buf);
                    op.forget_spent_op();
                    buf
                }
                _ => Vec::new(),
            };
            (res, buf)
        })
    }
}

impl fmt::Debug for SockRecv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SockRecv")
    }
}

/// The future of [`EventLoop::sock_sendall`]: sends until every byte is out.
pub struct SockSendAll {
    op: OpFuture,
}

impl SockSendAll {
    /// Sends until every byte of the [`Op::Send`] that `op` runs is out.
    pub fn new(op: OpFuture) -> Self {
        SockSendAll { op }
    }
}

impl Future for SockSendAll {
    type Output = BufResult<()>;

    // Inlined into the awaiting future: a frame of its own was a third of its cost.
    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let op = &mut self.op;
        loop {
            // The op stays in the future between sends: only its position moves.
            if let Some(Op::Send { buf, pos, .. }) = op.op_mut()
                && *pos >= buf.len()
            {
                return Poll::Ready((Ok(()), std::mem::take(buf)));
            }
            match op.poll_in_place(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(res) => match (res, op.op_mut()) {
                    (Ok(n), Some(Op::Send { pos, buf, .. })) => {
                        *pos += n;
                        if *pos >= buf.len() {
                            let buf = std::mem::take(buf);
                            op.forget_spent_op();
                            return Poll::Ready((Ok(()), buf));
                        }
                        op.restart();
                    }
                    (Err(e), _) => {
                        let buf = op.take_op().map(Op::into_buf).unwrap_or_default();
                        return Poll::Ready((Err(e), buf));
                    }
                    (Ok(_), _) => {
                        return Poll::Ready((Err(closed_loop_io_error()), Vec::new()));
                    }
                },
            }
        }
    }
}

impl fmt::Debug for SockSendAll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SockSendAll")
    }
}

/// The connection an `Accept` op gave: the new socket and the peer's address.
fn accepted(res: io::Result<usize>, op: Option<Op>) -> io::Result<(OwnedFd, SockAddr)> {
    res?;
    match op {
        Some(Op::Accept {
            addr,
            conn: Some(conn),
            ..
        }) => Ok((conn, addr.to_sock_addr())),
        // The loop lost the op (it closed).
        _ => Err(closed_loop_io_error()),
    }
}

impl crate::WeakEventLoop {
    /// Runs `op` on this loop if it still exists when the future is first polled (else the
    /// future gives the closed-loop error). The future holds the loop weakly, as every
    /// operation's future does.
    pub fn run_op(&self, op: Op) -> OpFuture {
        OpFuture::new_weak(self.inner.clone(), op)
    }

    /// [`AbstractEventLoop::try_sock_send`](crate::AbstractEventLoop::try_sock_send) on this
    /// loop: a send from `src` at once, or `None` (also when the loop is gone: the op then
    /// gives the closed-loop error).
    #[inline]
    pub fn try_sock_send(&self, fd: RawFd, src: &[u8]) -> Option<io::Result<usize>> {
        self.inner.upgrade()?.try_sock_send(fd, src)
    }
}

impl EventLoop {
    /// Runs `op` on this loop: the one future behind every `sock_*` method, for operations of
    /// your own (see [`Op`]).
    pub fn run_op(&self, op: Op) -> OpFuture {
        OpFuture::new(&self.inner, op)
    }

    /// Accepts a connection on `l` (which the loop makes non-blocking).
    pub fn sock_accept(
        &self,
        l: &TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + use<> {
        let accept = self.sock_accept_raw(l);
        async move {
            let (conn, addr) = accept.await?;
            match addr.as_socket() {
                Some(peer) => Ok((TcpStream::from(conn), peer)),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sock_accept: the listener is not a TCP (IPv4/IPv6) socket; use sock_accept_raw",
                )),
            }
        }
    }

    /// Accepts a connection on any listening socket (TCP or Unix): the new socket,
    /// non-blocking and close-on-exec, with the peer's address.
    pub fn sock_accept_raw<L: AsRawFd>(
        &self,
        l: &L,
    ) -> impl Future<Output = io::Result<(OwnedFd, SockAddr)>> + use<L> {
        let op = self.run_op(Op::Accept {
            fd: l.as_raw_fd(),
            addr: AddrBuf::new_boxed(),
            conn: None,
        });
        async move {
            let (res, op) = op.await;
            accepted(res, op)
        }
    }

    /// Connects to `addr` without blocking the loop.
    pub fn sock_connect(
        &self,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<TcpStream>> + use<> {
        let lp = self.downgrade();
        async move {
            let sock = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            let lp = lp.upgrade().ok_or_else(closed_loop_io_error)?;
            let connect = lp.sock_connect_raw(OwnedFd::from(sock), SockAddr::from(addr));
            drop(lp);
            Ok(TcpStream::from(connect.await?))
        }
    }

    /// Connects `sock` (a socket the caller made, of `addr`'s family; the loop makes it
    /// non-blocking) to `addr` and gives it back connected (dropping the future closes it).
    pub fn sock_connect_raw(
        &self,
        sock: OwnedFd,
        addr: SockAddr,
    ) -> impl Future<Output = io::Result<OwnedFd>> + use<> {
        let op = self.run_op(Op::Connect {
            sock,
            addr: Box::new(addr),
        });
        async move {
            match op.await {
                (Ok(_), Some(Op::Connect { sock, .. })) => Ok(sock),
                (Ok(_), _) => Err(closed_loop_io_error()),
                (Err(e), _) => Err(e),
            }
        }
    }

    /// Receives up to `buf.capacity()` bytes into `buf` (its length becomes the count; 0 means
    /// the peer closed). A buffer of the same capacity is returned in every case: once the
    /// receive has waited [`IDLE_RECEIVE_AFTER`](crate::IDLE_RECEIVE_AFTER) for data the loop
    /// holds no buffer for it (see [`Op::Recv`]), so it may be another allocation than the
    /// one given.
    pub fn sock_recv(&self, s: &TcpStream, buf: Vec<u8>) -> SockRecv {
        SockRecv {
            op: self.run_op(Op::Recv {
                fd: s.as_raw_fd(),
                buf,
            }),
        }
    }

    /// Receives into the caller's buffer (asyncio's `sock_recv_into`). Safe on every backend:
    /// the loop receives into a buffer of its own and copies, so nothing the kernel may still
    /// write to is borrowed from the caller.
    ///
    /// # Errors
    /// The receive's error.
    pub async fn sock_recv_into(&self, s: &impl AsRawFd, dst: &mut [u8]) -> io::Result<usize> {
        let recv = SockRecv {
            op: self.run_op(Op::Recv {
                fd: s.as_raw_fd(),
                buf: Vec::with_capacity(dst.len().max(1)),
            }),
        };
        let (res, buf) = recv.await;
        let n = res?.min(dst.len());
        dst[..n].copy_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Sends as much of `buf` as the socket takes at once (at least one byte unless it
    /// fails); gives the count. The buffer is returned in every case.
    pub fn sock_send<S: AsRawFd>(
        &self,
        s: &S,
        buf: Vec<u8>,
    ) -> impl Future<Output = BufResult<usize>> + use<S> {
        let op = self.run_op(Op::Send {
            fd: s.as_raw_fd(),
            buf,
            pos: 0,
        });
        async move {
            let (res, op) = op.await;
            (res, op.map(Op::into_buf).unwrap_or_default())
        }
    }

    /// Sends all of `buf`. The buffer is returned in every case.
    pub fn sock_sendall(&self, s: &TcpStream, buf: Vec<u8>) -> SockSendAll {
        SockSendAll {
            op: self.run_op(Op::Send {
                fd: s.as_raw_fd(),
                buf,
                pos: 0,
            }),
        }
    }

    /// Receives one datagram and its sender (asyncio's `sock_recvfrom`): up to
    /// `buf.capacity()` bytes (the rest of a longer datagram is dropped, as recvfrom does).
    pub fn sock_recvfrom<S: AsRawFd>(
        &self,
        s: &S,
        buf: Vec<u8>,
    ) -> impl Future<Output = BufResult<(usize, SockAddr)>> + use<S> {
        let op = self.run_op(Op::RecvFrom {
            fd: s.as_raw_fd(),
            buf,
            msg: MsgBuf::new_boxed(),
        });
        async move {
            match op.await {
                (Ok(n), Some(Op::RecvFrom { buf, msg, .. })) => (Ok((n, msg.peer())), buf),
                (Err(e), Some(op)) => (Err(e), op.into_buf()),
                (Ok(_), _) => (Err(closed_loop_io_error()), Vec::new()),
                (Err(e), None) => (Err(e), Vec::new()),
            }
        }
    }

    /// Sends one datagram to `addr` (asyncio's `sock_sendto`); gives the count sent.
    pub fn sock_sendto<S: AsRawFd>(
        &self,
        s: &S,
        buf: Vec<u8>,
        addr: SockAddr,
    ) -> impl Future<Output = BufResult<usize>> + use<S> {
        let op = self.run_op(Op::SendTo {
            fd: s.as_raw_fd(),
            buf,
            msg: MsgBuf::to_addr(&addr),
        });
        async move {
            let (res, op) = op.await;
            (res, op.map(Op::into_buf).unwrap_or_default())
        }
    }

    /// Sends `count` bytes (all, if `None`) of `file` from `offset` over the connected
    /// socket `s` (asyncio's `sock_sendfile`): zero-copy sendfile(2) where the OS can, else
    /// (another platform, a file sendfile cannot read) reading chunks on the executor and
    /// sending them. Gives the count sent, short only at end of file.
    ///
    /// # Errors
    /// The send's or the read's error.
    pub async fn sock_sendfile(
        &self,
        s: &impl AsRawFd,
        file: &File,
        offset: u64,
        count: Option<u64>,
    ) -> io::Result<u64> {
        let mut sent = 0u64;
        loop {
            let want = count.map_or(SENDFILE_MAX, |c| (c - sent).min(SENDFILE_MAX));
            if want == 0 {
                return Ok(sent);
            }
            let op = Op::SendFile {
                sock: s.as_raw_fd(),
                file: file.as_raw_fd(),
                offset: offset + sent,
                len: want as usize,
            };
            match self.run_op(op).await.0 {
                Ok(0) => return Ok(sent),
                Ok(n) => sent += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Unsupported && sent == 0 => {
                    return self.sock_sendfile_copying(s, file, offset, count).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What [`sock_sendfile`](Self::sock_sendfile) falls back to (asyncio's
    /// `_sock_sendfile_fallback`): reads `file` in chunks on the executor and sends them.
    ///
    /// # Errors
    /// The read's or the send's error.
    pub async fn sock_sendfile_copying(
        &self,
        s: &impl AsRawFd,
        file: &File,
        offset: u64,
        count: Option<u64>,
    ) -> io::Result<u64> {
        let file = std::sync::Arc::new(file.try_clone()?);
        let mut sent = 0u64;
        loop {
            let want = count.map_or(SENDFILE_CHUNK as u64, |c| {
                (c - sent).min(SENDFILE_CHUNK as u64)
            });
            if want == 0 {
                return Ok(sent);
            }
            let f = file.clone();
            let at = offset + sent;
            let chunk = self
                .run_in_executor(move || {
                    let mut buf = vec![0u8; want as usize];
                    let n = f.read_at(&mut buf, at)?;
                    buf.truncate(n);
                    Ok::<_, io::Error>(buf)
                })
                .await
                .map_err(|e| {
                    io::Error::other(format!("sock_sendfile's read did not run: {e}"))
                })??;
            if chunk.is_empty() {
                return Ok(sent);
            }
            let n = chunk.len() as u64;
            let send = SockSendAll {
                op: self.run_op(Op::Send {
                    fd: s.as_raw_fd(),
                    buf: chunk,
                    pos: 0,
                }),
            };
            send.await.0?;
            sent += n;
        }
    }
}
