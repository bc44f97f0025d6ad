//! The owned halves of a stream ([`OwnedReadHalf`], [`OwnedWriteHalf`]), so a reader task and
//! a writer task can share one connection (TCP or Unix).

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use loop_api::BufResult;

use crate::io_traits::{self, ReadState, Writer};
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

pub(crate) fn split<S: HalfClose>(
    inner: Rc<Shared<S>>,
    rd: ReadState,
    wr: Writer,
) -> (OwnedReadHalf<S>, OwnedWriteHalf<S>) {
    (
        OwnedReadHalf {
            inner: inner.clone(),
            rd: RefCell::new(rd),
        },
        OwnedWriteHalf { inner, wr },
    )
}

/// The read half of a stream (`S` is the std socket type: TCP by default, or Unix).
pub struct OwnedReadHalf<S: HalfClose = std::net::TcpStream> {
    inner: Rc<Shared<S>>,
    rd: RefCell<ReadState>,
}

io_traits::impl_read_traits!([S: HalfClose] OwnedReadHalf<S>);

impl<S: HalfClose> OwnedReadHalf<S> {
    /// Receives up to `buf.capacity()` bytes (0 at end of stream; asyncio's `sock_recv`).
    /// Bytes the `AsyncRead` impl read ahead come first.
    pub async fn recv(&self, buf: Vec<u8>) -> BufResult<usize> {
        io_traits::recv(&self.inner, &self.rd, buf).await
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
    wr: Writer,
}

io_traits::impl_write_traits!([S: HalfClose] OwnedWriteHalf<S>);

impl<S: HalfClose> OwnedWriteHalf<S> {
    /// Sends all of `buf` (asyncio's `sock_sendall`). Bytes the `AsyncWrite` impl accepted go
    /// out first.
    pub async fn send_all(&self, buf: Vec<u8>) -> BufResult<()> {
        if let Err(e) = io_traits::flush_accepted(&self.wr).await {
            return (Err(e), buf);
        }
        self.inner.write_all(buf).await
    }

    /// Sends what the socket takes now (asyncio's `sock_send`).
    pub async fn send(&self, buf: Vec<u8>) -> BufResult<usize> {
        if let Err(e) = io_traits::flush_accepted(&self.wr).await {
            return (Err(e), buf);
        }
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
