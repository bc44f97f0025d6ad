//! Async pipes: [`PipeReader`] and [`PipeWriter`], a child's stdio or any pipe given to
//! [`EventLoop::connect_read_pipe`](crate::EventLoop::connect_read_pipe) /
//! [`connect_write_pipe`](crate::EventLoop::connect_write_pipe).
//!
//! Reads and writes take and give back owned buffers (like the `sock_*` methods), so a
//! completion backend can hand the buffer to the kernel. Dropping a pipe closes it: for a
//! child's stdin that is the end of its input.

use std::fmt;
use std::future::Future;
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
    inner: Box<dyn PipeRead>,
    /// Bytes read ahead by [`read_line`](PipeReader::read_line), served first.
    buffered: Vec<u8>,
}

/// How many bytes one read asks for when the caller gives no buffer.
const CHUNK: usize = 64 * 1024;

impl PipeReader {
    /// Wraps a loop implementation's pipe.
    pub fn new(inner: Box<dyn PipeRead>) -> Self {
        PipeReader {
            inner,
            buffered: Vec::new(),
        }
    }

    /// Reads up to `buf.capacity()` bytes into `buf` (its length becomes the count; 0 means
    /// end of file). The buffer is returned in every case.
    ///
    /// # Errors
    /// `InvalidInput` for a buffer without capacity; the OS error of `read(2)`; an error when
    /// the loop is closed.
    pub async fn read(&mut self, mut buf: Vec<u8>) -> BufResult<usize> {
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
    /// As [`read`](Self::read).
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
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
    /// As [`read`](Self::read).
    pub async fn read_line(&mut self) -> io::Result<Vec<u8>> {
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
            .field("buffered", &self.buffered.len())
            .finish()
    }
}

/// The writing end of a pipe, written without blocking the loop: a child's stdin, or a pipe
/// given to `connect_write_pipe`. Dropping it closes the pipe (the reader sees end of file).
///
/// Writing to a pipe whose reader is gone fails with `BrokenPipe`, whatever the process's
/// `SIGPIPE` disposition: the loops never let that write raise the signal.
pub struct PipeWriter {
    inner: Box<dyn PipeWrite>,
}

impl PipeWriter {
    /// Wraps a loop implementation's pipe.
    pub fn new(inner: Box<dyn PipeWrite>) -> Self {
        PipeWriter { inner }
    }

    /// Writes as much of `buf` as the pipe takes at once (at least one byte unless it fails);
    /// gives the count and the buffer back.
    pub fn write(&mut self, buf: Vec<u8>) -> impl Future<Output = BufResult<usize>> + use<> {
        self.inner.write(buf, 0)
    }

    /// Writes all of `buf`; the buffer is returned in every case.
    ///
    /// # Errors
    /// `BrokenPipe` when the reader is gone; another OS error of `write(2)`; an error when the
    /// loop is closed.
    pub async fn write_all(&mut self, buf: Vec<u8>) -> BufResult<()> {
        let mut buf = buf;
        let mut pos = 0;
        while pos < buf.len() {
            let (res, b) = self.inner.write(buf, pos).await;
            buf = b;
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => pos += n,
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Closes the pipe (the same as dropping it).
    pub fn close(self) {}
}

impl AsRawFd for PipeWriter {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.raw_fd()
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("fd", &self.inner.raw_fd())
            .finish()
    }
}
