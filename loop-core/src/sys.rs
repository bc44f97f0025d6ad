//! The system calls the core makes itself, behind one `syscall!` macro.
//!
//! `syscall!` turns a `-1` return into the `errno` as `io::Error`. EINTR is retried in one place,
//! [`retry_eintr`], used by every operation the readiness driver performs.

use std::io;
use std::mem;
use std::os::fd::RawFd;

/// Calls a libc function and turns `-1` into `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)? ) ) => {{
        // SAFETY: every use passes arguments that are valid for the call (documented there).
        let res = unsafe { libc::$fn($($arg, )*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Runs `f` again while it fails with EINTR.
pub(crate) fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fails with EBADF if `fd` is not an open file descriptor.
pub(crate) fn check_fd(fd: RawFd) -> io::Result<()> {
    syscall!(fcntl(fd, libc::F_GETFD)).map(drop)
}

/// Fails as epoll does for an fd that readiness means nothing for: EBADF if `fd` is not open,
/// EPERM for a regular file or a directory (always "ready"; asyncio's selectors refuse them
/// too). Checked by the core, so every backend gives the same answer (io_uring's poll and
/// poll(2) would accept them and report them ready forever).
pub(crate) fn check_watchable(fd: RawFd) -> io::Result<()> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY (inside syscall!): `st` is a valid, writable stat buffer.
    syscall!(fstat(fd, &mut st))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Err(io::Error::from_raw_os_error(libc::EPERM)),
        _ => Ok(()),
    }
}

/// Sets `O_NONBLOCK` on `fd` (one syscall: FIONBIO).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let mut on: libc::c_int = 1;
    // SAFETY (inside syscall!): `on` is a valid c_int for FIONBIO to read.
    syscall!(ioctl(fd, libc::FIONBIO, &mut on as *mut libc::c_int)).map(drop)
}

/// The identity of the open file behind `fd` (device and inode), to tell a reused fd number
/// from the socket it used to be.
pub(crate) fn file_identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY (inside syscall!): `st` is a valid, writable stat buffer.
    syscall!(fstat(fd, &mut st)).ok()?;
    #[allow(clippy::unnecessary_cast)]
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// True if `fd` is a stream socket (`SO_TYPE` is `SOCK_STREAM`: TCP, a Unix stream).
pub(crate) fn is_stream_socket(fd: RawFd) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY (inside syscall!): `ty` and `len` are valid out-parameters of the right size.
    let res = syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        &mut ty as *mut libc::c_int as *mut libc::c_void,
        &mut len
    ));
    res.is_ok() && ty == libc::SOCK_STREAM
}

/// The pending error of a socket (`SO_ERROR`), used to finish a non-blocking connect.
pub(crate) fn take_socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY (inside syscall!): `err` and `len` are valid out-parameters of the right size.
    syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        &mut err as *mut libc::c_int as *mut libc::c_void,
        &mut len
    ))?;
    if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(err))
    }
}

/// One non-blocking sendfile(2) from `file` at `*offset` (advanced) to `sock` (EINTR retried).
/// `Unsupported` where the OS has no such call, or for a file it cannot send from.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn sendfile(
    sock: RawFd,
    file: RawFd,
    offset: &mut u64,
    len: usize,
) -> io::Result<usize> {
    retry_eintr(|| {
        let mut off = *offset as libc::off_t;
        // SAFETY (inside syscall!): `off` is a valid in/out offset; the fds are the caller's.
        let n = syscall!(sendfile(sock, file, &mut off, len));
        match n {
            Ok(n) => {
                *offset = off as u64;
                Ok(n as usize)
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("sendfile(2) cannot send from this file: {e}"),
                ))
            }
            Err(e) => Err(e),
        }
    })
}

/// sendfile(2) is only used on Linux here; elsewhere callers fall back to read + send.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn sendfile(
    _sock: RawFd,
    _file: RawFd,
    _offset: &mut u64,
    _len: usize,
) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "sendfile(2) is not used on this platform",
    ))
}
