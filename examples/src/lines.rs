//! The line-protocol server of `cargo run --example line_server`: a socket read line by line
//! with `futures_util::AsyncBufReadExt::read_line` (asyncio's `StreamReader.readline`), straight
//! on loop-net's `TcpStream` (its own read buffer is the `AsyncBufRead`), so nobody writes a
//! line splitter again.
//!
//! Commands, one per line: `ECHO text` answers `text`, `UPPER text` answers it upper-cased,
//! `SUM 1 2 3` answers the sum, `QUIT` closes; anything else answers `ERR ...`. A line longer
//! than [`MAX_LINE`] bytes (asyncio's `limit`) answers `ERR line too long` and closes.

use std::io;
use std::net::SocketAddr;

use futures_util::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use loop_api::EventLoop;
use loop_net::{TcpListener, TcpStream};

/// The longest line accepted (asyncio's default `limit`, 64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// The answer to one command line (without its `\n`); `None` for `QUIT`.
pub fn answer(line: &str) -> Option<String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    Some(match cmd {
        "ECHO" => rest.to_string(),
        "UPPER" => rest.to_uppercase(),
        "SUM" => match rest
            .split_whitespace()
            .map(str::parse::<i64>)
            .sum::<Result<i64, _>>()
        {
            Ok(n) => n.to_string(),
            Err(e) => format!("ERR SUM takes integers: {e}"),
        },
        "QUIT" => return None,
        _ => format!("ERR unknown command {cmd:?}: use ECHO, UPPER, SUM or QUIT"),
    })
}

/// Serves one client until it quits or closes.
///
/// # Errors
/// The connection's I/O error.
pub async fn serve_client(mut stream: TcpStream) -> io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        // At most MAX_LINE + 1 bytes: a longer line is refused, not buffered without end.
        let n = (&mut stream)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if n > MAX_LINE {
            stream.write_all(b"ERR line too long\n").await?;
            return stream.close().await;
        }
        let Some(mut reply) = answer(line.trim_end_matches(['\n', '\r'])) else {
            stream.write_all(b"BYE\n").await?;
            return stream.close().await;
        };
        reply.push('\n');
        stream.write_all(reply.as_bytes()).await?;
        stream.flush().await?;
    }
}

/// Binds the server's listener on `lp`.
///
/// # Errors
/// The bind failing.
pub fn bind(lp: &EventLoop, addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind_on(lp, addr, loop_net::BindOptions::default())
}

/// Accepts clients on `listener` forever, one task each.
///
/// # Errors
/// An accept failing for a reason other than one connection's.
pub async fn serve(lp: EventLoop, listener: TcpListener) -> io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if loop_net::is_retryable_accept_error(&e) => continue,
            Err(e) => return Err(e),
        };
        lp.create_task(async move {
            if let Err(e) = serve_client(stream).await {
                eprintln!("line_server: a client ended with: {e}");
            }
        })
        .map_err(io::Error::other)?;
    }
}
