//! The standard async I/O traits (`futures_io::AsyncRead`/`AsyncBufRead`/`AsyncWrite`, and
//! tokio's with the `tokio-io` feature) over the loop's owned-buffer operations.
//!
//! The traits lend the stream a caller's buffer for one poll only, which a completion backend
//! (io_uring) cannot hand to the kernel. So each stream keeps, as monoio's and compio's compat
//! layers do:
//!
//! - a read buffer with the receive in flight ([`ReadState`]): a `poll_read` copies out of it.
//!   The receive belongs to the stream, not to the caller's future, so a dropped `read` future
//!   loses nothing: the next read gets the bytes.
//! - a write buffer with the send in flight ([`WriteState`]): `poll_write` copies into it
//!   (accepting up to [`WRITE_BUFFER`] bytes ahead) and starts sending;
//!   `poll_flush` is ready once the kernel took every accepted byte; `poll_close` flushes,
//!   then shuts the write side down. A write future dropped before it was ready wrote nothing.

use std::cell::RefCell;
use std::io;
use std::mem;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use loop_api::{BufResult, Op, OpFuture};

use crate::socket::Shared;

/// How many bytes one receive asks for when the caller's buffer is small.
const READ_CHUNK: usize = 16 * 1024;

/// The most one receive asks for (a larger caller buffer is filled by several).
const READ_MAX: usize = 256 * 1024;

/// How many accepted bytes `poll_write` keeps before it waits for the kernel.
pub const WRITE_BUFFER: usize = 64 * 1024;

/// The read side's state: bytes received ahead (`buf[pos..]`) and the receive in flight.
#[derive(Debug, Default)]
pub(crate) struct ReadState {
    op: Option<OpFuture>,
    buf: Vec<u8>,
    pos: usize,
}

impl ReadState {
    /// The bytes received ahead, receiving more (up to `want`) when there are none; empty at
    /// end of stream.
    pub(crate) fn poll_fill_buf<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<&[u8]>> {
        if self.pos >= self.buf.len() {
            let op = self.op.get_or_insert_with(|| {
                let mut buf = mem::take(&mut self.buf);
                buf.clear();
                buf.reserve(want.clamp(READ_CHUNK, READ_MAX));
                sh.lp.run_op(Op::Recv { fd: sh.fd(), buf })
            });
            let (res, op) = ready!(Pin::new(op).poll(cx));
            self.op = None;
            self.pos = 0;
            self.buf = op.map(Op::into_buf).unwrap_or_default();
            if let Err(e) = res {
                self.buf.clear();
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(&self.buf[self.pos..]))
    }

    /// Marks `n` bytes of the buffered ones as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Copies what is buffered (or the next receive) into `dst`.
    pub(crate) fn poll_read<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let got = ready!(self.poll_fill_buf(sh, cx, dst.len()))?;
        let n = got.len().min(dst.len());
        dst[..n].copy_from_slice(&got[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// For the owned-buffer `recv`: moves buffered bytes (up to `buf`'s capacity) into `buf`,
    /// or, with none buffered, gives up the receive in flight (the loop keeps what it got for
    /// the next receive on the socket). True when `buf` got bytes.
    pub(crate) fn take_buffered(&mut self, buf: &mut Vec<u8>) -> bool {
        self.op = None;
        let rest = &self.buf[self.pos..];
        if rest.is_empty() || buf.capacity() == 0 {
            return false;
        }
        buf.clear();
        let n = rest.len().min(buf.capacity());
        buf.extend_from_slice(&rest[..n]);
        self.consume(n);
        true
    }
}

/// The write side's state: accepted bytes not yet handed to an op (`staged`), the send in
/// flight, and whether the side is shut down.
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    op: Option<OpFuture>,
    staged: Vec<u8>,
    spare: Vec<u8>,
    error: Option<io::Error>,
    closed: bool,
}

fn write_after_close() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "write after the stream's write side was closed (poll_close/shutdown)",
    )
}

