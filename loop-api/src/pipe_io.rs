//! `futures_io::AsyncRead`/`AsyncBufRead` for [`PipeReader`] and `AsyncWrite` for
//! [`PipeWriter`], over the owned-buffer reads and writes.
//!
//! A reader keeps its read-ahead and the read in flight; a writer copies what `poll_write`
//! accepts (up to [`WRITE_BUFFER`] bytes ahead) into a buffer of its own and hands it to the
//! kernel: `poll_flush` is ready once every accepted byte is written, `poll_close` flushes and
//! closes the pipe (the reader sees end of file).

use std::io;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::pipe::{PipeWrite, PipeWriter};
use crate::{BufResult, LocalBoxFuture, PipeReader};

/// How many bytes one read of the `AsyncRead` impl asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// How many accepted bytes a writer keeps before `poll_write` waits for the kernel.
const WRITE_BUFFER: usize = 64 * 1024;

pub(crate) fn write_after_close() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "write to a pipe that was closed (poll_close)",
    )
}

impl PipeReader {
    fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<&[u8]>> {
        if self.start >= self.buffered.len() {
            let fut = match self.in_flight.as_mut() {
                Some(fut) => fut,
                None => {
                    let mut buf = mem::take(&mut self.buffered);
                    buf.clear();
                    buf.reserve(want.max(READ_CHUNK));
                    self.in_flight.insert(self.inner.read(buf))
                }
            };
            let (res, buf) = ready!(fut.as_mut().poll(cx));
            self.in_flight = None;
            self.buffered = buf;
            self.start = 0;
            if let Err(e) = res {
                self.buffered.clear();
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(&self.buffered[self.start..]))
    }
}

impl futures_io::AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let got = ready!(this.poll_fill(cx, dst.len().min(256 * 1024)))?;
        let n = got.len().min(dst.len());
        dst[..n].copy_from_slice(&got[..n]);
        this.start += n;
        Poll::Ready(Ok(n))
    }
}

impl futures_io::AsyncBufRead for PipeReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.get_mut().poll_fill(cx, 0)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.start = (this.start + amt).min(this.buffered.len());
    }
}

/// A writer's accepted bytes not yet handed to a write (`staged`), the write in flight (its
/// future and where in its buffer it started), and an error to report at the next call.
#[derive(Default)]
pub(crate) struct WriteState {
    in_flight: Option<(LocalBoxFuture<BufResult<usize>>, usize)>,
    staged: Vec<u8>,
    spare: Vec<u8>,
    error: Option<io::Error>,
}

impl WriteState {
    fn poll_drain(
        &mut self,
        pipe: &mut dyn PipeWrite,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            let Some((fut, pos)) = self.in_flight.as_mut() else {
                if self.staged.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                let buf = mem::replace(&mut self.staged, mem::take(&mut self.spare));
                self.in_flight = Some((pipe.write(buf, 0), 0));
                continue;
            };
            let pos = *pos;
            let (res, mut buf) = ready!(fut.as_mut().poll(cx));
            self.in_flight = None;
            match res {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) if pos + n < buf.len() => {
                    self.in_flight = Some((pipe.write(buf, pos + n), pos + n));
                }
                Ok(_) => {
                    buf.clear();
                    self.spare = buf;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl futures_io::AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(pipe) = this.inner.as_deref_mut() else {
            return Poll::Ready(Err(write_after_close()));
        };
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let st = &mut this.state;
        if let Poll::Ready(Err(e)) = st.poll_drain(pipe, cx) {
            return Poll::Ready(Err(e));
        }
        let room = WRITE_BUFFER.saturating_sub(st.staged.len());
        if room == 0 {
            return Poll::Pending;
        }
        let n = room.min(src.len());
        st.staged.extend_from_slice(&src[..n]);
        if let Poll::Ready(Err(e)) = st.poll_drain(pipe, cx) {
            st.error = Some(e);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.inner.as_deref_mut() {
            Some(pipe) => this.state.poll_drain(pipe, cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(pipe) = this.inner.as_deref_mut() {
            ready!(this.state.poll_drain(pipe, cx))?;
            this.inner = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl PipeWriter {
    /// Before an owned-buffer write: writes what the `AsyncWrite` impl accepted first.
    pub(crate) async fn flush_accepted(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| futures_io::AsyncWrite::poll_flush(Pin::new(&mut *self), cx))
            .await
    }
}
