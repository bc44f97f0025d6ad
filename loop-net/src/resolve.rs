//! Name resolution without blocking the loop (asyncio's `getaddrinfo`, run in the executor).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::socket::running_loop;
use crate::tcp::TcpStream;

/// Resolves `host:port` on the loop's default executor (the system resolver blocks).
///
/// # Errors
/// No running loop; the resolver's error (`host` unknown, ...).
pub async fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let lp = running_loop()?;
    let host = host.to_string();
    let job = lp.run_in_executor(move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect)
    });
    match job.await {
        Ok(res) => res,
        Err(e) => Err(io::Error::other(format!("getaddrinfo did not run: {e}"))),
    }
}

/// Resolves `host` and connects to its addresses in turn until one answers (asyncio's
/// `open_connection(host, port)`), each attempt limited to `per_attempt`.
///
/// # Errors
/// The resolver's error, or the last connection error.
pub async fn connect_host(host: &str, port: u16, per_attempt: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"));
    for addr in getaddrinfo(host, port).await? {
        match TcpStream::connect_timeout(addr, per_attempt).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
