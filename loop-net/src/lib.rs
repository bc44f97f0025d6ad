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
//!     client.write_all(b"ping".to_vec()).await.0?;
//!     let (n, buf) = server.read(Vec::with_capacity(16)).await;
//!     n?;
//!     Ok::<_, std::io::Error>(buf)
//! })??;
//! assert_eq!(echoed, b"ping");
//! # Ok(()) }
//! ```
//!
//! Platforms: Unix.
#![deny(missing_docs)]

mod protocol;
mod resolve;
mod socket;
mod split;
mod tcp;
mod udp;
mod unix;

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
