//! How a readiness driver performs an [`Op`]: each op as one non-blocking syscall. This is
//! the only place the core turns op data into syscalls; a completion driver that lacks an op
//! (io_uring has no sendfile) can use it too, after waiting for the op's readiness.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, RawFd};

use loop_api::Op;

use crate::sys::{retry_eintr, syscall, take_socket_error};

/// Tries `op` once as a non-blocking syscall (EINTR retried). `WouldBlock` means: wait for
/// [`Op::direction`] readiness and try again with `ready` true. `ready` says whether that
/// readiness was just reported (the poll ops complete only then; a connect in progress is
/// then finished, and its outcome is read from `SO_ERROR`).
#[inline]
pub fn perform(op: &mut Op, ready: bool) -> io::Result<usize> {
    // The two ops of every request first, each a small frame of its own.
    match op {
        Op::Recv { fd, buf } => receive(*fd, buf),
        Op::Send { fd, buf, pos } => send_from(*fd, buf, *pos),
        _ => retry_eintr(|| perform_once(op, ready)),
    }
}

/// An [`Op::Recv`]: recv(2) into `buf`'s spare capacity (EINTR retried).
#[inline]
pub(crate) fn receive(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    retry_eintr(|| recv(fd, buf))
}

/// An [`Op::Send`]: send(2) of `buf[pos..]` (EINTR retried).
#[inline]
pub(crate) fn send_from(fd: RawFd, buf: &[u8], pos: usize) -> io::Result<usize> {
    retry_eintr(|| send(fd, &buf[pos.min(buf.len())..]))
}

