//! Unix domain stream sockets: [`UnixListener`], [`UnixStream`].

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::os::unix::net;
use std::path::Path;
use std::rc::Rc;

use loop_api::{BufResult, EventLoop, SockAddr};
use socket2::Type;

use crate::io_traits::{self, ReadState, Writer};
use crate::socket::{self, BindOptions, Shared, running_loop};
use crate::split::{OwnedReadHalf, OwnedWriteHalf};

/// A listening Unix stream socket.
#[derive(Debug)]
pub struct UnixListener {
    inner: Rc<Shared<net::UnixListener>>,
}

impl UnixListener {
    /// Binds to the filesystem path `path` on the running loop (the path must not exist).
    ///
    /// # Errors
    /// No running loop; `AddrInUse` if the path exists; other OS errors.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Self::bind_on(&running_loop()?, path)
    }

    /// Binds to `path` on loop `lp`.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub fn bind_on(lp: &EventLoop, path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let addr = SockAddr::unix(path)?;
        let opts = BindOptions::default();
        let sock = socket::bound(&addr, Type::STREAM, opts)?;
        sock.listen(opts.backlog)?;
        Ok(UnixListener {
            inner: Shared::new(
                net::UnixListener::from(std::os::fd::OwnedFd::from(sock)),
                lp,
            ),
        })
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    /// The accept failing; the listener stays usable.
    pub async fn accept(&self) -> io::Result<(UnixStream, SockAddr)> {
        let (fd, addr) = self.inner.accept().await?;
        let lp = self.inner.event_loop()?;
        Ok((
            UnixStream::from_std_on(&lp, net::UnixStream::from(fd)),
            addr,
        ))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn local_addr(&self) -> io::Result<net::SocketAddr> {
        self.inner.io.local_addr()
    }
}

/// A connected Unix stream socket with owned-buffer reads and writes.
#[derive(Debug)]
pub struct UnixStream {
    inner: Rc<Shared<net::UnixStream>>,
    rd: RefCell<ReadState>,
    wr: Writer,
}

io_traits::impl_read_traits!([] UnixStream);
io_traits::impl_write_traits!([] UnixStream);

impl UnixStream {
    /// Connects to the socket at `path` on the running loop.
    ///
    /// # Errors
    /// No running loop; `NotFound`, `ConnectionRefused`, ...
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let lp = running_loop()?;
        let fd = socket::connect(&lp, SockAddr::unix(path)?, Type::STREAM).await?;
        Ok(Self::from_std_on(&lp, net::UnixStream::from(fd)))
    }

    /// A connected pair on loop `lp` (like `socketpair(2)`).
    ///
    /// # Errors
    /// The OS call failing.
    pub fn pair_on(lp: &EventLoop) -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((Self::from_std_on(lp, a), Self::from_std_on(lp, b)))
    }

    /// Wraps a connected std stream for loop `lp`.
    pub fn from_std_on(lp: &EventLoop, stream: net::UnixStream) -> UnixStream {
        UnixStream {
            inner: Shared::new(stream, lp),
            rd: RefCell::default(),
            wr: Writer::default(),
        }
    }

    /// Receives up to `buf.capacity()` bytes (0 at end of stream; asyncio's `sock_recv`).
    /// Bytes the `AsyncRead` impl read ahead come first.
    pub async fn recv(&self, buf: Vec<u8>) -> BufResult<usize> {
        io_traits::recv(&self.inner, &self.rd, buf).await
    }

    /// Sends what the socket takes now (asyncio's `sock_send`). Bytes the `AsyncWrite` impl
    /// accepted go out first.
    pub async fn send(&self, buf: Vec<u8>) -> BufResult<usize> {
        if let Err(e) = io_traits::flush_accepted(&self.wr).await {
            return (Err(e), buf);
        }
        self.inner.write(buf).await
    }

    /// Sends all of `buf` (asyncio's `sock_sendall`).
    pub async fn send_all(&self, buf: Vec<u8>) -> BufResult<()> {
        if let Err(e) = io_traits::flush_accepted(&self.wr).await {
            return (Err(e), buf);
        }
        self.inner.write_all(buf).await
    }

    /// Shuts down reading, writing or both.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.io.shutdown(how)
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn peer_addr(&self) -> io::Result<net::SocketAddr> {
        self.inner.io.peer_addr()
    }

    /// The socket's file descriptor (still owned by the stream).
    pub fn as_std_fd(&self) -> std::os::fd::RawFd {
        self.inner.fd()
    }

    /// Splits into a read half and a write half (see [`TcpStream::into_split`](crate::TcpStream::into_split)).
    pub fn into_split(
        self,
    ) -> (
        OwnedReadHalf<net::UnixStream>,
        OwnedWriteHalf<net::UnixStream>,
    ) {
        crate::split::split(self.inner, self.rd.into_inner(), self.wr)
    }
}