impl WriteState {
    /// Hands every accepted byte to the kernel: ready (Ok) when none is left.
    pub(crate) fn poll_drain<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            let Some(op) = self.op.as_mut() else {
                if self.staged.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let buf = mem::replace(&mut self.staged, mem::take(&mut self.spare));
                self.op = Some(sh.lp.run_op(Op::Send {
                    fd: sh.fd(),
                    buf,
                    pos: 0,
                }));
                continue;
            };
            let done = ready!(Pin::new(op).poll(cx));
            self.op = None;
            match done {
                (Ok(n), Some(Op::Send { fd, buf, pos })) if n > 0 && pos + n < buf.len() => {
                    let pos = pos + n;
                    self.op = Some(sh.lp.run_op(Op::Send { fd, buf, pos }));
                }
                (Ok(n), Some(Op::Send { mut buf, .. })) if n > 0 => {
                    buf.clear();
                    self.spare = buf;
                }
                (Ok(_), Some(_)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                (Ok(_), None) => return Poll::Ready(Err(loop_api::closed_loop_io_error())),
                (Err(e), _) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Accepts up to the free room of the write buffer from `src` and starts sending it.
    pub(crate) fn poll_write<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.closed {
            return Poll::Ready(Err(write_after_close()));
        }
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Progress on what is in flight; a pending drain has registered the waker.
        if let Poll::Ready(Err(e)) = self.poll_drain(sh, cx) {
            return Poll::Ready(Err(e));
        }
        let room = WRITE_BUFFER.saturating_sub(self.staged.len());
        if room == 0 {
            return Poll::Pending;
        }
        let n = room.min(src.len());
        self.staged.extend_from_slice(&src[..n]);
        // Start sending at once; an error shows at the next write or flush (the bytes are
        // accepted already).
        if let Poll::Ready(Err(e)) = self.poll_drain(sh, cx) {
            self.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    /// Flushes, then shuts the write side down (later writes fail with `BrokenPipe`).
    pub(crate) fn poll_close<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        shutdown: impl FnOnce(&S) -> io::Result<()>,
    ) -> Poll<io::Result<()>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_drain(sh, cx))?;
        self.closed = true;
        match shutdown(&sh.io) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// `futures_io::AsyncRead` + `AsyncBufRead` (and tokio's with `tokio-io`) for a stream type
/// with fields `inner: Rc<Shared<_>>` and `rd: RefCell<ReadState>`.
macro_rules! impl_read_traits {
    ([$($gen:tt)*] $ty:ty) => {
        impl<$($gen)*> futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.rd.get_mut().poll_read(&this.inner, cx, buf)
            }
        }

        impl<$($gen)*> futures_io::AsyncBufRead for $ty {
            fn poll_fill_buf(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<&[u8]>> {
                let this = self.get_mut();
                this.rd.get_mut().poll_fill_buf(&this.inner, cx, 0)
            }

            fn consume(self: std::pin::Pin<&mut Self>, amt: usize) {
                self.get_mut().rd.get_mut().consume(amt)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl<$($gen)*> tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                let dst = buf.initialize_unfilled();
                let n = std::task::ready!(this.rd.get_mut().poll_read(&this.inner, cx, dst))?;
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl<$($gen)*> tokio::io::AsyncBufRead for $ty {
            fn poll_fill_buf(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<&[u8]>> {
                let this = self.get_mut();
                this.rd.get_mut().poll_fill_buf(&this.inner, cx, 0)
            }

            fn consume(self: std::pin::Pin<&mut Self>, amt: usize) {
                self.get_mut().rd.get_mut().consume(amt)
            }
        }
    };
}

/// `futures_io::AsyncWrite` (and tokio's with `tokio-io`) for a stream type with fields
/// `inner: Rc<Shared<S>>` (S: `HalfClose`) and `wr: RefCell<WriteState>`.
macro_rules! impl_write_traits {
    ([$($gen:tt)*] $ty:ty) => {
        impl<$($gen)*> futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let this = self.get_mut();
                this.wr.get_mut().poll_write(&this.inner, cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.wr.get_mut().poll_drain(&this.inner, cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.wr.get_mut().poll_close(&this.inner, cx, |s| {
                    $crate::split::HalfClose::shutdown_half(s, std::net::Shutdown::Write)
                })
            }
        }

        #[cfg(feature = "tokio-io")]
        impl<$($gen)*> tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                futures_io::AsyncWrite::poll_write(self, cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures_io::AsyncWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                futures_io::AsyncWrite::poll_close(self, cx)
            }
        }
    };
}

pub(crate) use {impl_read_traits, impl_write_traits};

/// The owned-buffer `recv` of a stream: bytes the traits read ahead come first.
pub(crate) async fn recv<S: AsRawFd>(
    sh: &Shared<S>,
    rd: &RefCell<ReadState>,
    mut buf: Vec<u8>,
) -> BufResult<usize> {
    if rd.borrow_mut().take_buffered(&mut buf) {
        return (Ok(buf.len()), buf);
    }
    sh.read(buf).await
}

/// Before an owned-buffer send: hands what `poll_write` accepted to the kernel first, so the
/// bytes go out in the order they were written.
pub(crate) async fn flush_accepted<S: AsRawFd>(
    sh: &Shared<S>,
    wr: &RefCell<WriteState>,
) -> io::Result<()> {
    std::future::poll_fn(|cx| wr.borrow_mut().poll_drain(sh, cx)).await
}

/// The streams are `Unpin` (what `AsyncReadExt` & co. need without pinning): checked at
/// compile time.
const _: fn() = || {
    fn unpin<T: Unpin>() {}
    unpin::<crate::TcpStream>();
    unpin::<crate::UnixStream>();
    unpin::<crate::OwnedReadHalf>();
    unpin::<crate::OwnedWriteHalf<std::os::unix::net::UnixStream>>();
    unpin::<loop_api::PipeReader>();
    unpin::<loop_api::PipeWriter>();
};