fn perform_once(op: &mut Op, ready: bool) -> io::Result<usize> {
    match op {
        Op::Accept { fd, addr, .. } => {
            addr.len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let storage = &mut addr.storage as *mut libc::sockaddr_storage as *mut libc::sockaddr;
            accept_nonblocking(*fd, storage, &mut addr.len)
        }
        Op::Connect { sock, addr } => connect(sock.as_raw_fd(), addr, ready),
        Op::Recv { fd, buf } => recv(*fd, buf),
        Op::Send { fd, buf, pos } => send(*fd, &buf[(*pos).min(buf.len())..]),
        Op::RecvFrom { fd, buf, msg } => {
            let hdr = msg.prepare_recv(buf);
            // SAFETY (inside syscall!): `hdr` points into `msg` and `buf`'s spare capacity.
            let n = syscall!(recvmsg(*fd, hdr, libc::MSG_DONTWAIT))? as usize;
            // SAFETY: the kernel initialised `n` bytes after the old length.
            unsafe { buf.set_len(buf.len() + n) };
            Ok(n)
        }
        Op::SendTo { fd, buf, msg } => {
            let hdr = msg.prepare_send(buf);
            no_sigpipe(|| {
                // SAFETY (inside syscall!): `hdr` points into `msg` and `buf`.
                syscall!(sendmsg(*fd, hdr, libc::MSG_DONTWAIT | MSG_NOSIGNAL)).map(|n| n as usize)
            })
        }
        Op::SendFile {
            sock,
            file,
            offset,
            len,
        } => {
            let mut at = *offset;
            crate::sys::sendfile(*sock, *file, &mut at, *len)
        }
        // The core never gives a readiness driver file operations (see
        // `Driver::runs_file_ops`); a direct caller gets the same answer.
        Op::Open { .. }
        | Op::Read { .. }
        | Op::Write { .. }
        | Op::Sync { .. }
        | Op::Statx { .. }
        | Op::Unlink { .. }
        | Op::Rename { .. }
        | Op::Mkdir { .. }
        | Op::Close { .. } => Err(crate::net::file_ops_unsupported("readiness")),
        Op::PollReadable { .. } | Op::PollWritable { .. } if ready => Ok(0),
        Op::PollReadable { .. } | Op::PollWritable { .. } => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// connect(2) of a non-blocking socket: `WouldBlock` while in progress; once the socket is
/// reported writable (`ready`), the outcome is its `SO_ERROR`.
fn connect(fd: RawFd, addr: &socket2::SockAddr, ready: bool) -> io::Result<usize> {
    if ready {
        take_socket_error(fd)?;
        return Ok(0);
    }
    // SAFETY (inside syscall!): `addr` is a valid socket address of `len()` bytes.
    match syscall!(connect(fd, addr.as_ptr().cast(), addr.len())) {
        Ok(_) => Ok(0),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Err(io::ErrorKind::WouldBlock.into())
        }
        Err(e) => Err(e),
    }
}

/// recv(2) into `buf`'s spare capacity; its length grows by the count.
#[inline(always)]
fn recv(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY (inside syscall!): `spare` is writable memory of `spare.len()` bytes.
    let n = syscall!(recv(
        fd,
        spare.as_mut_ptr() as *mut libc::c_void,
        spare.len(),
        libc::MSG_DONTWAIT
    ))? as usize;
    // SAFETY: the kernel initialised `n` bytes after the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// send(2) of `bytes`, never raising SIGPIPE.
#[inline(always)]
fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    no_sigpipe(|| {
        // SAFETY (inside syscall!): `bytes` is readable memory of `bytes.len()` bytes.
        syscall!(send(
            fd,
            bytes.as_ptr() as *const libc::c_void,
            bytes.len(),
            libc::MSG_DONTWAIT | MSG_NOSIGNAL
        ))
        .map(|n| n as usize)
    })
}

/// True when `res`, the result of [`perform`] of `op` on a stream socket, shows that the fd
/// has no more readiness in [`Op::direction`]: a receive that got some bytes but did not fill
/// the buffer drained the receive queue, a send that took only part of the bytes filled the
/// send buffer. New data (or room) then raises a new edge, so a readiness driver can wait for
/// it instead of trying again (tokio's rule). Not true of datagram sockets, where a receive
/// gets one datagram of many.
pub fn drained_by(op: &Op, res: &io::Result<usize>) -> bool {
    match (op, res) {
        (Op::Recv { buf, .. }, Ok(n)) => receive_drained(*n, buf.len(), buf.capacity()),
        (Op::Send { buf, pos, .. }, Ok(n)) => send_drained(*pos, *n, buf),
        _ => false,
    }
}

/// [`drained_by`] of a receive that got `n` bytes, its buffer now `len` of `capacity`: some,
/// without filling it.
#[inline(always)]
pub(crate) fn receive_drained(n: usize, len: usize, capacity: usize) -> bool {
    n > 0 && len < capacity
}

/// [`drained_by`] of a send of `buf` from `pos` that took `n` bytes: only part of the rest.
#[inline(always)]
pub(crate) fn send_drained(pos: usize, n: usize, buf: &[u8]) -> bool {
    pos + n < buf.len()
}

/// accept(2) of a non-blocking, close-on-exec connection: one `accept4` where the OS has it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn accept_nonblocking(
    fd: RawFd,
    storage: *mut libc::sockaddr,
    len: &mut libc::socklen_t,
) -> io::Result<usize> {
    // SAFETY (inside syscall!): `storage`/`len` point into the op's boxed AddrBuf.
    let new = syscall!(accept4(
        fd,
        storage,
        len,
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
    ))?;
    Ok(new as usize)
}

/// accept(2) of a non-blocking, close-on-exec connection: accept, then set both flags (macOS
/// and the other BSDs have no `accept4`).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn accept_nonblocking(
    fd: RawFd,
    storage: *mut libc::sockaddr,
    len: &mut libc::socklen_t,
) -> io::Result<usize> {
    use std::os::fd::FromRawFd;
    // SAFETY (inside syscall!): `storage`/`len` point into the op's boxed AddrBuf.
    let new = syscall!(accept(fd, storage, len))?;
    // SAFETY: accept just returned `new`; nothing else owns it (closed on error).
    let conn = unsafe { std::os::fd::OwnedFd::from_raw_fd(new) };
    syscall!(fcntl(new, libc::F_SETFD, libc::FD_CLOEXEC))?;
    crate::sys::set_nonblocking(new)?;
    Ok(std::os::fd::IntoRawFd::into_raw_fd(conn) as usize)
}

/// Keeps a send to a peer that is gone from raising SIGPIPE: `MSG_NOSIGNAL` does it here.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const MSG_NOSIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const MSG_NOSIGNAL: libc::c_int = 0;

/// Runs a send: [`MSG_NOSIGNAL`] already keeps SIGPIPE away here.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn no_sigpipe(send: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
    send()
}

/// Runs a send with SIGPIPE held off the thread (macOS and the other BSDs have no
/// `MSG_NOSIGNAL`).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn no_sigpipe(send: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
    crate::sys::without_sigpipe(send)
}
