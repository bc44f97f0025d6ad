//! asyncio-style networking on any event loop: TCP ([`TcpListener`], [`TcpStream`] with
//! [`into_split`](TcpStream::into_split) halves), Unix stream sockets ([`UnixListener`],
//! [`UnixStream`]) and UDP ([`UdpSocket`]), with owned-buffer futures that are safe on
//! completion backends (io_uring) as well as readiness ones. Built only on `loop-api`'s
//! primitives, so it works on every backend, including third-party ones.
//!
//! Listeners bind with `SO_REUSEADDR`; [`BindOptions::reuse_port`] lets several loops (one per
//! thread) share a port.
//!
//! ```
//! # fn demo(lp: &loop_api::EventLoop) -> Result<(), Box<dyn std::error::Error>> {
//! use loop_net::{TcpListener, TcpStream};
//! let echoed = lp.run_until_complete(async {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//!     let addr = listener.local_addr()?;
//!     let client = TcpStream::connect(addr).await?;
//!     let (server, _) = listener.accept().await?;
//!     client.send_all(b"ping".to_vec()).await.0?;
//!     let (n, buf) = server.recv(Vec::with_capacity(16)).await;
//!     n?;
//!     Ok::<_, std::io::Error>(buf)
//! })??;
//! assert_eq!(echoed, b"ping");
//! # Ok(()) }
//! ```
//!
//! # Two ways to read and write: owned buffers, or the standard traits
//!
//! Every stream ([`TcpStream`], [`UnixStream`], their [`OwnedReadHalf`]/[`OwnedWriteHalf`])
//! has two interfaces:
//!
//! - **Owned-buffer methods**, named as asyncio's `sock_*` functions: `recv(Vec<u8>)`
//!   (`sock_recv`), `recv_into(&mut [u8])`, `send(Vec<u8>)` (`sock_send`) and
//!   `send_all(Vec<u8>)` (`sock_sendall`). The buffer goes to the loop and comes back with the
//!   result ([`BufResult`](loop_api::BufResult)), which is what a completion backend (io_uring)
//!   needs: no copy.
//! - **The ecosystem's traits**: `futures_io::AsyncRead`, `AsyncBufRead` and `AsyncWrite`
//!   (and, with the cargo feature `tokio-io`, tokio's `AsyncRead`/`AsyncBufRead`/`AsyncWrite`),
//!   so `futures_util::AsyncReadExt::read(&mut buf)`, `read_exact`, `read_line`, `write_all`,
//!   hyper (through `loop-hyper`), rustls and codecs work on the streams. The streams are
//!   `Unpin`.
//!
//! The owned-buffer methods are not called `read`/`write`/`write_all` so that they never
//! shadow the trait methods: with `use futures_util::AsyncReadExt`, `stream.read(&mut buf)`
//! is the usual call. (One name stays as std has it: `TcpStream::shutdown(Shutdown)` and
//! `UnixStream::shutdown(Shutdown)`. futures' `AsyncWriteExt::close` does not meet it; with
//! tokio's traits, call `AsyncWriteExt::shutdown(&mut stream)`.) (The loop's pipes, `loop_api::PipeReader`/`PipeWriter`, follow the same
//! rule: `recv`/`send`/`send_all`.)
//!
//! How the traits run over owned buffers (as monoio's and compio's compat layers do): each
//! stream keeps a read buffer with the receive in flight, and a write buffer of up to
//! [`WRITE_BUFFER`] bytes, as asyncio's transports do. A `read` future dropped before it is
//! ready loses no byte (the receive belongs to the stream; the next read gets its bytes). A
//! `poll_write` that returns `Ready(n)` has copied `n` bytes into the write buffer, and a task
//! of the loop (started by the first write) hands the buffer to the kernel in the background,
//! whether or not the writer polls again; a write future dropped before it was ready wrote
//! nothing. `poll_flush` is ready once the kernel took every accepted byte. A stream dropped
//! with bytes still buffered sends them before its socket closes (asyncio's
//! `transport.close()` flushes asynchronously too); flush to learn that they went out, or of
//! a send's error. `poll_close` flushes and shuts the write side down (`shutdown(SHUT_WR)`: the peer
//! reads end of stream); a later write fails with `BrokenPipe`. Mixing the two interfaces on
//! one stream keeps the byte order: `recv` gives the bytes the traits read ahead first,
//! `send`/`send_all` wait until what `poll_write` accepted is with the kernel.
//!
//! ```
//! # fn demo(lp: &loop_api::EventLoop) -> Result<(), Box<dyn std::error::Error>> {
//! use futures_util::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
//! use loop_net::UnixStream;
//! let (line, rest) = lp.run_until_complete(async {
//!     let (mut a, b) = UnixStream::pair_on(&loop_api::get_running_loop().unwrap())?;
//!     a.write_all(b"hello\nworld").await?;
//!     a.close().await?; // flushes, then the peer reads end of stream
//!     let mut b = futures_util::io::BufReader::new(b);
//!     let mut line = String::new();
//!     b.read_line(&mut line).await?;
//!     let mut rest = Vec::new();
//!     b.read_to_end(&mut rest).await?;
//!     Ok::<_, std::io::Error>((line, rest))
//! })??;
//! assert_eq!((line.as_str(), rest.as_slice()), ("hello\n", &b"world"[..]));
//! # Ok(()) }
//! ```
//!
//! Platforms: Unix.
#![deny(missing_docs)]

mod io_traits;
mod protocol;
mod resolve;
mod socket;
mod split;
mod tcp;
mod udp;
mod unix;

pub use io_traits::WRITE_BUFFER;
pub use protocol::{
    DEFAULT_HIGH_WATER, Protocol, Server, ServerOptions, Transport, create_connection,
    create_server,
};
pub use resolve::{connect_host, getaddrinfo};
pub use socket::{BindOptions, is_resource_exhaustion, is_retryable_accept_error};
pub use split::{HalfClose, OwnedReadHalf, OwnedWriteHalf};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
