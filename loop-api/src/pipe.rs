//! Async pipes: [`PipeReader`] and [`PipeWriter`], a child's stdio or any pipe given to
//! [`EventLoop::connect_read_pipe`](crate::EventLoop::connect_read_pipe) /
//! [`connect_write_pipe`](crate::EventLoop::connect_write_pipe).
//!
//! Reads and writes take and give back owned buffers (like the `sock_*` methods), so a
//! completion backend can hand the buffer to the kernel. Dropping a pipe closes it: for a
//! child's stdin that is the end of its input.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::{BufResult, LocalBoxFuture};

/// What a loop implementation provides for the reading end of a pipe.
pub trait PipeRead {
    /// Reads into `buf`'s spare capacity (its length grows by the count; 0 means end of
    /// file). The future owns everything it needs: it stays valid if the pipe is dropped.
    fn read(&mut self, buf: Vec<u8>) -> LocalBoxFuture<BufResult<usize>>;
    /// The pipe's file descriptor.
    fn raw_fd(&self) -> RawFd;
}

/// What a loop implementation provides for the writing end of a pipe.
pub trait PipeWrite {
    /// Writes as much of `buf[pos..]` as the pipe takes at once; gives the count.
    fn write(&mut self, buf: Vec<u8>, pos: usize) -> LocalBoxFuture<BufResult<usize>>;
    /// The pipe's file descriptor.
    fn raw_fd(&self) -> RawFd;
}

/// The reading end of a pipe, read without blocking the loop (asyncio's `StreamReader` over a
/// pipe): a child's stdout or stderr, or a pipe given to `connect_read_pipe`.
pub struct PipeReader {
    pub(crate) inner: Box<dyn PipeRead>,
    /// Bytes read ahead (by [`readline`](PipeReader::readline) or the `AsyncBufRead` impl),
    /// from `start` on; served first.
    pub(crate) buffered: Vec<u8>,
    pub(crate) start: usize,
    /// The `AsyncRead` impl's read in flight (dropping it loses nothing: a pipe read takes
    /// bytes from the kernel only in the poll that completes it).
    pub(crate) in_flight: Option<LocalBoxFuture<BufResult<usize>>>,
}

/// How many bytes one read asks for when the caller gives no buffer.
const CHUNK: usize = 64 * 1024;

impl PipeReader {
    /// Wraps a loop implementation's pipe.
    pub fn new(inner: Box<dyn PipeRead>) -> Self {
        PipeReader {
            inner,
            buffered: Vec::new(),
            start: 0,
            in_flight: None,
        }
    }

    /// Before an owned-buffer read: gives up the trait impl's read in flight (lossless on a
    /// pipe) and drops the bytes already consumed from the read-ahead.
    fn settle(&mut self) {
        self.in_flight = None;
        self.buffered.drain(..self.start.min(self.buffered.len()));
        self.start = 0;
    }

    /// Reads up to `buf.capacity()` bytes into `buf` (its length becomes the count; 0 means
    /// end of file). The buffer is returned in every case. (Named as the sockets' owned-buffer
    /// `recv`, so that `futures_util::AsyncReadExt::read` is the usual call.)
    ///
    /// # Errors
    /// `InvalidInput` for a buffer without capacity; the OS error of `read(2)`; an error when
    /// the loop is closed.
    pub async fn recv(&mut self, mut buf: Vec<u8>) -> BufResult<usize> {
        self.settle();
        buf.clear();
        if buf.capacity() == 0 {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "PipeReader::read needs a buffer with capacity: pass Vec::with_capacity(n)",
            );
            return (Err(e), buf);
        }
        if !self.buffered.is_empty() {
            let n = buf.capacity().min(self.buffered.len());
            buf.extend(self.buffered.drain(..n));
            return (Ok(n), buf);
        }
        self.inner.read(buf).await
    }

    /// Reads until end of file; gives everything read.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_to_end(&mut self) -> io::Result<Vec<u8>> {
        self.settle();
        let mut out = std::mem::take(&mut self.buffered);
        loop {
            out.reserve(CHUNK);
            let (res, buf) = self.inner.read(out).await;
            out = buf;
            if res? == 0 {
                return Ok(out);
            }
        }
    }

    /// Reads one line, up to and including `\n` (asyncio's `readline`): the last line may lack
    /// the `\n`; an empty vector means end of file.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn readline(&mut self) -> io::Result<Vec<u8>> {
        self.settle();
        let mut searched = 0;
        loop {
            if let Some(i) = self.buffered[searched..].iter().position(|&b| b == b'\n') {
                let rest = self.buffered.split_off(searched + i + 1);
                return Ok(std::mem::replace(&mut self.buffered, rest));
            }
            searched = self.buffered.len();
            let mut buf = std::mem::take(&mut self.buffered);
            buf.reserve(CHUNK);
            let (res, buf) = self.inner.read(buf).await;
            self.buffered = buf;
            if res? == 0 {
                return Ok(std::mem::take(&mut self.buffered));
            }
        }
    }
}

impl AsRawFd for PipeReader {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.raw_fd()
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("fd", &self.inner.raw_fd())
            .field(
                "buffered",
                &(self.buffered.len() - self.start.min(self.buffered.len())),
            )
            .finish()
    }
}

/// The writing end of a pipe, written without blocking the loop: a child's stdin, or a pipe
/// given to `connect_write_pipe`. Dropping it closes the pipe (the reader sees end of file);
/// so does `futures_util::AsyncWriteExt::close`. Its `AsyncWrite::poll_write` is ready once
/// the kernel took the bytes: nothing is buffered.
///
/// Writing to a pipe whose reader is gone fails with `BrokenPipe`, whatever the process's
/// `SIGPIPE` disposition: the loops never let that write raise the signal.
pub struct PipeWriter {
    /// `None` once the `AsyncWrite` impl's `poll_close` closed the pipe.
    pub(crate) inner: Option<Box<dyn PipeWrite>>,
    pub(crate) state: crate::pipe_io::WriteState,
}

impl PipeWriter {
    /// Wraps a loop implementation's pipe.
    pub fn new(inner: Box<dyn PipeWrite>) -> Self {
        PipeWriter {
            inner: Some(inner),
            state: Default::default(),
        }
    }

    /// Writes as much of `buf` as the pipe takes at once (at least one byte unless it fails);
    /// gives the count and the buffer back.
    pub async fn send(&mut self, buf: Vec<u8>) -> BufResult<usize> {
        match self.inner.as_mut() {
            Some(inner) => inner.write(buf, 0).await,
            None => (Err(crate::pipe_io::write_after_close()), buf),
        }
    }

    /// Writes all of `buf`; the buffer is returned in every case.
    ///
    /// # Errors
    /// `BrokenPipe` when the reader is gone (or the pipe was closed); another OS error of
    /// `write(2)`; an error when the loop is closed.
    pub async fn send_all(&mut self, buf: Vec<u8>) -> BufResult<()> {
        let Some(inner) = self.inner.as_mut() else {
            return (Err(crate::pipe_io::write_after_close()), buf);
        };
        let mut buf = buf;
        let mut pos = 0;
        while pos < buf.len() {
            let (res, b) = inner.write(buf, pos).await;
            buf = b;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => pos += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }
}

impl AsRawFd for PipeWriter {
    /// The pipe's fd (-1 once `poll_close` closed it).
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_ref().map_or(-1, |p| p.raw_fd())
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
