//! `futures_io::AsyncRead`/`AsyncBufRead` for [`PipeReader`] and `AsyncWrite` for
//! [`PipeWriter`], over the owned-buffer reads and writes.
//!
//! A reader keeps its read-ahead and the read in flight; a writer's `poll_write` is ready once
//! the kernel took the bytes (up to `WRITE_BUFFER` of them per call), so there is nothing to
//! flush, and `poll_close` closes the pipe (the reader sees end of file).

use std::io;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::pipe::PipeWriter;
use crate::{BufResult, LocalBoxFuture, PipeReader};

/// How many bytes one read of the `AsyncRead` impl asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// The most one `poll_write` hands to the kernel.
const WRITE_BUFFER: usize = 64 * 1024;

pub(crate) fn write_after_close() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "write to a pipe that was closed (poll_close)",
    )
}

impl PipeReader {
    /// Hands `put` up to `want` of what is buffered (or the next read) and consumes it: the
    /// one read of both read traits (tokio's `ReadBuf` takes the bytes with no zeroing). A
    /// read of nothing gives 0 at once.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        want: usize,
        put: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if want == 0 {
            return Poll::Ready(Ok(0));
        }
        let got = ready!(self.poll_fill(cx, want.min(256 * 1024)))?;
        let n = got.len().min(want);
        put(&got[..n]);
        self.start += n;
        Poll::Ready(Ok(n))
    }

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
        let want = dst.len();
        self.get_mut()
            .poll_read_into(cx, want, |got| dst[..got.len()].copy_from_slice(got))
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

/// A writer's write in flight: the future of the last `poll_write`, kept only while it is
/// pending. A pipe write takes bytes from the caller's copy only in the poll that completes
/// it (it waits for readiness, then writes at once), so replacing a pending one writes
/// nothing twice.
#[derive(Default)]
pub(crate) struct WriteState {
    in_flight: Option<LocalBoxFuture<BufResult<usize>>>,
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
        // A new write of the caller's bytes each time (what an earlier, cancelled call left
        // pending wrote nothing): the kernel has the bytes when this is ready.
        let fut = this
            .state
            .in_flight
            .insert(pipe.write(src[..src.len().min(WRITE_BUFFER)].to_vec(), 0));
        let (res, _) = ready!(fut.as_mut().poll(cx));
        this.state.in_flight = None;
        Poll::Ready(res)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered: a ready write is with the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.state.in_flight = None;
        this.inner = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
mod tokio_impls {
    //! tokio's `AsyncRead`/`AsyncBufRead`/`AsyncWrite` for the pipes (the traits only), the
    //! same as the futures-io impls.

    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use crate::{PipeReader, PipeWriter};

    impl tokio::io::AsyncRead for PipeReader {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let want = buf.remaining();
            ready!(
                self.get_mut()
                    .poll_read_into(cx, want, |got| buf.put_slice(got))
            )?;
            Poll::Ready(Ok(()))
        }
    }

    impl tokio::io::AsyncBufRead for PipeReader {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            futures_io::AsyncBufRead::poll_fill_buf(self, cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            futures_io::AsyncBufRead::consume(self, amt)
        }
    }

    impl tokio::io::AsyncWrite for PipeWriter {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            futures_io::AsyncWrite::poll_write(self, cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            futures_io::AsyncWrite::poll_flush(self, cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            futures_io::AsyncWrite::poll_close(self, cx)
        }
    }
}
