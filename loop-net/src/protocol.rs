//! asyncio's callback layer: [`Protocol`]s driven by a [`Transport`], and
//! [`create_server`] / [`create_connection`] that take a protocol factory.
//!
//! The transport reads in a task of its own and calls the protocol; writes never block: they
//! go to a buffer that a writer task sends. When the buffer grows past the high-water mark the
//! protocol's `pause_writing` is called, and `resume_writing` once it drains below the
//! low-water mark (both scheduled with `call_soon`, so a protocol is never re-entered from
//! inside one of its own callbacks). `connection_lost` is called exactly once.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream as StdTcpStream};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use loop_api::{
    EventLoop, ExceptionContext, LoopError, Op, SockRecv, SockSendAll, Task, WeakEventLoop,
};

use crate::socket::{is_resource_exhaustion, is_retryable_accept_error, running_loop};
use crate::tcp::{TcpListener, TcpStream};

/// The callbacks of a connection (asyncio's `Protocol`). All have defaults but
/// `data_received`.
pub trait Protocol: 'static {
    /// The connection is up; keep `transport` to write to it.
    fn connection_made(&mut self, transport: &Transport) {
        let _ = transport;
    }
    /// Bytes arrived.
    fn data_received(&mut self, data: &[u8]);
    /// The peer closed its side. Return true to keep the transport open (to write more),
    /// false (the default) to close it.
    fn eof_received(&mut self) -> bool {
        false
    }
    /// The connection is gone: `None` after a normal close, the error otherwise.
    fn connection_lost(&mut self, error: Option<io::Error>) {
        let _ = error;
    }
    /// The write buffer went over the high-water mark: stop writing for a while.
    fn pause_writing(&mut self) {}
    /// The write buffer drained below the low-water mark: writing may go on.
    fn resume_writing(&mut self) {}
}

/// Default high-water mark of the write buffer (asyncio's 64 KiB).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// The largest piece of the buffer handed to one send.
const WRITE_CHUNK: usize = 256 * 1024;

struct Inner {
    /// Weak: the transport's own tasks hold it, and the loop holds its tasks.
    lp: WeakEventLoop,
    sock: StdTcpStream,
    protocol: RefCell<Option<Rc<RefCell<dyn Protocol>>>>,
    buffer: RefCell<VecDeque<u8>>,
    in_flight: Cell<usize>,
    high: Cell<usize>,
    low: Cell<usize>,
    paused: Cell<bool>,
    closing: Cell<bool>,
    eof_pending: Cell<bool>,
    lost: Cell<bool>,
    writer: RefCell<Option<Waker>>,
    tasks: RefCell<Vec<Task<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Before the socket closes (fields drop after this).
        if let Some(lp) = self.lp.upgrade() {
            lp.as_abstract()
                .release_socket(std::os::fd::AsRawFd::as_raw_fd(&self.sock));
        }
    }
}

/// The write side of a connection handed to a [`Protocol`] (asyncio's `Transport`). Cheap to
/// clone; all clones are the same transport.
#[derive(Clone)]
pub struct Transport {
    inner: Rc<Inner>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("buffered", &self.get_write_buffer_size())
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl Transport {
    /// Queues `data` for sending; never blocks. Ignored once the transport is closing.
    pub fn write(&self, data: &[u8]) {
        let inner = &self.inner;
        if inner.closing.get() || inner.eof_pending.get() || data.is_empty() {
            return;
        }
        inner.buffer.borrow_mut().extend(data);
        self.wake_writer();
        if !inner.paused.get() && self.get_write_buffer_size() > inner.high.get() {
            inner.paused.set(true);
            self.schedule(|p| p.pause_writing());
        }
    }

    /// Bytes written but not yet sent (buffered or in a send right now).
    pub fn get_write_buffer_size(&self) -> usize {
        self.inner.buffer.borrow().len() + self.inner.in_flight.get()
    }

    /// Sets the high- and low-water marks (`low` defaults to a quarter of `high`, as asyncio).
    ///
    /// # Errors
    /// `InvalidArgument` if `low > high`.
    pub fn set_write_buffer_limits(
        &self,
        high: usize,
        low: Option<usize>,
    ) -> Result<(), LoopError> {
        let low = low.unwrap_or(high / 4);
        if low > high {
            return Err(LoopError::InvalidArgument(format!(
                "set_write_buffer_limits: low ({low}) must not exceed high ({high})"
            )));
        }
        self.inner.high.set(high);
        self.inner.low.set(low);
        Ok(())
    }

    /// Closes the write side once the buffer is sent (a half-close); reading goes on.
    pub fn write_eof(&self) {
        self.inner.eof_pending.set(true);
        self.wake_writer();
    }

    /// Closes the connection once the buffer is sent; `connection_lost(None)` follows.
    pub fn close(&self) {
        if !self.inner.closing.replace(true) {
            self.wake_writer();
        }
    }

    /// Closes at once, dropping unsent data; `connection_lost(None)` follows.
    pub fn abort(&self) {
        self.inner.closing.set(true);
        self.inner.buffer.borrow_mut().clear();
        self.lose(None);
    }

    /// True once `close` or `abort` was called (or the connection was lost).
    pub fn is_closing(&self) -> bool {
        self.inner.closing.get()
    }

    /// The peer's address (asyncio's `get_extra_info("peername")`).
    ///
    /// # Errors
    /// The OS call failing.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.sock.peer_addr()
    }

