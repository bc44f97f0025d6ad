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
//! - a write buffer ([`Writer`]), as asyncio's transports have: `poll_write` copies into it
//!   (accepting up to [`WRITE_BUFFER`] bytes ahead) and a task of the loop sends it in the
//!   background. An idle write side on a readiness loop first sends straight from the
//!   caller's slice (`WeakEventLoop::try_sock_send`): no copy, no op, when the socket can
//!   take the bytes at once. `poll_flush` is ready once the kernel took every accepted byte;
//!   `poll_close` flushes, then shuts the write side down. A write future dropped before it was ready
//!   wrote nothing; a stream dropped with bytes buffered still sends them, then closes.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::mem;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker, ready};

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
        self.poll_read_into(sh, cx, dst.len(), |got| {
            dst[..got.len()].copy_from_slice(got)
        })
    }

    /// Hands `put` up to `want` of what is buffered (or the next receive) and consumes it:
    /// the one read of both read traits (tokio's `ReadBuf` takes the bytes with no zeroing).
    /// A read of nothing gives 0 at once.
    pub(crate) fn poll_read_into<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        want: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        let got = ready!(self.poll_fill_buf(sh, cx, want))?;
        let n = got.len().min(want);
        put(&got[..n]);
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

/// The write side (asyncio's transport write buffer): `poll_write` copies into a buffer of
/// up to [`WRITE_BUFFER`] bytes, and a task of the loop, the pump, hands it to the kernel in
/// the background, one `Op::Send` at a time, so accepted bytes go out whether or not the
/// writer polls again (a TLS handshake writes, then only reads). `poll_flush` waits until the
/// buffer is empty and no send is in flight.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    st: Rc<RefCell<WriteState>>,
}

#[derive(Debug, Default)]
struct WriteState {
    op: Option<OpFuture>,
    staged: Vec<u8>,
    spare: Vec<u8>,
    error: Option<io::Error>,
    closed: bool,
    /// The pump task's waker (it is started by the first write).
    pump: Option<Waker>,
    pump_started: bool,
    /// The writer waiting for room or for the flush.
    writer: Option<Waker>,
}

fn write_after_close() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "write after the stream's write side was closed (poll_close/shutdown)",
    )
}

impl WriteState {
    fn idle(&self) -> bool {
        self.op.is_none() && self.staged.is_empty()
    }

    fn wake_pump(&mut self) {
        if let Some(w) = self.pump.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// The fast path of an idle write side: the send starts here (on a readiness loop it
    /// usually completes at once, with no task switch, straight from `src`); what is left
    /// goes to the pump.
    fn send_now<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = src.len().min(WRITE_BUFFER);
        // The kernel takes the bytes from the caller's slice when the loop can send at once
        // (nothing of ours is in flight: this write side is idle); what it did not take goes
        // the op's way, so the write accepts all `n` bytes as on every loop.
        let sent = match sh.lp.try_sock_send(sh.fd(), &src[..n]) {
            Some(Ok(m)) if m >= n => return Poll::Ready(Ok(n)),
            Some(Ok(m)) => m,
            Some(Err(e)) => return Poll::Ready(Err(e)),
            None => 0,
        };
        match self.send_by_op(sh, cx, &src[sent..n]) {
            Poll::Ready(Ok(k)) => Poll::Ready(Ok(sent + k)),
            // The kernel took `sent` bytes: that is this write's answer; the error comes
            // again at the next write.
            Poll::Ready(Err(_)) if sent > 0 => Poll::Ready(Ok(sent)),
            other => other,
        }
    }

    /// [`send_now`](Self::send_now)'s send as an op, from a copy of `src` in an owned buffer:
    /// done at once, or in flight with the pump taking it over.
    fn send_by_op<S: AsRawFd>(
        &mut self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = src.len();
        let mut buf = mem::take(&mut self.spare);
        buf.clear();
        buf.extend_from_slice(src);
        let mut op = sh.lp.run_op(Op::Send {
            fd: sh.fd(),
            buf,
            pos: 0,
        });
        match Pin::new(&mut op).poll(cx) {
            Poll::Ready((Ok(m), Some(Op::Send { mut buf, .. }))) if m >= n => {
                buf.clear();
                self.spare = buf;
            }
            Poll::Ready((Ok(m), Some(Op::Send { fd, buf, pos }))) if m > 0 => {
                let pos = pos + m;
                self.op = Some(sh.lp.run_op(Op::Send { fd, buf, pos }));
                self.wake_pump();
            }
            // Nothing was accepted: the error is this write's answer.
            Poll::Ready((Err(e), _)) => return Poll::Ready(Err(e)),
            Poll::Ready((Ok(_), Some(_))) => {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready((Ok(_), None)) => {
                return Poll::Ready(Err(loop_api::closed_loop_io_error()));
            }
            Poll::Pending => {
                // In flight: the pump polls it from now on (and re-registers its waker).
                self.op = Some(op);
                self.wake_pump();
            }
        }
        Poll::Ready(Ok(n))
    }

    /// The pump's work: sends until nothing is staged (then waits for the next write).
    fn pump<S: AsRawFd>(&mut self, sh: &Shared<S>, cx: &mut Context<'_>) {
        self.pump = Some(cx.waker().clone());
        loop {
            let Some(op) = self.op.as_mut() else {
                if self.staged.is_empty() || self.error.is_some() {
                    self.wake_writer();
                    return;
                }
                let buf = mem::replace(&mut self.staged, mem::take(&mut self.spare));
                self.op = Some(sh.lp.run_op(Op::Send {
                    fd: sh.fd(),
                    buf,
                    pos: 0,
                }));
                continue;
            };
            let Poll::Ready(done) = Pin::new(op).poll(cx) else {
                return;
            };
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
                (res, op) => {
                    let e = match (res, op) {
                        (Err(e), _) => e,
                        (Ok(_), Some(_)) => io::ErrorKind::WriteZero.into(),
                        (Ok(_), None) => loop_api::closed_loop_io_error(),
                    };
                    // What is staged cannot go out after a failed send: the error is the
                    // writer's next answer.
                    self.staged.clear();
                    self.error = Some(e);
                }
            }
            self.wake_writer();
        }
    }
}

