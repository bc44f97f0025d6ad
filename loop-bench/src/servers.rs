//! The servers the harness starts (`loop-bench serve KIND SERVER ADDR`): our echo server on any
//! backend, and tokio's echo and HTTP hello servers written the same way.
//!
//! Our echo server is the echo example's connection code (`examples::echo::echo_connection`:
//! `sock_recv` into a 64 KiB owned buffer, `sock_sendall` it back), with `TCP_NODELAY` set on
//! each accepted connection as asyncio, uvloop and the node script do. Every listener has a
//! backlog of 4096, so 10,000 connections opened in a burst are not dropped. `echo-streams` is
//! the same server on `loop-net` streams (`crate::example::echo_streams`), for comparison.

use std::io;
use std::net::SocketAddr;

use loop_policy::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The buffer each connection reads into (the echo example's size).
pub const BUFFER_SIZE: usize = crate::example::echo::BUFFER_SIZE;

const BACKLOG: i32 = 4096;

/// A listening socket on `addr` with `SO_REUSEADDR` and a deep backlog.
///
/// # Errors
/// The bind failing.
pub fn listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

/// Serves `kind` (`echo`, `echo-streams` or `http`) with `server` (`mio`, `polling`, `uring`,
/// `tokio`, or for echo the floors `raw-mio` (see [`crate::raw_echo`]), `raw-uring` and
/// `raw-uring-multishot` (see [`crate::raw_uring`])) on `addr` until killed. Prints
/// `listening on ADDR` once ready.
///
/// # Errors
/// An unknown kind or server, the bind failing, the loop failing.
pub fn serve(kind: &str, server: &str, addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let l = listener(addr)?;
    let local = l.local_addr()?;
    match (kind, server) {
        ("echo", "tokio") => tokio_serve(l, local, tokio_echo),
        ("echo", "raw-mio") => Ok(crate::raw_echo::serve(l, local)?),
        // raw-uring, raw-uring-multishot and their `+fixed`/`+pollfirst`/`+bufs=N` variants.
        #[cfg(target_os = "linux")]
        ("echo", name) if name.starts_with("raw-uring") => {
            Ok(crate::raw_uring::serve(l, local, name)?)
        }
        ("http", "tokio") => tokio_serve(l, local, tokio_http),
        ("hyper", "tokio") => crate::hyper_bench::serve_tokio(l, local),
        ("hyper", backend) => {
            drop(l);
            crate::hyper_bench::serve_ours(backend, local)
        }
        ("echo-streams", backend) => {
            drop(l);
            let lp = backend.parse::<Backend>()?.new_event_loop()?;
            let opts = loop_net::BindOptions {
                backlog: BACKLOG,
                ..Default::default()
            };
            let l = loop_net::TcpListener::bind_on(&lp, local, opts)?;
            println!(
                "listening on {local} (backend: {}, loop-net streams)",
                lp.backend_name()
            );
            lp.run_until_complete(ours_streams(lp.clone(), l))??;
            Ok(())
        }
        ("echo", name) if name.contains('@') => {
            drop(l);
            serve_per_core(name, local)
        }
        ("echo", backend) => {
            let lp = backend.parse::<Backend>()?.new_event_loop()?;
            println!("listening on {local} (backend: {})", lp.backend_name());
            lp.run_until_complete(ours_echo(lp.clone(), l))??;
            Ok(())
        }
        _ => Err(format!("no {kind} server {server:?} (http: run examples/http_hello)").into()),
    }
}

/// `echo BACKEND@N`: our echo server on N loops (`loop_policy::run_per_core`, each thread
/// pinned to a CPU of those the process may use), each with its own `SO_REUSEPORT` listener
/// on `local`; nothing else is shared.
fn serve_per_core(name: &str, local: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let (backend, n) = name.split_once('@').unwrap_or((name, "1"));
    let backend: Backend = backend.parse()?;
    let threads: usize = n.parse().map_err(|e| format!("{name}: {e}"))?;
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(local),
            socket2::Type::STREAM,
            None,
        )?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.bind(&local.into())?;
        sock.listen(BACKLOG)?;
        listeners.push(std::sync::Mutex::new(Some(std::net::TcpListener::from(
            sock,
        ))));
    }
    let listeners = std::sync::Arc::new(listeners);
    println!("listening on {local} (backend: {backend}, {threads} loops)");
    let policy = std::sync::Arc::new(loop_policy::DefaultLoopPolicy::with_backend(backend));
    let ended = loop_policy::PerCore::new(threads)
        .pin(true)
        .policy(policy)
        .run(move |i| {
            let l = listeners[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            async move {
                let lp = loop_api::get_running_loop().map_err(io::Error::other)?;
                let l = l.ok_or_else(|| io::Error::other("no listener"))?;
                ours_echo(lp, l).await
            }
        })?;
    for e in ended {
        e?;
    }
    Ok(())
}

/// Our accept loop: one task per connection running the echo example's connection code.
async fn ours_echo(lp: loop_api::EventLoop, l: std::net::TcpListener) -> io::Result<()> {
    let l = lp.register_socket(l)?;
    loop {
        match lp.sock_accept(&l).await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                // Spawned as it is, as tokio's server spawns its connection future (the Task
                // handle is dropped: the connection runs to its end; its error is not kept).
                drop(lp.create_task(crate::example::echo::echo_connection(lp.clone(), stream))?);
            }
            Err(e) if crate::example::echo::is_retryable_accept_error(&e) => {}
            Err(e) if crate::example::echo::is_resource_exhaustion(&e) => {
                loop_api::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The same server on `loop-net` streams: the echo example's stream code
/// (`crate::example::echo_streams::echo`), with `TCP_NODELAY`.
async fn ours_streams(lp: loop_api::EventLoop, l: loop_net::TcpListener) -> io::Result<()> {
    loop {
        match l.accept().await {
            Ok((conn, _)) => {
                let _ = conn.set_nodelay(true);
                lp.create_task(async move {
                    let _ = crate::example::echo_streams::echo(conn).await;
                })?;
            }
            Err(e) if crate::example::echo::is_retryable_accept_error(&e) => {}
            Err(e) if crate::example::echo::is_resource_exhaustion(&e) => {
                loop_api::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn tokio_serve<F, Fut>(
    l: std::net::TcpListener,
    local: SocketAddr,
    conn: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: Fn(tokio::net::TcpStream) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local_set = tokio::task::LocalSet::new();
    local_set.block_on(&rt, async move {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        println!("listening on {local} (backend: tokio current_thread)");
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    tokio::task::spawn_local(conn(s));
                }
                Err(e) if crate::example::echo::is_resource_exhaustion(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(_) => {}
            }
        }
    })
}

/// tokio's echo connection: read into the same 64 KiB buffer, write it all back.
async fn tokio_echo(mut s: tokio::net::TcpStream) {
    let mut buf = Vec::with_capacity(BUFFER_SIZE);
    loop {
        buf.clear();
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if s.write_all(&buf).await.is_err() {
            return;
        }
    }
}

/// Where the head of the first complete request in `buf` ends.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// tokio's HTTP hello connection, the same logic as `examples::http::handle`: every complete
/// request received so far (pipelining) is answered in one write.
async fn tokio_http(mut s: tokio::net::TcpStream) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(crate::example::http::RESPONSE.len() * 4);
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        out.clear();
        while let Some(end) = head_end(&pending) {
            out.extend_from_slice(crate::example::http::RESPONSE);
            pending.drain(..end);
        }
        if pending.len() > 64 * 1024 {
            return;
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_request_heads() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