    fn wake_writer(&self) {
        if let Some(w) = self.inner.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// Calls the protocol on the next iteration (never from inside one of its callbacks).
    fn schedule(&self, f: impl FnOnce(&mut dyn Protocol) + 'static) {
        let protocol = self.inner.protocol.borrow().clone();
        if let Some(p) = protocol
            && let Some(lp) = self.inner.lp.upgrade()
        {
            let _ = lp.call_soon(move || f(&mut *p.borrow_mut()));
        }
    }

    /// Ends the connection once: stops the tasks, closes the socket, tells the protocol.
    fn lose(&self, error: Option<io::Error>) {
        let inner = &self.inner;
        if inner.lost.replace(true) {
            return;
        }
        inner.closing.set(true);
        let _ = inner.sock.shutdown(Shutdown::Both);
        for t in inner.tasks.borrow_mut().drain(..) {
            t.cancel();
        }
        self.wake_writer();
        let protocol = inner.protocol.borrow_mut().take();
        if let Some(p) = protocol
            && let Some(lp) = inner.lp.upgrade()
        {
            // Scheduled, so it never runs inside one of the protocol's own callbacks.
            let _ = lp.call_soon(move || p.borrow_mut().connection_lost(error));
        }
    }
}

/// Starts the transport of a connected stream with `protocol`.
fn start(
    lp: &EventLoop,
    sock: StdTcpStream,
    protocol: Rc<RefCell<dyn Protocol>>,
) -> io::Result<Transport> {
    sock.set_nonblocking(true)?;
    // A registered socket (released in `Inner`'s drop): no re-arm per operation.
    let _ = lp
        .as_abstract()
        .register_socket(std::os::fd::AsRawFd::as_raw_fd(&sock));
    let transport = Transport {
        inner: Rc::new(Inner {
            lp: lp.downgrade(),
            sock,
            protocol: RefCell::new(Some(protocol.clone())),
            buffer: RefCell::new(VecDeque::new()),
            in_flight: Cell::new(0),
            high: Cell::new(DEFAULT_HIGH_WATER),
            low: Cell::new(DEFAULT_HIGH_WATER / 4),
            paused: Cell::new(false),
            closing: Cell::new(false),
            eof_pending: Cell::new(false),
            lost: Cell::new(false),
            writer: RefCell::new(None),
            tasks: RefCell::new(Vec::new()),
        }),
    };
    protocol.borrow_mut().connection_made(&transport);
    let reader = lp.create_task(read_loop(transport.clone()))?;
    let writer = lp.create_task(write_loop(transport.clone()))?;
    transport.inner.tasks.borrow_mut().extend([reader, writer]);
    Ok(transport)
}

async fn read_loop(t: Transport) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&t.inner.sock);
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        // The future holds the loop weakly (its tasks must not keep it alive).
        let (res, b) = SockRecv::new(t.inner.lp.run_op(Op::Recv { fd, buf })).await;
        buf = b;
        let protocol = t.inner.protocol.borrow().clone();
        let Some(protocol) = protocol else { return };
        match res {
            Ok(0) => {
                if !protocol.borrow_mut().eof_received() {
                    t.close();
                }
                return;
            }
            Ok(_) => protocol.borrow_mut().data_received(&buf),
            Err(e) => return t.lose(Some(e)),
        }
    }
}

