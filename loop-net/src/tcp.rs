//! TCP: [`TcpListener`], [`TcpStream`] and its owned halves.

use std::cell::RefCell;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use loop_api::{BufResult, EventLoop, SockAddr};
use socket2::Type;

use crate::io_traits::{self, ReadState, Writer};
use crate::socket::{self, BindOptions, Shared, inet, running_loop};
use crate::split::{OwnedReadHalf, OwnedWriteHalf};

/// A TCP listening socket (asyncio's `start_server` counterpart).
#[derive(Debug)]
pub struct TcpListener {
    inner: Rc<Shared<std::net::TcpListener>>,
}

impl TcpListener {
    /// Binds to `addr` (with `SO_REUSEADDR`) on the running loop.
    ///
    /// # Errors
    /// No running loop; the OS refusing the bind (address in use, permission).
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        Self::bind_on(&running_loop()?, addr, BindOptions::default())
    }

    /// Binds to `addr` with `opts` on loop `lp`.
    ///
    /// # Errors
    /// The OS refusing the socket, an option or the bind.
    pub fn bind_on(lp: &EventLoop, addr: SocketAddr, opts: BindOptions) -> io::Result<TcpListener> {
        let sock = socket::bound(&SockAddr::from(addr), Type::STREAM, opts)?;
        sock.listen(opts.backlog)?;
        Ok(TcpListener {
            inner: Shared::new(std::net::TcpListener::from(sock), lp),
        })
    }

    /// Wraps a listening std socket for loop `lp` (the loop makes it non-blocking): e.g. one
    /// of several `SO_REUSEPORT` listeners bound on one thread and handed to the loops of
    /// others.
    pub fn from_std_on(lp: &EventLoop, listener: std::net::TcpListener) -> TcpListener {
        TcpListener {
            inner: Shared::new(listener, lp),
        }
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    /// The accept failing (EMFILE when out of fds, ...); the listener stays usable.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.inner.accept().await?;
        let stream =
            TcpStream::from_std_on(&self.inner.event_loop()?, std::net::TcpStream::from(fd));
        Ok((stream, inet(&addr)?))
    }

    /// Accepts the next connection as a std stream (for transports that own it).
    pub(crate) async fn accept_std(&self) -> io::Result<std::net::TcpStream> {
        let (fd, _) = self.inner.accept().await?;
        Ok(std::net::TcpStream::from(fd))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.local_addr()
    }
}

/// A TCP connection with owned-buffer reads and writes (asyncio's `StreamReader`/`Writer`
/// pair in one object).
#[derive(Debug)]
pub struct TcpStream {
    inner: Rc<Shared<std::net::TcpStream>>,
    rd: RefCell<ReadState>,
    wr: Writer,
}

io_traits::impl_read_traits!([] TcpStream);
io_traits::impl_write_traits!([] TcpStream);

impl TcpStream {
    /// Connects to `addr` on the running loop.
    ///
    /// # Errors
    /// No running loop; `ConnectionRefused`, unreachable, ...
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        Self::connect_on(&running_loop()?, addr).await
    }

    /// Connects to `addr` on the running loop, giving up after `limit` (`TimedOut`).
    ///
    /// # Errors
    /// As [`connect`](Self::connect); `TimedOut` when `limit` passes first.
    pub async fn connect_timeout(addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
        loop_api::wait_for(limit, Self::connect(addr)).await?
    }

    /// Connects to `addr` on loop `lp`.
    ///
    /// # Errors
    /// `ConnectionRefused`, unreachable, ...
    pub async fn connect_on(lp: &EventLoop, addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = socket::connect(lp, SockAddr::from(addr), Type::STREAM).await?;
        Ok(Self::from_std_on(lp, std::net::TcpStream::from(fd)))
    }

    /// Wraps a connected std stream for loop `lp`.
    pub fn from_std_on(lp: &EventLoop, stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            inner: Shared::new(stream, lp),
            rd: RefCell::default(),
            wr: Writer::default(),
        }
    }

    /// Receives up to `buf.capacity()` bytes (0 at end of stream; asyncio's `sock_recv`).
    /// The buffer comes back always. Bytes the `AsyncRead` impl read ahead come first.
    pub async fn recv(&self, buf: Vec<u8>) -> BufResult<usize> {
        io_traits::recv(&self.inner, &self.rd, buf).await
    }

    /// Receives into the caller's buffer (asyncio's `sock_recv_into`); safe on every backend
    /// (the loop receives into a buffer of its own and copies).
    ///
    /// # Errors
    /// The receive's error.
    pub async fn recv_into(&self, dst: &mut [u8]) -> io::Result<usize> {
        let (res, buf) = self.recv(Vec::with_capacity(dst.len().max(1))).await;
        let n = res?.min(dst.len());
        dst[..n].copy_from_slice(&buf[..n]);
        Ok(n)
    }

    /// The std stream inside, if no split half shares it.
    ///
    /// # Errors
    /// `Other` when a half still shares the stream.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let shared = Rc::try_unwrap(self.inner)
            .map_err(|_| io::Error::other("the stream is still shared by a split half"))?;
        // The loop forgets the socket when `shared` drops; a duplicate fd of the same socket
        // lives on.
        shared.io.try_clone()
    }

    /// Sends what the socket takes now, at least one byte unless it fails (asyncio's
    /// `sock_send`). Bytes the `AsyncWrite` impl accepted go out first.
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

    /// The peer's address.
    ///
    /// # Errors
    /// `NotConnected` and other OS errors.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.local_addr()
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// # Errors
    /// The OS call failing.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.io.set_nodelay(on)
    }

    /// Shuts down reading, writing or both (`Shutdown::Write` is a half-close: the peer reads
    /// end of stream, and can still send).
    ///
    /// # Errors
    /// The OS call failing (`NotConnected`, ...).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.io.shutdown(how)
    }

    /// Splits into a read half and a write half, for a reader task and a writer task. Dropping
    /// the write half shuts the connection down for writing; the socket closes when both are
    /// gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        crate::split::split(self.inner, self.rd.into_inner(), self.wr)
    }
}
