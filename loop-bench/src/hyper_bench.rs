//! hyper 1.x servers for the `hyper` rows of BENCHMARKS.md: the same handler and the same
//! hyper configuration (HTTP/1.1, keep-alive, no timer) on each of our backends (through
//! `loop-hyper`) and on tokio's current-thread runtime (a local set, as our loop is one
//! thread), loaded by `wrk.sh` with `WRK_KIND=hyper`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use loop_policy::Backend;

/// The body every request gets.
pub const BODY: &[u8] = b"Hello, World!\n";

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Serves hyper on `backend` (a loop of ours) at `local` until killed.
///
/// # Errors
/// An unknown backend, the bind failing, the loop failing.
pub fn serve_ours(backend: &str, local: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let lp = backend.parse::<Backend>()?.new_event_loop()?;
    let opts = loop_net::BindOptions {
        backlog: 4096,
        ..Default::default()
    };
    let l = loop_net::TcpListener::bind_on(&lp, local, opts)?;
    println!(
        "listening on {local} (backend: {}, hyper)",
        lp.backend_name()
    );
    let lp2 = lp.clone();
    lp.run_until_complete(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(
                loop_hyper::HyperIo::new(s),
                hyper::service::service_fn(hello),
            );
            let _ = lp2.create_task(async move {
                let _ = conn.await;
            });
        }
    })?;
    Ok(())
}

/// Serves hyper on tokio's current-thread runtime at `l` until killed.
///
/// # Errors
/// The runtime failing to start.
pub fn serve_tokio(
    l: std::net::TcpListener,
    local: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local_set = tokio::task::LocalSet::new();
    local_set.block_on(&rt, async move {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        println!("listening on {local} (backend: tokio current_thread, hyper)");
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo(s), hyper::service::service_fn(hello));
            tokio::task::spawn_local(async move {
                let _ = conn.await;
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), io::Error>(())
    })?;
    Ok(())
}

/// tokio's I/O traits as hyper's (hyper-util's `TokioIo`, written here to add no dependency;
/// it reads into hyper's uninitialised buffer as that one does).
struct TokioIo<T>(T);

impl<T: tokio::io::AsyncRead + Unpin> hyper::rt::Read for TokioIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // As hyper-util's `TokioIo` does: tokio's `ReadBuf` takes uninitialised memory, so
        // nothing is zeroed.
        // SAFETY: `as_mut` hands out hyper's unfilled bytes, which `ReadBuf::uninit` never
        // de-initialises; only the `n` bytes the read filled are then marked filled.
        let n = unsafe {
            let mut rb = tokio::io::ReadBuf::uninit(buf.as_mut());
            ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut rb))?;
            rb.filled().len()
        };
        // SAFETY: the read filled (initialised) `n` bytes of the unfilled part.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> hyper::rt::Write for TokioIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