async fn write_loop(t: Transport) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&t.inner.sock);
    let inner = t.inner.clone();
    loop {
        // Wait for data, a half-close or a close.
        poll_fn(|cx| {
            if !inner.buffer.borrow().is_empty() || inner.closing.get() || inner.eof_pending.get() {
                Poll::Ready(())
            } else {
                *inner.writer.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        if inner.lost.get() {
            return;
        }
        let chunk: Vec<u8> = {
            let mut buffer = inner.buffer.borrow_mut();
            let n = buffer.len().min(WRITE_CHUNK);
            buffer.drain(..n).collect()
        };
        if !chunk.is_empty() {
            inner.in_flight.set(chunk.len());
            let send = Op::Send {
                fd,
                buf: chunk,
                pos: 0,
            };
            let (res, _) = SockSendAll::new(inner.lp.run_op(send)).await;
            inner.in_flight.set(0);
            if let Err(e) = res {
                return t.lose(Some(e));
            }
            if inner.paused.get() && t.get_write_buffer_size() <= inner.low.get() {
                inner.paused.set(false);
                t.schedule(|p| p.resume_writing());
            }
            continue;
        }
        if inner.closing.get() {
            return t.lose(None);
        }
        if inner.eof_pending.get() {
            let _ = inner.sock.shutdown(Shutdown::Write);
            inner.eof_pending.set(false);
            // Writing is over; the reader (or close) ends the connection.
            poll_fn(|cx| {
                if inner.closing.get() {
                    Poll::Ready(())
                } else {
                    *inner.writer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            return t.lose(None);
        }
    }
}

/// How a [`Server`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// How long to pause accepting when the process is out of fds or memory (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM); asyncio's `ACCEPT_RETRY_DELAY` is 1 s.
    pub accept_retry_delay: Duration,
    /// Binding options (SO_REUSEADDR, SO_REUSEPORT, backlog).
    pub bind: crate::BindOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            accept_retry_delay: Duration::from_secs(1),
            bind: crate::BindOptions::default(),
        }
    }
}

/// A listening server made by [`create_server`]; it serves until [`close`](Server::close)d
/// (or dropped).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    accept: Option<Task<()>>,
}

impl Server {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes the listening socket (open connections go on).
    pub fn close(&mut self) {
        if let Some(t) = self.accept.take() {
            t.cancel();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}

/// Listens on `addr` and gives every connection a new protocol from `factory` (asyncio's
/// `loop.create_server`). Accepting starts at once on the running loop.
///
/// Running out of fds or memory does not stop the server: the first failure of a streak is
/// reported to the exception handler, and accepting pauses for `accept_retry_delay`.
///
/// # Errors
/// No running loop; the bind failing.
pub fn create_server<P: Protocol>(
    factory: impl Fn() -> P + 'static,
    addr: SocketAddr,
    opts: ServerOptions,
) -> io::Result<Server> {
    let lp = running_loop()?;
    let listener = TcpListener::bind_on(&lp, addr, opts.bind)?;
    let addr = listener.local_addr()?;
    // Weak: the accept task belongs to the loop and must not keep it alive.
    let weak = lp.downgrade();
    let accept = lp.create_task(async move {
        let mut reported = false;
        loop {
            let accepted = listener.accept_std().await;
            let Some(lp) = weak.upgrade() else { return };
            match accepted {
                Ok(sock) => {
                    reported = false;
                    let protocol: Rc<RefCell<dyn Protocol>> = Rc::new(RefCell::new(factory()));
                    if let Err(e) = start(&lp, sock, protocol) {
                        report(&lp, "could not start a connection's transport", &e);
                    }
                }
                Err(e) if is_resource_exhaustion(&e) => {
                    if !reported {
                        reported = true;
                        report(&lp, "accept failed: out of resources; the server keeps listening and retries", &e);
                    }
                    drop(lp);
                    loop_api::sleep(opts.accept_retry_delay).await;
                }
                Err(e) if is_retryable_accept_error(&e) => {}
                Err(e) => {
                    report(&lp, "accept failed; the server stops accepting", &e);
                    return;
                }
            }
        }
    })?;
    Ok(Server {
        addr,
        accept: Some(accept),
    })
}

/// Connects to `addr` and drives the connection with `protocol` (asyncio's
/// `loop.create_connection`); gives the transport and the protocol.
///
/// # Errors
/// No running loop; the connection failing.
pub async fn create_connection<P: Protocol>(
    protocol: P,
    addr: SocketAddr,
) -> io::Result<(Transport, Rc<RefCell<P>>)> {
    let lp = running_loop()?;
    let stream = TcpStream::connect_on(&lp, addr).await?;
    let protocol = Rc::new(RefCell::new(protocol));
    let transport = start(&lp, stream.into_std()?, protocol.clone())?;
    Ok((transport, protocol))
}

fn report(lp: &EventLoop, message: &str, e: &io::Error) {
    lp.call_exception_handler(&ExceptionContext {
        message: message.to_string(),
        error: Some(e.to_string()),
        ..ExceptionContext::default()
    });
}