/// The pump task of one stream's write side. While bytes are accepted but not yet handed to
/// the kernel it holds the write side and the socket, so a stream dropped (or closed) right
/// after a write still sends them, as asyncio's `transport.close()` flushes the buffer
/// asynchronously; once idle it holds them weakly and ends when the stream is gone.
struct Pump<S: AsRawFd> {
    st: Weak<RefCell<WriteState>>,
    sh: Weak<Shared<S>>,
    /// The write side and the socket, held while something is left to send.
    holding: Option<Held<S>>,
}

/// What the pump holds while bytes are left to send: the write side and the socket.
type Held<S> = (Rc<RefCell<WriteState>>, Rc<Shared<S>>);

impl<S: AsRawFd> Future for Pump<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let (Some(st), Some(sh)) = (self.st.upgrade(), self.sh.upgrade()) else {
            return Poll::Ready(());
        };
        let idle = {
            let mut state = st.borrow_mut();
            state.pump(&sh, cx);
            state.idle()
        };
        // Dropping what it held may drop the stream: its write side then wakes this task,
        // which finds it gone and ends.
        self.holding = if idle { None } else { Some((st, sh)) };
        Poll::Pending
    }
}

impl Drop for WriteState {
    fn drop(&mut self) {
        // The pump finds the stream gone and ends (else it would wait for good).
        self.wake_pump();
    }
}

impl Writer {
    fn ensure_pump<S: AsRawFd + 'static>(&self, sh: &Rc<Shared<S>>) -> io::Result<()> {
        if self.st.borrow().pump_started {
            return Ok(());
        }
        let pump = Pump {
            st: Rc::downgrade(&self.st),
            sh: Rc::downgrade(sh),
            holding: None,
        };
        sh.event_loop()?
            .create_task(pump)
            .map_err(|e| io::Error::other(format!("cannot start the stream's writer: {e}")))?;
        self.st.borrow_mut().pump_started = true;
        Ok(())
    }

    /// Accepts up to the free room of the write buffer from `src`; the pump sends it.
    pub(crate) fn poll_write<S: AsRawFd + 'static>(
        &self,
        sh: &Rc<Shared<S>>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = self.st.borrow_mut();
        if st.closed {
            return Poll::Ready(Err(write_after_close()));
        }
        if let Some(e) = st.error.take() {
            return Poll::Ready(Err(e));
        }
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        drop(st);
        self.ensure_pump(sh)?;
        let mut st = self.st.borrow_mut();
        if st.idle() {
            return st.send_now(sh, cx, src);
        }
        let room = WRITE_BUFFER.saturating_sub(st.staged.len());
        if room == 0 {
            st.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(src.len());
        st.staged.extend_from_slice(&src[..n]);
        st.wake_pump();
        Poll::Ready(Ok(n))
    }

    /// Ready once every accepted byte was handed to the kernel (or with the send's error).
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = self.st.borrow_mut();
        if let Some(e) = st.error.take() {
            return Poll::Ready(Err(e));
        }
        if st.idle() {
            return Poll::Ready(Ok(()));
        }
        st.writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Flushes, then shuts the write side down (later writes fail with `BrokenPipe`).
    pub(crate) fn poll_close<S: AsRawFd>(
        &self,
        sh: &Shared<S>,
        cx: &mut Context<'_>,
        shutdown: impl FnOnce(&S) -> io::Result<()>,
    ) -> Poll<io::Result<()>> {
        if self.st.borrow().closed {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_flush(cx))?;
        self.st.borrow_mut().closed = true;
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
                let rd = this.rd.get_mut();
                let want = buf.remaining();
                std::task::ready!(rd.poll_read_into(&this.inner, cx, want, |got| {
                    buf.put_slice(got)
                }))?;
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
                this.wr.poll_write(&this.inner, cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.wr.poll_flush(cx)
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let this = self.get_mut();
                this.wr.poll_close(&this.inner, cx, |s| {
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

/// Before an owned-buffer send: waits until what `poll_write` accepted is with the kernel,
/// so the bytes go out in the order they were written.
pub(crate) async fn flush_accepted(wr: &Writer) -> io::Result<()> {
    std::future::poll_fn(|cx| wr.poll_flush(cx)).await
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
