//! What the example programs share, kept here so the tests in `tests/` can run it.
//!
//! - [`echo`]: the TCP echo server of `cargo run --example echo_server` (one task per
//!   connection over `sock_accept`/`sock_recv`/`sock_sendall`).
//! - [`chat`]: the line chat server of `cargo run --example chat_server` (split streams).
//! - [`echo_streams`]: the same echo server on `loop-net` streams (`cargo run --example
//!   echo_streams`).
//! - [`http`]: the HTTP/1.1 hello server of `cargo run --example http_hello` (on `loop-net`).
//! - [`hyper_http`]: the hyper server of `cargo run --example hyper_server` (HTTP/1.1 and
//!   HTTP/2 through `loop-hyper`, request bodies streamed back).
//! - [`https`]: the HTTPS server of `cargo run --example https_server` (the same hyper
//!   server behind rustls, HTTP/2 or HTTP/1.1 by ALPN, a certificate made at start-up).
//! - [`lines`]: the line-protocol server of `cargo run --example line_server`, read with
//!   `futures_util::AsyncBufReadExt::read_line` on a socket (asyncio's `readline`).
//! - [`per_core`]: a server on one loop per thread (`loop_policy::run_per_core`), each with
//!   its own `SO_REUSEPORT` listener: `echo_server --threads N`, `hyper_server --threads N`.
//! - [`pipeline`]: the producer/consumer pipeline of `cargo run --example pipeline` (a
//!   bounded `loop_sync::Queue`, workers under a `TaskGroup`, a `Semaphore` on connections).
//! - [`rate_limit`]: a rate-limited client, tested on virtual time (an hour in milliseconds).
//! - [`udp`]: the UDP echo server of `cargo run --example udp_echo`.
//! - [`shutdown`]: how the servers stop on Ctrl-C (SIGINT) or `kill` (SIGTERM): the loop's
//!   signal handlers stop it, and the loop is closed so the port is free at once.
//! - [`fib`]: the stdin Fibonacci handler of `cargo run --example fib_stdin`, which computes
//!   big Fibonacci numbers in small steps so the loop never stalls.
//! - [`subprocess`]: the child-process streamer of `cargo run --example subprocess_stream`,
//!   which prints a child's output line by line while a timer keeps ticking.
//!
//! The programs themselves are in `examples/`; run one from the workspace root:
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:8888
//! cargo run --example hello_world
//! ```
#![deny(missing_docs)]

pub mod chat;
pub mod echo;
pub mod echo_streams;
pub mod fib;
pub mod http;
pub mod https;
pub mod hyper_http;
pub mod lines;
pub mod per_core;
pub mod pipeline;
pub mod rate_limit;
pub mod shutdown;
pub mod subprocess;
pub mod udp;
