//! Pipes read and written through the loop: a child's stdio, `connect_read_pipe`,
//! `connect_write_pipe`.
//!
//! The fd is non-blocking; a read or write is tried at once, and on `WouldBlock` the future
//! waits for readiness with a [`Op::PollReadable`]/[`Op::PollWritable`] operation on the
//! loop's driver (an epoll/kqueue registration on readiness backends, `POLL_ADD` on io_uring)
//! and tries again. The futures share ownership of the fd, so dropping the pipe while a read
//! is pending never leaves a future with a closed (and maybe reused) fd number.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use loop_api::{
    BufResult, LocalBoxFuture, Op, PipeRead, PipeReader, PipeWrite, PipeWriter, WeakEventLoop,
};

use crate::sys::{check_fd, retry_eintr, set_nonblocking, syscall, without_sigpipe};

/// One end of a pipe, owned by the loop's futures as much as by its user. It holds the loop
/// weakly, as every operation's future does.
pub(crate) struct LoopPipe {
    fd: Rc<OwnedFd>,
    lp: WeakEventLoop,
}

impl LoopPipe {
    /// Takes `fd` (made non-blocking) for use on the loop `lp`.
    pub(crate) fn new(lp: WeakEventLoop, fd: OwnedFd) -> io::Result<Self> {
        check_fd(fd.as_raw_fd())?;
        set_nonblocking(fd.as_raw_fd())?;
        Ok(LoopPipe {
            fd: Rc::new(fd),
            lp,
        })
    }

    pub(crate) fn into_reader(self) -> PipeReader {
        PipeReader::new(Box::new(self))
    }

    pub(crate) fn into_writer(self) -> PipeWriter {
        PipeWriter::new(Box::new(self))
    }
}

/// Waits until `fd` is ready for `op` (a poll operation on it), with the one operation
/// future.
pub(crate) async fn wait_ready(lp: &WeakEventLoop, op: Op) -> io::Result<()> {
    lp.run_op(op).await.0.map(drop)
}

/// `read(2)` into `buf`'s spare capacity, once (EINTR retried).
fn read_once(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let n = retry_eintr(|| {
        // SAFETY (inside syscall!): `spare` is writable memory of `spare.len()` bytes.
        syscall!(read(fd, spare.as_mut_ptr().cast(), spare.len()))
    })? as usize;
    // SAFETY: the kernel initialised `n` bytes after the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `write(2)` of `buf`, once (EINTR retried). A reader that is gone is `BrokenPipe`, never a
/// SIGPIPE, whatever the process's disposition.
fn write_once(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    retry_eintr(|| {
        without_sigpipe(|| {
            // SAFETY (inside syscall!): `buf` is readable memory of `buf.len()` bytes.
            syscall!(write(fd, buf.as_ptr().cast(), buf.len())).map(|n| n as usize)
        })
    })
}

impl PipeRead for LoopPipe {
    fn read(&mut self, mut buf: Vec<u8>) -> LocalBoxFuture<BufResult<usize>> {
        let fd = self.fd.clone();
        let lp = self.lp.clone();
        Box::pin(async move {
            if buf.capacity() == buf.len() {
                buf.reserve(1);
            }
            loop {
                match read_once(fd.as_raw_fd(), &mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    res => return (res, buf),
                }
                let op = Op::PollReadable { fd: fd.as_raw_fd() };
                if let Err(e) = wait_ready(&lp, op).await {
                    return (Err(e), buf);
                }
            }
        })
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl PipeWrite for LoopPipe {
    fn write(&mut self, buf: Vec<u8>, pos: usize) -> LocalBoxFuture<BufResult<usize>> {
        let fd = self.fd.clone();
        let lp = self.lp.clone();
        Box::pin(async move {
            loop {
                let rest = &buf[pos.min(buf.len())..];
                if rest.is_empty() {
                    return (Ok(0), buf);
                }
                match write_once(fd.as_raw_fd(), rest) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    res => return (res, buf),
                }
                let op = Op::PollWritable { fd: fd.as_raw_fd() };
                if let Err(e) = wait_ready(&lp, op).await {
                    return (Err(e), buf);
                }
            }
        })
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
