//! smol (`async-io`'s reactor on the `polling` crate, epoll here; a `LocalExecutor` run by
//! `smol::block_on` on this thread): the echo server. smol has no file I/O of its own
//! (`smol::fs` is `blocking`'s thread pool), so it has no file benchmark.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use loop_bench_peers::{BUFFER_SIZE, FileRun, Peer, Workload};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor, Timer};

struct Smol;

async fn connection(mut s: Async<TcpStream>) {
    // Allocated at accept as ours and tokio allocate theirs (`Vec::with_capacity`), but
    // `AsyncRead` wants initialized memory: it is zero-filled once the first data is there,
    // so an idle connection holds what ours holds, an untouched 64 KiB allocation.
    let mut buf: Vec<u8> = Vec::with_capacity(BUFFER_SIZE);
    if s.readable().await.is_err() {
        return;
    }
    buf.resize(BUFFER_SIZE, 0);
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Peer for Smol {
    const NAME: &'static str = "smol";

    fn echo(l: TcpListener, local: SocketAddr) -> io::Result<()> {
        let ex: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
        smol::block_on(ex.run(async move {
            let l = Async::new(l)?;
            loop_bench_peers::listening(Self::NAME, local);
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let _ = s.get_ref().set_nodelay(true);
                        ex.spawn(connection(s)).detach();
                    }
                    Err(e) if loop_bench_peers::accept_again(&e) => {
                        Timer::after(std::time::Duration::from_millis(10)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }))
    }

    fn file(_: Workload, _: &Path, _: u64) -> io::Result<FileRun> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "smol has no file I/O of its own (smol::fs is a thread pool): no file benchmark",
        ))
    }
}

fn main() -> std::process::ExitCode {
    loop_bench_peers::main::<Smol>()
}
