//! monoio (io_uring driver, one thread): the echo server and the file benchmark.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use loop_bench_peers::{
    BUFFER_SIZE, FileRun, IN_FLIGHT, Peer, RAND_BLOCK, SEQ_BLOCK, SEQ_READ_PASSES, Workload,
    rand_offsets, seq_offsets,
};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

struct Monoio;

fn runtime() -> io::Result<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
}

async fn connection(mut s: monoio::net::TcpStream) {
    let mut buf = Vec::with_capacity(BUFFER_SIZE);
    loop {
        buf.clear();
        let (res, b) = s.read(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (res, b) = s.write_all(b).await;
        if res.is_err() {
            return;
        }
        buf = b;
    }
}

async fn file_run(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun> {
    let (mut ops, mut bytes) = (0u64, 0u64);
    let t0;
    match workload {
        Workload::Rand4k => {
            let f = Rc::new(monoio::fs::File::open(path).await?);
            t0 = Instant::now();
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|task| {
                    let f = f.clone();
                    monoio::spawn(async move {
                        let mut buf = Vec::with_capacity(RAND_BLOCK);
                        let mut n = 0u64;
                        for off in rand_offsets(task, len) {
                            buf.clear();
                            let (res, b) = f.read_at(buf, off).await;
                            n += res? as u64;
                            buf = b;
                        }
                        Ok::<_, io::Error>(n)
                    })
                })
                .collect();
            for t in tasks {
                bytes += t.await?;
            }
            ops = (bytes / RAND_BLOCK as u64).max(1);
        }
        Workload::SeqRead => {
            let f = monoio::fs::File::open(path).await?;
            let mut buf = Vec::with_capacity(SEQ_BLOCK);
            t0 = Instant::now();
            for _ in 0..SEQ_READ_PASSES {
                for off in seq_offsets(len) {
                    buf.clear();
                    let (res, b) = f.read_at(buf, off).await;
                    bytes += res? as u64;
                    ops += 1;
                    buf = b;
                }
            }
        }
        Workload::SeqWrite => {
            let f = monoio::fs::File::create(path).await?;
            let mut buf = vec![0x5a_u8; SEQ_BLOCK];
            t0 = Instant::now();
            for off in seq_offsets(len) {
                let (res, b) = f.write_all_at(buf, off).await;
                res?;
                bytes += b.len() as u64;
                ops += 1;
                buf = b;
            }
        }
    }
    Ok(FileRun {
        ops,
        bytes,
        elapsed: t0.elapsed(),
    })
}

impl Peer for Monoio {
    const NAME: &'static str = "monoio";

    fn echo(l: std::net::TcpListener, local: SocketAddr) -> io::Result<()> {
        runtime()?.block_on(async move {
            let l = monoio::net::TcpListener::from_std(l)?;
            loop_bench_peers::listening(Self::NAME, local);
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        monoio::spawn(connection(s));
                    }
                    Err(e) if loop_bench_peers::accept_again(&e) => {
                        monoio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn file(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun> {
        runtime()?.block_on(file_run(workload, path, len))
    }
}

fn main() -> std::process::ExitCode {
    loop_bench_peers::main::<Monoio>()
}
