//! What every socket type shares: the OS socket and the loop its operations run on.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use loop_api::{
    BufResult, EventLoop, LoopError, Op, SockAddr, SockRecv, SockSendAll, WeakEventLoop,
};
use socket2::{Domain, Protocol, Socket, Type};

/// Options for binding a listening or datagram socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindOptions {
    /// `SO_REUSEADDR` (default true for listeners: restart without waiting out TIME_WAIT).
    pub reuse_address: bool,
    /// `SO_REUSEPORT` (default false): several sockets, e.g. one per thread with its own loop,
    /// share the port and the kernel spreads connections across them.
    pub reuse_port: bool,
    /// The listen backlog (default 1024).
    pub backlog: i32,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            reuse_address: true,
            reuse_port: false,
            backlog: 1024,
        }
    }
}

/// The loop of the calling task (what a socket made without an explicit loop uses).
pub(crate) fn running_loop() -> io::Result<EventLoop> {
    loop_api::get_running_loop().map_err(|e: LoopError| {
        io::Error::other(format!(
            "{e}: make sockets inside a task, or pass a loop to the *_on constructor"
        ))
    })
}

/// A non-blocking, close-on-exec socket bound to `addr` with `opts`.
pub(crate) fn bound(addr: &SockAddr, ty: Type, opts: BindOptions) -> io::Result<Socket> {
    let proto = match addr.domain() {
        Domain::UNIX => None,
        _ if ty == Type::STREAM => Some(Protocol::TCP),
        _ => Some(Protocol::UDP),
    };
    let sock = Socket::new(addr.domain(), ty, proto)?;
    sock.set_nonblocking(true)?;
    if addr.domain() != Domain::UNIX {
        sock.set_reuse_address(opts.reuse_address)?;
        if opts.reuse_port {
            set_reuse_port(&sock)?;
        }
    }
    sock.bind(addr)?;
    Ok(sock)
}

#[cfg(unix)]
fn set_reuse_port(sock: &Socket) -> io::Result<()> {
    sock.set_reuse_port(true)
}

/// Converts an address given back by the kernel to an IP address, or says what it was.
pub(crate) fn inet(addr: &SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "expected an IPv4/IPv6 socket address (is this a Unix socket?)",
        )
    })
}

/// An OS socket (as a std type `S`) and the loop its operations run on, held weakly: a
/// socket kept in one of the loop's own tasks must not keep the loop alive. Once the loop is
/// gone, every operation gives the closed-loop error.
#[derive(Debug)]
pub(crate) struct Shared<S: AsRawFd> {
    pub(crate) io: S,
    pub(crate) lp: WeakEventLoop,
}

impl<S: AsRawFd> Shared<S> {
    /// Wraps a socket this object will own until it is dropped; the loop may keep it
    /// armed for good (a registered socket: see `AbstractEventLoop::register_socket`).
    pub(crate) fn new(io: S, lp: &EventLoop) -> Rc<Self> {
        // If the loop cannot watch it now, every operation will say why.
        let _ = lp.as_abstract().register_socket(io.as_raw_fd());
        Rc::new(Shared {
            io,
            lp: lp.downgrade(),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }

    /// The loop, or the closed-loop error once it is gone.
    pub(crate) fn event_loop(&self) -> io::Result<EventLoop> {
        self.lp.upgrade().ok_or_else(loop_api::closed_loop_io_error)
    }

    pub(crate) async fn read(&self, buf: Vec<u8>) -> BufResult<usize> {
        let fd = self.fd();
        SockRecv::new(self.lp.run_op(Op::Recv { fd, buf })).await
    }

    pub(crate) async fn write(&self, buf: Vec<u8>) -> BufResult<usize> {
        let fd = self.fd();
        let (res, op) = self.lp.run_op(Op::Send { fd, buf, pos: 0 }).await;
        (res, op.map(Op::into_buf).unwrap_or_default())
    }

    pub(crate) async fn write_all(&self, buf: Vec<u8>) -> BufResult<()> {
        let fd = self.fd();
        SockSendAll::new(self.lp.run_op(Op::Send { fd, buf, pos: 0 })).await
    }

    pub(crate) async fn accept(&self) -> io::Result<(OwnedFd, SockAddr)> {
        // The loop is not held across the wait (its tasks must not keep it alive).
        let accept = self.event_loop()?.sock_accept_raw(&self.io);
        accept.await
    }
}

impl<S: AsRawFd> Drop for Shared<S> {
    fn drop(&mut self) {
        // Before the socket itself closes (fields drop after this).
        if let Some(lp) = self.lp.upgrade() {
            lp.as_abstract().release_socket(self.io.as_raw_fd());
        }
    }
}

/// Connects a new socket of `addr`'s family and type `ty` to `addr` on `lp`.
pub(crate) async fn connect(lp: &EventLoop, addr: SockAddr, ty: Type) -> io::Result<OwnedFd> {
    let sock = Socket::new(addr.domain(), ty, None)?;
    lp.sock_connect_raw(OwnedFd::from(sock), addr).await
}

/// An accept that failed for this connection only (the peer gave up, a signal): accept the
/// next one at once.
pub fn is_retryable_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The process or system ran out of something accepting needs (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM): it may come back, so pause accepting and retry (asyncio's accept back-off).
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
