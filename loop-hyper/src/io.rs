//! [`HyperIo`]: futures-io's traits as hyper's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Any `futures_io::AsyncRead + AsyncWrite + Unpin` as `hyper::rt::Read + hyper::rt::Write`
/// (hyper-util's `TokioIo`, for futures-io). `poll_shutdown` is `poll_close`: it flushes and
/// shuts the write side down.
///
/// A `futures_io::AsyncRead` reads into initialised memory, and hyper hands out its read
/// buffer uninitialised at every read, so each read zeroes what it offers the stream first.
/// It offers as much as the reads need (it adapts, as hyper's own read buffer does), not
/// hyper's whole buffer: a small request zeroes about 512 bytes, not 8 KiB.
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
    read_size: ReadSize,
}

impl<T> HyperIo<T> {
    /// Wraps `io`.
    pub fn new(io: T) -> Self {
        HyperIo {
            inner: io,
            read_size: ReadSize::default(),
        }
    }

    /// The wrapped stream.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the stream.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: futures_io::AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let room = buf.remaining();
        let offered = this.read_size.offer(room);
        let dst = buf.initialize_unfilled_to(offered);
        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, dst))?.min(offered);
        this.read_size.record(n, offered, room);
        // SAFETY: `initialize_unfilled_to` initialized the first `offered` unfilled bytes, and
        // `n` is at most that (a reader returning more is a bug we clamp away).
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: futures_io::AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

impl<T: futures_io::AsyncRead + Unpin> futures_io::AsyncRead for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: futures_io::AsyncWrite + Unpin> futures_io::AsyncWrite for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// How much of hyper's read buffer a read offers the stream (and so zeroes first): it
/// doubles while reads fill what they are offered, and halves while they use under a
/// quarter of it, between [`ReadSize::MIN`] and [`ReadSize::MAX`] (as hyper's own adaptive
/// read buffer grows and shrinks; a read that fills all the room hyper had changes
/// nothing). A read offered less than the buffer has is only a shorter read: the stream
/// keeps the rest for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> Self {
        ReadSize(Self::START)
    }
}

impl ReadSize {
    const MIN: usize = 512;
    const START: usize = 4096;
    const MAX: usize = 64 * 1024;

    /// What the next read offers, out of `room` free bytes in hyper's buffer.
    fn offer(self, room: usize) -> usize {
        room.min(self.0)
    }

    /// A read offered `offered` bytes (out of `room`) and got `n`.
    fn record(&mut self, n: usize, offered: usize, room: usize) {
        if n == offered {
            // Filled: more may be waiting (unless hyper had no more room to offer).
            if offered < room {
                self.0 = (self.0 * 2).min(Self::MAX);
            }
        } else if n < self.0 / 4 {
            self.0 = (self.0 / 2).max(Self::MIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReadSize;

    #[test]
    fn read_size_grows_while_reads_fill_and_shrinks_while_they_use_little() {
        let mut size = ReadSize::default();
        // Small requests: the offer shrinks to the floor, and stays there.
        for _ in 0..10 {
            let offered = size.offer(8192);
            size.record(40, offered, 8192);
        }
        assert_eq!(size.offer(8192), ReadSize::MIN);
        // A large body: each full read doubles the offer, up to the ceiling.
        let mut offers = Vec::new();
        for _ in 0..10 {
            let offered = size.offer(1 << 20);
            offers.push(offered);
            size.record(offered, offered, 1 << 20);
        }
        assert_eq!(&offers[..4], &[512, 1024, 2048, 4096]);
        assert_eq!(size.offer(1 << 20), ReadSize::MAX);
        // A read that fills all the room hyper has is no sign to grow.
        let mut size = ReadSize::default();
        size.record(100, 100, 100);
        assert_eq!(size.offer(1 << 20), ReadSize::START);
        // The offer never exceeds the room.
        assert_eq!(ReadSize::default().offer(10), 10);
    }
}
