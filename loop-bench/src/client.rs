//! The load generators: the echo client (uvloop's methodology: each connection sends a message,
//! waits for all of it to come back, and repeats a fixed number of times) and a client that
//! opens many idle connections.
//!
//! The echo client is one thread with a tokio current-thread runtime, pinned to the CPU the
//! server is not pinned to. Connections are opened and warmed up (one round trip each) before
//! the measured part begins.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procfs;

/// One echo load.
#[derive(Clone, Copy, Debug)]
pub struct EchoLoad {
    /// The server.
    pub addr: SocketAddr,
    /// Concurrent connections.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// Round trips per connection (after the warm-up one).
    pub requests_per_conn: usize,
    /// The CPU to pin the client to, if any.
    pub cpu: Option<usize>,
}

/// What one echo load measured.
#[derive(Clone, Debug)]
pub struct LoadOutcome {
    /// Round trips measured.
    pub requests: u64,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Every round trip's latency in nanoseconds.
    pub latencies_ns: Vec<u64>,
}

/// Runs `load`; calls `at_start` once every connection is open and warmed up (right before the
/// clock starts) and gives what was measured. The caller samples the server after it returns.
///
/// # Errors
/// A connection failing, or an echo that differs from what was sent.
pub fn run_echo<H: FnOnce() + Send>(load: EchoLoad, at_start: H) -> io::Result<LoadOutcome> {
    std::thread::scope(|s| {
        s.spawn(move || {
            if let Some(cpu) = load.cpu {
                procfs::pin_current_thread(cpu);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(echo_load(load, at_start))
        })
        .join()
        .map_err(|_| io::Error::other("the echo client panicked"))?
    })
}

fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

async fn round_trip(s: &mut tokio::net::TcpStream, msg: &[u8], buf: &mut [u8]) -> io::Result<u64> {
    let t0 = Instant::now();
    s.write_all(msg).await?;
    s.read_exact(buf).await?;
    let ns = t0.elapsed().as_nanos() as u64;
    if buf != msg {
        return Err(io::Error::other("the echo differs from the message"));
    }
    Ok(ns)
}

async fn echo_load(load: EchoLoad, at_start: impl FnOnce()) -> io::Result<LoadOutcome> {
    let msg = std::sync::Arc::new(message(load.size));
    let mut streams = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        let s = tokio::net::TcpStream::connect(load.addr).await?;
        s.set_nodelay(true)?;
        streams.push(s);
    }
    let mut buf = vec![0u8; load.size];
    for s in &mut streams {
        round_trip(s, &msg, &mut buf).await?;
    }
    at_start();
    let t0 = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let msg = msg.clone();
            let n = load.requests_per_conn;
            tokio::spawn(async move {
                let mut buf = vec![0u8; msg.len()];
                let mut lat = Vec::with_capacity(n);
                for _ in 0..n {
                    lat.push(round_trip(&mut s, &msg, &mut buf).await?);
                }
                Ok::<_, io::Error>(lat)
            })
        })
        .collect();
    let mut latencies_ns = Vec::with_capacity(load.conns * load.requests_per_conn);
    for t in tasks {
        latencies_ns.extend(t.await.map_err(io::Error::other)??);
    }
    let elapsed = t0.elapsed();
    Ok(LoadOutcome {
        requests: latencies_ns.len() as u64,
        elapsed,
        latencies_ns,
    })
}

/// Opens `n` idle connections to `addr` (a server whose process is `server_pid`), never more
/// than 512 ahead of what the server has accepted, and waits until it has accepted them all
/// (its descriptor count grew by `n`) or `limit` passed. Gives the open connections.
///
/// # Errors
/// A connect failing.
pub fn open_idle(
    addr: SocketAddr,
    n: usize,
    server_pid: u32,
    limit: Duration,
) -> io::Result<Vec<TcpStream>> {
    let base = procfs::fd_count(server_pid)?;
    let deadline = Instant::now() + limit;
    let accepted = |want: usize| -> io::Result<()> {
        while procfs::fd_count(server_pid)? < base + want {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "the server accepted {} of {want} connections in time",
                    procfs::fd_count(server_pid)?.saturating_sub(base)
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    };
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        if i % 256 == 0 && i >= 512 {
            accepted(i - 512)?;
        }
        conns.push(TcpStream::connect(addr)?);
    }
    accepted(n)?;
    Ok(conns)
}

/// Waits until something accepts connections on `addr` (the server started), up to `limit`.
///
/// # Errors
/// Nothing listened in time.
pub fn wait_listening(addr: SocketAddr, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the server binds it next).
///
/// # Errors
/// No port could be bound.
pub fn free_addr() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_patterned() {
        let m = message(600);
        assert_eq!(m.len(), 600);
        assert_eq!(m[0], 0);
        assert_eq!(m[251], 0);
        assert_eq!(m[252], 1);
    }
}
