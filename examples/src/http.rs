//! A small HTTP/1.1 "hello" server on `loop-net` streams, for reading and for `wrk`.
//!
//! Keep-alive and pipelined requests are handled; every request, whatever its path, gets
//! `200 OK` with `Hello, world!`. Request bodies are not supported (a request with a body
//! gets `400` and the connection is closed), which is all `wrk` and curl need.

use std::io;
use std::net::SocketAddr;

use loop_api::EventLoop;
use loop_net::{TcpListener, TcpStream};

/// The response to every request.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The largest request head accepted (asyncio's default StreamReader limit is 64 KiB).
const MAX_HEAD: usize = 64 * 1024;

/// Accepts connections on `listener` forever, one task per connection.
///
/// # Errors
/// An accept error that is not about one connection or a temporary shortage.
pub async fn serve(lp: EventLoop, listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let _ = conn.set_nodelay(true);
                lp.create_task(async move {
                    let _ = handle(conn).await;
                })?;
            }
            Err(e) if super::echo::is_retryable_accept_error(&e) => {}
            Err(e) if super::echo::is_resource_exhaustion(&e) => {
                loop_api::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Binds `addr` on `lp` (SO_REUSEADDR).
///
/// # Errors
/// The bind failing.
pub fn bind(lp: &EventLoop, addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind_on(lp, addr, loop_net::BindOptions::default())
}

/// Where the head of the first complete request in `buf` ends (after `\r\n\r\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// True if the head announces a body (which this server does not read).
fn has_body(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines().any(|l| {
        l.strip_prefix("content-length:")
            .is_some_and(|v| v.trim() != "0")
            || l.starts_with("transfer-encoding:")
    })
}

/// Answers the requests of one connection until the client closes it.
///
/// # Errors
/// The read or write error that ended the connection.
pub async fn handle(conn: TcpStream) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(RESPONSE.len() * 4);
    loop {
        let (n, b) = conn.recv(buf).await;
        buf = b;
        if n? == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf);
        // Answer every complete request received so far (pipelining) with one write.
        out.clear();
        while let Some(end) = head_end(&pending) {
            if has_body(&pending[..end]) {
                conn.send_all(BAD_REQUEST.to_vec()).await.0?;
                return Ok(());
            }
            out.extend_from_slice(RESPONSE);
            pending.drain(..end);
        }
        if pending.len() > MAX_HEAD {
            conn.send_all(BAD_REQUEST.to_vec()).await.0?;
            return Ok(());
        }
        if !out.is_empty() {
            let (r, o) = conn.send_all(std::mem::take(&mut out)).await;
            out = o;
            r?;
        }
    }
}
