//! What the peer programs share: their command line, the file benchmark's parameters and the
//! line each run prints.
//!
//! Every peer program (`peer-monoio`, `peer-compio`, `peer-glommio`, `peer-tokio-uring`,
//! `peer-smol`) takes the same commands:
//!
//! - `echo ADDR`: the echo server of `loop-bench serve echo` (accept; per connection read up to
//!   64 KiB into one buffer and write it all back; `TCP_NODELAY`; a listener with a backlog of
//!   4096 from `loop_bench::servers::listener`), one thread, printing `listening on ADDR` once
//!   ready;
//! - `file WORKLOAD PATH [RUNS]`: the file benchmark (see [`Workload`]), printing one line per run:
//!   `SUBJECT OPS/S MIB/S`.

pub mod render;
pub mod runner;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The buffer each echo connection reads into: the size ours and tokio use.
pub const BUFFER_SIZE: usize = loop_bench::servers::BUFFER_SIZE;
/// The random-read block.
pub const RAND_BLOCK: usize = 4096;
/// Random reads in flight at once (one task each).
pub const IN_FLIGHT: usize = 64;
/// Random reads per run (1 GiB of 4 KiB reads).
pub const RAND_OPS: usize = 256 * 1024;
/// The sequential block.
pub const SEQ_BLOCK: usize = 1024 * 1024;
/// Sequential passes over the file per read run.
pub const SEQ_READ_PASSES: usize = 4;
/// Bytes written per sequential write run (the read file's size).
pub const SEQ_WRITE_BYTES: u64 = 256 * 1024 * 1024;

/// One file workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// [`RAND_OPS`] reads of [`RAND_BLOCK`] bytes at random block-aligned offsets of the file
    /// (in the page cache), [`IN_FLIGHT`] at a time: one task each, every task its own buffer.
    Rand4k,
    /// [`SEQ_READ_PASSES`] passes over the file in [`SEQ_BLOCK`] reads, one at a time.
    SeqRead,
    /// [`SEQ_WRITE_BYTES`] written in [`SEQ_BLOCK`] writes, one at a time, to the path (created
    /// or truncated first; no sync: the page cache).
    SeqWrite,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 3] = [Workload::Rand4k, Workload::SeqRead, Workload::SeqWrite];

    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Rand4k => "rand4k",
            Workload::SeqRead => "seqread",
            Workload::SeqWrite => "seqwrite",
        }
    }

    /// The workload called `name`.
    ///
    /// # Errors
    /// An unknown name.
    pub fn parse(name: &str) -> io::Result<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("no workload {name:?}: use rand4k, seqread or seqwrite"),
                )
            })
    }
}

/// What one file run did.
#[derive(Clone, Copy, Debug)]
pub struct FileRun {
    /// Reads or writes completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time of the I/O (the file open and the runtime's start excluded).
    pub elapsed: Duration,
}

impl FileRun {
    /// The line a run prints: `SUBJECT OPS/S MIB/S`.
    pub fn line(&self, subject: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        format!(
            "{subject} {:.0} {:.1}",
            self.ops as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0)
        )
    }
}

/// The offsets random-read task `task` reads: [`RAND_OPS`] / [`IN_FLIGHT`] block-aligned
/// offsets below `file_len`, from a xorshift generator seeded by the task's index (the same
/// offsets for every subject).
pub fn rand_offsets(task: usize, file_len: u64) -> impl Iterator<Item = u64> {
    let blocks = (file_len / RAND_BLOCK as u64).max(1);
    let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ (task as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..RAND_OPS / IN_FLIGHT).map(move |_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % blocks) * RAND_BLOCK as u64
    })
}

/// The offsets of one sequential pass over `len` bytes.
pub fn seq_offsets(len: u64) -> impl Iterator<Item = u64> {
    (0..len.div_ceil(SEQ_BLOCK as u64)).map(|i| i * SEQ_BLOCK as u64)
}

/// The length of the file at `path`, refusing one shorter than a random-read block.
///
/// # Errors
/// The file missing or too short.
pub fn file_len(path: &Path) -> io::Result<u64> {
    let len = std::fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
        .len();
    if len < RAND_BLOCK as u64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} has {len} bytes; the file benchmark needs at least {RAND_BLOCK} (give it the 256 MiB file)",
                path.display()
            ),
        ));
    }
    Ok(len)
}

/// One peer's two programs.
pub trait Peer {
    /// Its name in the report and on each result line.
    const NAME: &'static str;

    /// Serves echo on `listener` (bound to `local`) until killed; prints `listening on ADDR`
    /// once ready.
    ///
    /// # Errors
    /// The runtime or the listener failing.
    fn echo(listener: std::net::TcpListener, local: SocketAddr) -> io::Result<()>;

    /// Runs `workload` once on `path` (of `len` bytes for the reads).
    ///
    /// # Errors
    /// The runtime or an I/O failing.
    fn file(workload: Workload, path: &Path, len: u64) -> io::Result<FileRun>;
}

const USAGE: &str = "usage: PROGRAM echo ADDR | PROGRAM file rand4k|seqread|seqwrite PATH [RUNS]";

/// A peer program's `main`: parses the command line and runs the command.
pub fn main<P: Peer>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = match args.as_slice() {
        ["echo", addr] => echo::<P>(addr),
        ["file", w, path] => file::<P>(w, path, "1"),
        ["file", w, path, runs] => file::<P>(w, path, runs),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-{}: {e}", P::NAME);
            ExitCode::FAILURE
        }
    }
}

fn echo<P: Peer>(addr: &str) -> io::Result<()> {
    let addr: SocketAddr = addr.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad address {addr:?}: {e}"),
        )
    })?;
    let l = loop_bench::servers::listener(addr)?;
    let local = l.local_addr()?;
    P::echo(l, local)
}

fn file<P: Peer>(workload: &str, path: &str, runs: &str) -> io::Result<()> {
    let workload = Workload::parse(workload)?;
    let runs: usize = runs.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad run count {runs:?}: {e}"),
        )
    })?;
    let path = PathBuf::from(path);
    let len = match workload {
        Workload::SeqWrite => SEQ_WRITE_BYTES,
        _ => file_len(&path)?,
    };
    for _ in 0..runs {
        let run = P::file(workload, &path, len)?;
        println!("{}", run.line(P::NAME));
    }
    Ok(())
}

/// The message a peer's echo server prints once it listens.
pub fn listening(name: &str, local: SocketAddr) {
    println!("listening on {local} (peer: {name})");
}

/// True for an accept error that only means "try again" or "too many files for now".
pub fn accept_again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_and_inside() {
        let len = 256 * 1024 * 1024;
        let v: Vec<u64> = rand_offsets(3, len).collect();
        assert_eq!(v.len(), RAND_OPS / IN_FLIGHT);
        assert!(
            v.iter()
                .all(|o| o % RAND_BLOCK as u64 == 0 && o + RAND_BLOCK as u64 <= len)
        );
        assert_ne!(v, rand_offsets(4, len).collect::<Vec<_>>());
        assert_eq!(seq_offsets(3 * SEQ_BLOCK as u64 + 1).count(), 4);
    }

    #[test]
    fn lines_and_names() {
        let r = FileRun {
            ops: 1000,
            bytes: 1024 * 1024,
            elapsed: Duration::from_millis(500),
        };
        assert_eq!(r.line("monoio"), "monoio 2000 2.0");
        assert_eq!(Workload::parse("seqread").unwrap(), Workload::SeqRead);
        assert!(Workload::parse("nope").is_err());
    }
}
