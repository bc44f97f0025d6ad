//! glommio (its own io_uring rings, one executor on this thread, not pinned by glommio: the
//! harness pins the process): the echo server and the file benchmark (buffered files, the page
//! cache).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::io::BufferedFile;
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use loop_bench_peers::{
    BUFFER_SIZE, FileRun, IN_FLIGHT, Peer, RAND_BLOCK, SEQ_BLOCK, SEQ_READ_PASSES, Workload,
    rand_offsets, seq_offsets,
};

struct Glommio;

fn executor() -> io::Result<LocalExecutor> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .map_err(|e| io::Error::other(format!("glommio executor: {e}")))
}

fn gio<T>(r: glommio::Result<T, ()>) -> io::Result<T> {
    r.map_err(io::Error::from)
}

async fn connection(mut s: glommio::net::TcpStream) {
    // Allocated at accept as ours and tokio allocate theirs (`Vec::with_capacity`), but
    // `AsyncRead` wants initialized memory: it is zero-filled once the first data is there (a
    // one-byte `peek` waits for it, once per connection), so an idle connection holds what ours
    // holds, an untouched 64 KiB allocation.
    let mut buf: Vec<u8> = Vec::with_capacity(BUFFER_SIZE);
    if !matches!(s.peek(&mut [0u8; 1]).await, Ok(1)) {
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

async fn rand_reads(path: &Path, len: u64) -> io::Result<(u64, Instant)> {
    let f = Rc::new(gio(BufferedFile::open(path).await)?);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|task| {
            let f = f.clone();
            glommio::spawn_local(async move {
                let mut n = 0u64;
                for off in rand_offsets(task, len) {
                    n += gio(f.read_at(off, RAND_BLOCK).await)?.len() as u64;
                }
                Ok::<_, io::Error>(n)
            })
        })
        .collect();
    let mut bytes = 0;
    for t in tasks {
        bytes += t.await?;
    }
    Ok((bytes, t0))
}

async fn file_run(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun> {
    let (mut ops, mut bytes) = (0u64, 0u64);
    let t0;
    match workload {
        Workload::Rand4k => {
            let (b, t) = rand_reads(path, len).await?;
            (bytes, t0) = (b, t);
            ops = (bytes / RAND_BLOCK as u64).max(1);
        }
        Workload::SeqRead => {
            let f = gio(BufferedFile::open(path).await)?;
            t0 = Instant::now();
            for _ in 0..SEQ_READ_PASSES {
                for off in seq_offsets(len) {
                    bytes += gio(f.read_at(off, SEQ_BLOCK).await)?.len() as u64;
                    ops += 1;
                }
            }
        }
        Workload::SeqWrite => {
            let f = gio(BufferedFile::create(path).await)?;
            let buf = vec![0x5a_u8; SEQ_BLOCK];
            t0 = Instant::now();
            for off in seq_offsets(len) {
                // `write_at` takes the buffer and does not give it back: a copy per write.
                let n = gio(f.write_at(buf.clone(), off).await)?;
                if n != SEQ_BLOCK {
                    return Err(io::Error::other(format!("short write: {n} bytes")));
                }
                bytes += n as u64;
                ops += 1;
            }
        }
    }
    Ok(FileRun {
        ops,
        bytes,
        elapsed: t0.elapsed(),
    })
}

impl Peer for Glommio {
    const NAME: &'static str = "glommio";

    fn echo(l: std::net::TcpListener, local: SocketAddr) -> io::Result<()> {
        executor()?.run(async move {
            // SAFETY: the descriptor comes from `into_raw_fd` of a listening socket just bound,
            // so glommio's listener is its only owner.
            let l = unsafe { glommio::net::TcpListener::from_raw_fd(l.into_raw_fd()) };
            loop_bench_peers::listening(Self::NAME, local);
            loop {
                match l.accept().await.map_err(io::Error::from) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        glommio::spawn_local(connection(s)).detach();
                    }
                    Err(e) if loop_bench_peers::accept_again(&e) => {
                        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn file(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun> {
        executor()?.run(file_run(workload, path, len))
    }
}

fn main() -> std::process::ExitCode {
    loop_bench_peers::main::<Glommio>()
}
