//! The hyper server of `cargo run --example hyper_server`: HTTP/1.1 (keep-alive) and HTTP/2
//! (prior knowledge, as `curl --http2-prior-knowledge` speaks it) on one port, on any
//! backend, through `loop-hyper`.
//!
//! - `GET /` answers a greeting naming the protocol;
//! - `POST /echo` streams the request body back as it arrives (no buffering of the whole
//!   body: hyper's `Incoming` is the response body);
//! - anything else is 404.
//!
//! Each connection is a task; which protocol it speaks is read from its first bytes with
//! `AsyncBufRead::fill_buf` (a peek: nothing is consumed), as asyncio's
//! `StreamReader` would.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::AsyncBufReadExt;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use loop_api::EventLoop;
use loop_hyper::{HyperIo, LoopExecutor, LoopTimer};
use loop_net::{TcpListener, TcpStream};

/// The HTTP/2 connection preface's first bytes (RFC 9113 §3.4); no HTTP/1 method starts so.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// A response body: a whole one, or the request's streamed back.
pub type Body = BoxBody<Bytes, hyper::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The server's one handler.
///
/// # Errors
/// Never (hyper's error type is the body's).
pub async fn handle(req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    let version = format!("{:?}", req.version());
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Ok(Response::new(full(format!(
            "hello from hyper on the loop over {version}\n"
        )))),
        (&Method::POST, "/echo") => Ok(Response::new(req.into_body().boxed())),
        _ => {
            let mut res = Response::new(full("not found\n"));
            *res.status_mut() = StatusCode::NOT_FOUND;
            Ok(res)
        }
    }
}

/// Binds the server's listener on `lp`.
///
/// # Errors
/// The bind failing.
pub fn bind(lp: &EventLoop, addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind_on(lp, addr, loop_net::BindOptions::default())
}

/// Serves one connection, HTTP/2 if it starts with the preface, else HTTP/1.1.
///
/// # Errors
/// The connection's I/O or protocol error.
pub async fn serve_connection(stream: TcpStream) -> Result<(), hyper::Error> {
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    // The stream's own read-ahead (AsyncBufRead): the peeked bytes stay for hyper.
    let http2 = match stream.fill_buf().await {
        Ok(first) => {
            let n = first.len().min(H2_PREFACE.len());
            n > 0 && first[..n] == H2_PREFACE[..n]
        }
        Err(_) => return Ok(()),
    };
    let io = HyperIo::new(stream);
    let svc = hyper::service::service_fn(handle);
    if http2 {
        hyper::server::conn::http2::Builder::new(LoopExecutor)
            .timer(LoopTimer::default())
            .serve_connection(io, svc)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .timer(LoopTimer::default())
            .serve_connection(io, svc)
            .await
    }
}

/// Accepts connections on `listener` forever, one task each.
///
/// # Errors
/// An accept failing for a reason other than one connection's (see
/// `loop_net::is_retryable_accept_error`).
pub async fn serve(lp: EventLoop, listener: TcpListener) -> io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if loop_net::is_retryable_accept_error(&e) => continue,
            Err(e) => return Err(e),
        };
        lp.create_task(async move {
            if let Err(e) = serve_connection(stream).await {
                eprintln!("hyper_server: a connection ended with: {e}");
            }
        })
        .map_err(io::Error::other)?;
    }
}
