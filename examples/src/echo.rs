//! A TCP echo server: every byte a client sends comes back to it.
//!
//! [`serve`] accepts connections and starts one task per connection ([`echo_connection`]),
//! as an asyncio server would with `loop.sock_accept` and `loop.create_task`. The buffers are
//! owned and handed to the loop (`sock_recv(buf)` gives it back), so the same code is safe on
//! completion backends such as io_uring.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use loop_api::EventLoop;

/// How much one `sock_recv` asks for.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// How long to wait before accepting again when the process is out of resources (file
/// descriptors, memory): asyncio pauses its accept loop the same way.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds a listening socket on `addr` (port 0 picks a free port).
///
/// # Errors
/// The error of `bind`/`listen` (address in use, permission denied, ...).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Accepts connections on `listener` forever, echoing each on its own task.
///
/// Errors of one connection end that connection only (and are printed to stderr unless the
/// peer just went away). Running out of file descriptors or memory pauses accepting for a
/// moment.
///
/// # Errors
/// An accept error that will not go away (the listener is broken), or `Closed` if the loop is
/// closed under the server.
pub async fn serve(lp: EventLoop, listener: TcpListener) -> io::Result<()> {
    // A registered socket: no re-arm per accept that waits, made non-blocking once.
    let listener = lp.register_socket(listener)?;
    loop {
        match lp.sock_accept(&listener).await {
            Ok((stream, peer)) => {
                // Dropping the Task does not cancel it: the connection runs to its end.
                lp.create_task(report_errors(peer, echo_connection(lp.clone(), stream)))?;
            }
            Err(e) if is_retryable_accept_error(&e) => {}
            Err(e) if is_resource_exhaustion(&e) => {
                eprintln!("echo: accept failed ({e}); pausing {ACCEPT_BACKOFF:?}");
                loop_api::sleep(ACCEPT_BACKOFF).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Echoes everything `stream` receives until the peer closes its side; returns the number of
/// bytes echoed.
///
/// # Errors
/// The receive or send error that ended the connection.
pub async fn echo_connection(lp: EventLoop, stream: TcpStream) -> io::Result<u64> {
    // A registered socket: the loop may keep it armed (no re-arming per receive).
    let stream = lp.register_socket(stream)?;
    let mut buf = Vec::with_capacity(BUFFER_SIZE);
    let mut echoed = 0u64;
    loop {
        buf.clear();
        let (received, b) = lp.sock_recv(&stream, buf).await;
        buf = b;
        if received? == 0 {
            return Ok(echoed);
        }
        let (sent, b) = lp.sock_sendall(&stream, buf).await;
        buf = b;
        sent?;
        echoed += buf.len() as u64;
    }
}

/// Runs one connection and prints its error, unless the peer merely disconnected.
async fn report_errors(peer: SocketAddr, conn: impl Future<Output = io::Result<u64>>) {
    if let Err(e) = conn.await
        && !is_disconnect(&e)
    {
        eprintln!("echo: connection from {peer}: {e}");
    }
}

/// The peer went away: nothing to report.
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

// How accept errors are told apart is loop-net's (its create_server uses the same rules).
pub use loop_net::{is_resource_exhaustion, is_retryable_accept_error};
