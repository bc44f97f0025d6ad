//! File I/O as the loop's own operations ([`Op::Open`], [`Op::Read`], ...): one io_uring
//! request each on a loop that [runs file ops](loop_api::EventLoop::runs_file_ops). The op
//! owns its buffer, its paths (`CString`s) and its statx buffer; a dropped future leaves them
//! to the loop, which frees them when the kernel completes the request (and closes the file a
//! dropped open opened).

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use loop_api::{BufResult, EventLoop, Op, StatxBuf};

use crate::metadata::Metadata;

/// `path` as the C string the kernel takes; a NUL byte inside is std's `InvalidInput`.
fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name contained an unexpected NUL byte",
        )
    })
}

/// Runs `op` and gives its result (the op itself is not needed back).
async fn run(lp: &EventLoop, op: Op) -> io::Result<usize> {
    lp.run_op(op).await.0
}

/// The op the loop should have handed back, or an error saying it lost it (a closed loop).
fn lost() -> io::Error {
    loop_api::closed_loop_io_error()
}

/// OPENAT: the opened file.
pub(crate) async fn open(
    lp: &EventLoop,
    path: &Path,
    flags: i32,
    mode: u32,
) -> io::Result<fs::File> {
    let op = Op::Open {
        path: c_path(path)?,
        flags,
        mode,
        file: None,
    };
    match lp.run_op(op).await {
        (Ok(_), Some(Op::Open { file: Some(fd), .. })) => Ok(fs::File::from(fd)),
        (Ok(_), _) => Err(lost()),
        (Err(e), _) => Err(e),
    }
}

/// READ into `buf`'s spare capacity at `offset` (its length grows by the count).
pub(crate) async fn read_at(
    lp: &EventLoop,
    fd: RawFd,
    buf: Vec<u8>,
    offset: u64,
) -> BufResult<usize> {
    let (res, op) = lp.run_op(Op::Read { fd, buf, offset }).await;
    (res, op.map(Op::into_buf).unwrap_or_default())
}

/// WRITE of `buf` at `offset` (once: the count may be partial).
pub(crate) async fn write_at(
    lp: &EventLoop,
    fd: RawFd,
    buf: Vec<u8>,
    offset: u64,
) -> BufResult<usize> {
    let op = Op::Write {
        fd,
        buf,
        pos: 0,
        offset,
    };
    let (res, op) = lp.run_op(op).await;
    (res, op.map(Op::into_buf).unwrap_or_default())
}

/// WRITEs until every byte of `buf` is written at `offset` onwards.
pub(crate) async fn write_all_at(
    lp: &EventLoop,
    fd: RawFd,
    mut buf: Vec<u8>,
    offset: u64,
) -> BufResult<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let at = offset + pos as u64;
        let op = Op::Write {
            fd,
            buf,
            pos,
            offset: at,
        };
        let (res, op) = lp.run_op(op).await;
        buf = op.map(Op::into_buf).unwrap_or_default();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => pos += n,
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// FSYNC (with `data_only`, fdatasync's semantics).
pub(crate) async fn sync(lp: &EventLoop, fd: RawFd, data_only: bool) -> io::Result<()> {
    run(lp, Op::Sync { fd, data_only }).await.map(drop)
}

/// STATX of `path` relative to `fd` with `flags`.
async fn statx(lp: &EventLoop, fd: RawFd, path: CString, flags: i32) -> io::Result<Metadata> {
    let op = Op::Statx {
        fd,
        path,
        flags,
        statx: StatxBuf::new_boxed(),
    };
    match lp.run_op(op).await {
        (Ok(_), Some(Op::Statx { statx, .. })) => Ok(Metadata::from_statx(&statx)),
        (Ok(_), _) => Err(lost()),
        (Err(e), _) => Err(e),
    }
}

/// The metadata of open file `fd`.
pub(crate) async fn file_metadata(lp: &EventLoop, fd: RawFd) -> io::Result<Metadata> {
    statx(lp, fd, CString::default(), libc::AT_EMPTY_PATH).await
}

/// The metadata of `path`, following symbolic links.
pub(crate) async fn metadata(lp: &EventLoop, path: &Path) -> io::Result<Metadata> {
    statx(lp, libc::AT_FDCWD, c_path(path)?, 0).await
}

/// CLOSE, reporting close's error.
pub(crate) async fn close(lp: &EventLoop, fd: OwnedFd) -> io::Result<()> {
    run(lp, Op::Close { file: Some(fd) }).await.map(drop)
}

/// UNLINKAT.
pub(crate) async fn remove_file(lp: &EventLoop, path: &Path) -> io::Result<()> {
    run(
        lp,
        Op::Unlink {
            path: c_path(path)?,
        },
    )
    .await
    .map(drop)
}

/// RENAMEAT.
pub(crate) async fn rename(lp: &EventLoop, from: &Path, to: &Path) -> io::Result<()> {
    let op = Op::Rename {
        from: c_path(from)?,
        to: c_path(to)?,
    };
    run(lp, op).await.map(drop)
}

/// MKDIRAT, as std's `create_dir` (mode 0o777 before the umask).
async fn mkdir(lp: &EventLoop, path: &Path) -> io::Result<()> {
    let op = Op::Mkdir {
        path: c_path(path)?,
        mode: 0o777,
    };
    run(lp, op).await.map(drop)
}

/// True if `path` is a directory (following symbolic links).
async fn is_dir(lp: &EventLoop, path: &Path) -> bool {
    metadata(lp, path).await.is_ok_and(|m| m.is_dir())
}

/// std's `create_dir_all`, iteratively: create `path`; when its parent is missing, walk up
/// to the first ancestor that exists, then create the missing ones top down. A directory
/// that exists (or that a racing creator made) is fine.
pub(crate) async fn create_dir_all(lp: &EventLoop, path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut current = path;
    while current != Path::new("") {
        match mkdir(lp, current).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match current.parent() {
                Some(parent) => {
                    missing.push(current);
                    current = parent;
                }
                None => return Err(e),
            },
            Err(_) if is_dir(lp, current).await => break,
            Err(e) => return Err(e),
        }
    }
    for dir in missing.into_iter().rev() {
        match mkdir(lp, dir).await {
            Ok(()) => {}
            Err(_) if is_dir(lp, dir).await => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the whole file at `path`: OPENAT, STATX for a size hint, READs until end of file.
pub(crate) async fn read(lp: &EventLoop, path: &Path) -> io::Result<Vec<u8>> {
    let file = open(lp, path, libc::O_RDONLY, 0).await?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let hint = file_metadata(lp, fd).await.map_or(0, |m| m.len());
    // One byte more than the size, so the read that finds the end needs no reallocation.
    let mut buf = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(8 * 1024));
        }
        let offset = buf.len() as u64;
        let (res, back) = read_at(lp, fd, buf, offset).await;
        buf = back;
        match res {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    // As std's `fs::read`, a failing close after a successful read is not an error.
    let _ = close(lp, file.into()).await;
    Ok(buf)
}

/// Creates (or truncates) `path`, writes all of `data` and closes it.
pub(crate) async fn write(lp: &EventLoop, path: &Path, data: Vec<u8>) -> io::Result<()> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    let file = open(lp, path, flags, 0o666).await?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    let (res, _) = write_all_at(lp, fd, data, 0).await;
    res?;
    close(lp, file.into()).await
}
