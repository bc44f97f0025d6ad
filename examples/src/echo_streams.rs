//! The echo server on `loop-net` streams: a task per connection reading and writing a
//! `TcpStream` with owned buffers (compare [`super::echo`], written with `sock_*` calls).

use std::io;

use loop_api::EventLoop;
use loop_net::{TcpListener, TcpStream};

/// Echoes one connection until the peer closes it; gives the byte count.
///
/// # Errors
/// The read or write error that ended the connection.
pub async fn echo(conn: TcpStream) -> io::Result<u64> {
    let mut total = 0;
    let mut buf = Vec::with_capacity(super::echo::BUFFER_SIZE);
    loop {
        let (n, b) = conn.recv(buf).await;
        let n = n?;
        if n == 0 {
            return Ok(total);
        }
        let (sent, b) = conn.send_all(b).await;
        sent?;
        total += n as u64;
        buf = b;
    }
}

/// Accepts connections forever, one echo task each.
///
/// # Errors
/// An accept error that is not about one connection or a temporary shortage.
pub async fn serve(lp: EventLoop, listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                lp.create_task(async move {
                    if let Err(e) = echo(conn).await {
                        eprintln!("echo_streams: connection ended: {e}");
                    }
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
