//! The owned halves of a stream ([`OwnedReadHalf`], [`OwnedWriteHalf`]), so a reader task and
//! a writer task can share one connection (TCP or Unix).

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use loop_api::BufResult;

use crate::socket::Shared;

/// A stream socket that can be half-closed (TCP and Unix streams).
pub trait HalfClose: AsRawFd + 'static {
    /// `shutdown(2)` of the socket.
    ///
    /// # Errors
    /// The OS call failing.
    fn shutdown_half(&self, how: Shutdown) -> io::Result<()>;
}

impl HalfClose for std::net::TcpStream {
    fn shutdown_half(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

impl HalfClose for std::os::unix::net::UnixStream {
    fn shutdown_half(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

pub(crate) fn split<S: HalfClose>(inner: Rc<Shared<S>>) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    (
        OwnedReadHalf {
            inner: inner.clone(),
        },
        OwnedWriteHalf { inner },
    )
}

/// The read half of a stream (`S` is the std socket type: TCP by default, or Unix).
pub struct OwnedReadHalf<S: HalfClose = std::net::TcpStream> {
    inner: Rc<Shared<S>>,
}

impl<S: HalfClose> OwnedReadHalf<S> {
    /// Reads up to `buf.capacity()` bytes (0 at end of stream).
    pub async fn read(&self, buf: Vec<u8>) -> BufResult<usize> {
        self.inner.read(buf).await
    }

    /// The std socket, for its addresses and options.
    pub fn as_std(&self) -> &S {
        &self.inner.io
    }
}

/// The write half of a stream; dropping it shuts the connection down for writing (the peer
/// reads end of stream).
pub struct OwnedWriteHalf<S: HalfClose = std::net::TcpStream> {
    inner: Rc<Shared<S>>,
}

impl<S: HalfClose> OwnedWriteHalf<S> {
    /// Writes all of `buf`.
    pub async fn write_all(&self, buf: Vec<u8>) -> BufResult<()> {
        self.inner.write_all(buf).await
    }

    /// Writes what the socket takes now.
    pub async fn write(&self, buf: Vec<u8>) -> BufResult<usize> {
        self.inner.write(buf).await
    }

    /// The std socket, for its addresses and options.
    pub fn as_std(&self) -> &S {
        &self.inner.io
    }
}

impl<S: HalfClose> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        // Errors (the peer already closed) do not matter here.
        let _ = self.inner.io.shutdown_half(Shutdown::Write);
    }
}

impl<S: HalfClose> fmt::Debug for OwnedReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadHalf")
            .field("fd", &self.inner.fd())
            .finish()
    }
}

impl<S: HalfClose> fmt::Debug for OwnedWriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedWriteHalf")
            .field("fd", &self.inner.fd())
            .finish()
    }
}
