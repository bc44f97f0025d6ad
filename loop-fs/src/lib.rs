//! Async file I/O on the running loop: [`File`], [`OpenOptions`], [`Metadata`], and
//! [`read`], [`write`](write()), [`remove_file`], [`rename`], [`create_dir_all`], [`metadata`].
//!
//! ```
//! let lp = loop_mio::new_event_loop().unwrap();
//! let dir = std::env::temp_dir().join(format!("loop-fs-doc-{}", std::process::id()));
//! let text = lp
//!     .run_until_complete(async move {
//!         loop_fs::create_dir_all(&dir).await?;
//!         let path = dir.join("hello.txt");
//!         loop_fs::write(&path, b"hello, file".to_vec()).await?;
//!         let file = loop_fs::File::open(&path).await?;
//!         let (n, buf) = file.read_at(Vec::with_capacity(5), 7).await;
//!         assert_eq!((n?, &buf[..]), (4, &b"file"[..]));
//!         file.close().await?;
//!         let text = loop_fs::read(&path).await?;
//!         loop_fs::remove_file(&path).await?;
//!         std::fs::remove_dir(&dir)?;
//!         Ok::<_, std::io::Error>(text)
//!     })
//!     .unwrap()
//!     .unwrap();
//! assert_eq!(text, b"hello, file");
//! ```
//!
//! # How it runs
//!
//! Every function runs on the loop running on the calling thread (as `loop_api::sleep` does)
//! and fails with a clear error outside one. Where the loop performs file operations natively
//! ([`EventLoop::runs_file_ops`](loop_api::EventLoop::runs_file_ops): io_uring, when the kernel
//! has every opcode needed), each call is one io_uring request (`OPENAT`, `READ`, `WRITE`,
//! `FSYNC`, `STATX`, `UNLINKAT`, `RENAMEAT`, `MKDIRAT`, `CLOSE`) whose buffers, paths and
//! statx buffer the loop owns until the kernel is done with them, even if the future is
//! dropped. Elsewhere (mio, polling, the virtual-time loop) the blocking system call runs on
//! the loop's executor (`run_in_executor`), as `tokio::fs` and Python's aiofiles do: a regular
//! file is always "ready", so readiness has nothing to wait for.
//!
//! Either way the answers are the same: std's errors (`NotFound`, `EISDIR` reading a
//! directory, `EBADF` writing a file opened read-only), buffers handed back with every result
//! ([`BufResult`]), a dropped `open` leaks no descriptor, and a dropped read or write never
//! touches freed memory (the operation may still happen; a write reported done is done).
//!
//! Platforms: Unix (native operations on Linux with io_uring).
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod blocking;
mod file;
mod metadata;
#[cfg(target_os = "linux")]
mod native;
mod open_options;

use std::io;
use std::path::Path;

use loop_api::EventLoop;

pub use file::File;
/// The outcome of an operation on an owned buffer: the result and the buffer, given back in
/// every case (loop-api's, as `sock_recv` gives it).
pub use loop_api::BufResult;
pub use metadata::Metadata;
pub use open_options::OpenOptions;

/// The running loop, or an error saying how to get one.
fn running_loop() -> io::Result<EventLoop> {
    loop_api::get_running_loop().map_err(|_| {
        io::Error::other(
            "loop_fs: no event loop is running on this thread; await file operations inside a \
             task or run_until_complete",
        )
    })
}

/// True if `lp` runs file operations natively (then the `native` module is used).
#[cfg(target_os = "linux")]
fn native(lp: &EventLoop) -> bool {
    lp.runs_file_ops()
}

/// Reads the whole file at `path` (std's `fs::read`).
///
/// # Errors
/// Opening or reading it: `NotFound`, `PermissionDenied`, `EISDIR` for a directory, ...
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let lp = running_loop()?;
    let path = path.as_ref().to_owned();
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::read(&lp, &path).await;
    }
    blocking::read(&lp, path).await
}

/// Writes `data` to the file at `path`, creating it or replacing its contents (std's
/// `fs::write`).
///
/// # Errors
/// Creating or writing it (`NotFound` for a missing directory, `PermissionDenied`, ...).
pub async fn write(path: impl AsRef<Path>, data: Vec<u8>) -> io::Result<()> {
    let lp = running_loop()?;
    let path = path.as_ref().to_owned();
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::write(&lp, &path, data).await;
    }
    blocking::write(&lp, path, data).await
}

/// Removes the file at `path` (std's `fs::remove_file`).
///
/// # Errors
/// `NotFound`; `EISDIR` (or `EPERM`) for a directory; `PermissionDenied`.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let lp = running_loop()?;
    let path = path.as_ref().to_owned();
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::remove_file(&lp, &path).await;
    }
    blocking::run(&lp, move || std::fs::remove_file(path)).await
}

/// Renames `from` to `to`, replacing `to` if it exists (std's `fs::rename`).
///
/// # Errors
/// `NotFound` when `from` does not exist; rename(2)'s errors.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let lp = running_loop()?;
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::rename(&lp, &from, &to).await;
    }
    blocking::run(&lp, move || std::fs::rename(from, to)).await
}

/// Creates the directory `path` and every missing parent (std's `fs::create_dir_all`); a
/// directory that already exists is fine.
///
/// # Errors
/// A parent that is a file, `PermissionDenied`, ...
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let lp = running_loop()?;
    let path = path.as_ref().to_owned();
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::create_dir_all(&lp, &path).await;
    }
    blocking::run(&lp, move || std::fs::create_dir_all(path)).await
}

/// The metadata of `path`, following symbolic links (std's `fs::metadata`).
///
/// # Errors
/// `NotFound`, `PermissionDenied`, ...
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let lp = running_loop()?;
    let path = path.as_ref().to_owned();
    #[cfg(target_os = "linux")]
    if native(&lp) {
        return native::metadata(&lp, &path).await;
    }
    blocking::run(&lp, move || std::fs::metadata(path).map(Metadata::from_std)).await
}

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
