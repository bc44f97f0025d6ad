//! Run [hyper](https://docs.rs/hyper) 1.x, HTTP/1.1 and HTTP/2, servers and clients, on any
//! asyncio-style event loop of this workspace (mio, polling, io_uring, virtual time): the
//! three pieces hyper asks a runtime for.
//!
//! - [`HyperIo`]: wraps any `futures_io::AsyncRead + AsyncWrite + Unpin` (loop-net's
//!   `TcpStream`/`UnixStream`, a TLS stream over one, ...) as `hyper::rt::Read + Write`.
//! - [`LoopExecutor`]: hyper's `Executor`, spawning its background futures (HTTP/2
//!   connection tasks, client connections) as tasks of the running loop. Not `Send` futures
//!   are fine: the loop runs them on its thread.
//! - [`LoopTimer`]: hyper's `Timer` (keep-alive, header-read timeouts) on the loop's clock.
//!
//! ```
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use loop_hyper::{HyperIo, LoopTimer};
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }
//!
//! /// Serves HTTP/1.1 with keep-alive on `addr` until the task is cancelled.
//! async fn serve(addr: std::net::SocketAddr) -> std::io::Result<()> {
//!     let listener = loop_net::TcpListener::bind(addr)?;
//!     let lp = loop_api::get_running_loop().map_err(std::io::Error::other)?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         let conn = hyper::server::conn::http1::Builder::new()
//!             .timer(LoopTimer::default())
//!             .serve_connection(HyperIo::new(stream), hyper::service::service_fn(hello));
//!         lp.create_task(async move { let _ = conn.await; })
//!             .map_err(std::io::Error::other)?;
//!     }
//! }
//! ```
//!
//! Platforms: Unix (as the loops).
#![deny(missing_docs)]

mod executor;
mod io;
mod timer;

pub use executor::LoopExecutor;
pub use io::HyperIo;
pub use timer::{LoopSleep, LoopTimer};

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
