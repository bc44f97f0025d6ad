//! Operations: plain data the core hands to a driver, and how a readiness driver performs them.
//!
//! An [`Op`] owns everything the kernel may touch while it runs (buffers, address storage, a
//! socket being connected), so a completion-based driver can hand pointers into it to the
//! kernel: the op lives in the core's [`Ops`](crate::Ops) table until its completion is
//! reported, even when the future that started it was dropped.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::sys::{retry_eintr, syscall, take_socket_error};

/// Storage for a socket address filled in by the kernel (accept, recvfrom).
pub struct AddrBuf {
    /// The address bytes.
    pub storage: libc::sockaddr_storage,
    /// Its length, in and out.
    pub len: libc::socklen_t,
}

impl AddrBuf {
    /// An empty buffer, boxed so its address is stable while the kernel writes to it.
    pub fn new_boxed() -> Box<AddrBuf> {
        Box::new(AddrBuf {
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        })
    }

    /// The address as a std `SocketAddr`, if it is IPv4 or IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        // SAFETY: `storage` holds `len` bytes of a socket address written by the kernel.
        let addr = unsafe { socket2::SockAddr::new(self.storage, self.len) };
        addr.as_socket()
    }
}

impl std::fmt::Debug for AddrBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddrBuf")
            .field("addr", &self.to_socket_addr())
            .finish()
    }
}

/// A `msghdr` with its address storage and one `iovec`, boxed with the op so a completion
/// driver can hand the kernel pointers to it (recvmsg/sendmsg).
pub struct MsgBuf {
    /// The peer address (filled by recvmsg, read by sendmsg).
    pub addr: libc::sockaddr_storage,
    /// The address length.
    pub addr_len: libc::socklen_t,
    /// The one buffer of the message.
    pub iov: libc::iovec,
    /// The message header, pointing at `addr` and `iov` once prepared.
    pub hdr: libc::msghdr,
}

impl MsgBuf {
    /// An empty message buffer (for receiving).
    pub fn new_boxed() -> Box<MsgBuf> {
        // SAFETY: all four fields are plain C structs for which all-zero is a valid value.
        Box::new(unsafe { mem::zeroed() })
    }

    /// A message buffer addressed to `addr` (for sending).
    pub fn to_addr(addr: &socket2::SockAddr) -> Box<MsgBuf> {
        let mut m = MsgBuf::new_boxed();
        let len = (addr.len() as usize).min(mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: copies `len` bytes of `addr`'s storage into ours; both are at least `len` long.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut m.addr as *mut libc::sockaddr_storage).cast::<u8>(),
                len,
            )
        };
        m.addr_len = len as libc::socklen_t;
        m
    }

    /// Points the header at the address storage and at `buf`'s spare capacity (receiving).
    pub fn prepare_recv(&mut self, buf: &mut Vec<u8>) -> *mut libc::msghdr {
        let spare = buf.spare_capacity_mut();
        self.iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        self.addr_len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        self.point_header()
    }

    /// Points the header at the address and at `bytes` (sending).
    pub fn prepare_send(&mut self, bytes: &[u8]) -> *mut libc::msghdr {
        self.iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        self.point_header()
    }

    fn point_header(&mut self) -> *mut libc::msghdr {
        self.hdr.msg_name = (&mut self.addr as *mut libc::sockaddr_storage).cast();
        self.hdr.msg_namelen = self.addr_len;
        self.hdr.msg_iov = &mut self.iov;
        self.hdr.msg_iovlen = 1;
        &mut self.hdr
    }

    /// The sender's address after a receive.
    pub fn peer(&self) -> socket2::SockAddr {
        // SAFETY: the kernel wrote `msg_namelen` bytes of a socket address into `addr`.
        unsafe { socket2::SockAddr::new(self.addr, self.hdr.msg_namelen) }
    }
}

impl std::fmt::Debug for MsgBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgBuf")
            .field("addr_len", &self.addr_len)
            .finish()
    }
}

/// Which readiness an operation waits for on a readiness backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Waits until the fd is readable.
    Read,
    /// Waits until the fd is writable.
    Write,
}

/// One I/O operation, as plain owned data. Results are `usize` (bytes, or a new fd for
/// `Accept`); op-specific outputs stay in the op (the buffer's length, the peer's address).
#[derive(Debug)]
pub enum Op {
    /// Accept a connection on listening socket `fd`; the result is the new fd
    /// (non-blocking, close-on-exec).
    Accept {
        /// The listening socket.
        fd: RawFd,
        /// Where the peer's address is written.
        addr: Box<AddrBuf>,
    },
    /// Connect the owned, non-blocking socket `sock` to `addr`; the result is 0.
    Connect {
        /// The socket being connected (owned by the op until it completes).
        sock: OwnedFd,
        /// The address to connect to.
        addr: Box<socket2::SockAddr>,
        /// Set once `connect(2)` returned EINPROGRESS (readiness drivers then check SO_ERROR).
        started: bool,
    },
    /// Receive into `buf`'s spare capacity; the result is the count (its length is set).
    Recv {
        /// The socket.
        fd: RawFd,
        /// The buffer; bytes land after its current length.
        buf: Vec<u8>,
    },
    /// Send `buf[pos..]`; the result is the count sent (may be partial).
    Send {
        /// The socket.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// Where in `buf` to start.
        pos: usize,
    },
    /// Receive one message into `buf`'s spare capacity with the sender's address in `msg`;
    /// the result is the count (the buffer's length is set).
    RecvFrom {
        /// The socket.
        fd: RawFd,
        /// The buffer.
        buf: Vec<u8>,
        /// The message header and the sender's address.
        msg: Box<MsgBuf>,
    },
    /// Send `buf` as one message to the address in `msg`; the result is the count sent.
    SendTo {
        /// The socket.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// The message header and the destination address.
        msg: Box<MsgBuf>,
    },
    /// Complete when `fd` is readable (add_reader); the result is 0.
    PollReadable {
        /// The fd watched.
        fd: RawFd,
    },
    /// Complete when `fd` is writable (add_writer); the result is 0.
    PollWritable {
        /// The fd watched.
        fd: RawFd,
    },
}

impl Op {
    /// The fd the operation works on.
    pub fn fd(&self) -> RawFd {
        match self {
            Op::Accept { fd, .. }
            | Op::Recv { fd, .. }
            | Op::Send { fd, .. }
            | Op::RecvFrom { fd, .. }
            | Op::SendTo { fd, .. }
            | Op::PollReadable { fd }
            | Op::PollWritable { fd } => *fd,
            Op::Connect { sock, .. } => sock.as_raw_fd(),
        }
    }

    /// True for the readiness watches of `add_reader`/`add_writer`, which make no syscall.
    pub fn is_watch(&self) -> bool {
        matches!(self, Op::PollReadable { .. } | Op::PollWritable { .. })
    }

    /// The readiness a readiness driver waits for before retrying the operation.
    pub fn direction(&self) -> Direction {
        match self {
            Op::Accept { .. } | Op::Recv { .. } | Op::RecvFrom { .. } | Op::PollReadable { .. } => {
                Direction::Read
            }
            Op::Connect { .. } | Op::Send { .. } | Op::SendTo { .. } | Op::PollWritable { .. } => {
                Direction::Write
            }
        }
    }

    /// Tries the operation once as a non-blocking syscall (EINTR retried). `WouldBlock` means
    /// wait for [`Op::direction`] readiness and try again. `ready` says whether the readiness
    /// was just reported (the poll ops only complete then).
    pub fn perform(&mut self, ready: bool) -> io::Result<usize> {
        retry_eintr(|| self.perform_once(ready))
    }

    fn perform_once(&mut self, ready: bool) -> io::Result<usize> {
        match self {
            Op::Accept { fd, addr } => {
                addr.len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                let storage =
                    &mut addr.storage as *mut libc::sockaddr_storage as *mut libc::sockaddr;
                accept_nonblocking(*fd, storage, &mut addr.len)
            }
            Op::Connect {
                sock,
                addr,
                started,
            } => {
                let fd = sock.as_raw_fd();
                if *started {
                    if !ready {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    take_socket_error(fd)?;
                    return Ok(0);
                }
                // SAFETY (inside syscall!): `addr` is a valid socket address of `len()` bytes.
                match syscall!(connect(fd, addr.as_ptr().cast(), addr.len())) {
                    Ok(_) => Ok(0),
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                        *started = true;
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            }
            Op::Recv { fd, buf } => {
                let spare = buf.spare_capacity_mut();
                // SAFETY (inside syscall!): `spare` is writable memory of `spare.len()` bytes.
                let n = syscall!(recv(
                    *fd,
                    spare.as_mut_ptr() as *mut libc::c_void,
                    spare.len(),
                    libc::MSG_DONTWAIT
                ))? as usize;
                // SAFETY: the kernel initialised `n` bytes after the old length.
                unsafe { buf.set_len(buf.len() + n) };
                Ok(n)
            }
            Op::Send { fd, buf, pos } => {
                let rest = &buf[(*pos).min(buf.len())..];
                no_sigpipe(|| {
                    // SAFETY (inside syscall!): `rest` is readable memory of `rest.len()` bytes.
                    syscall!(send(
                        *fd,
                        rest.as_ptr() as *const libc::c_void,
                        rest.len(),
                        libc::MSG_DONTWAIT | MSG_NOSIGNAL
                    ))
                    .map(|n| n as usize)
                })
            }
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
                    syscall!(sendmsg(*fd, hdr, libc::MSG_DONTWAIT | MSG_NOSIGNAL))
                        .map(|n| n as usize)
                })
            }
            Op::PollReadable { .. } | Op::PollWritable { .. } => {
                if ready {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }
}

impl Op {
    /// True when `res`, the result of [`Op::perform`] on a stream socket, shows that the fd
    /// has no more readiness in [`Op::direction`]: a receive that got some bytes but did not
    /// fill the buffer drained the receive queue, a send that took only part of the bytes
    /// filled the send buffer. New data (or room) then raises a new edge, so a readiness
    /// driver can wait for it instead of trying again (tokio's rule). Not true of datagram
    /// sockets, where a receive gets one datagram of many.
    pub fn drained_by(&self, res: &io::Result<usize>) -> bool {
        match (self, res) {
            (Op::Recv { buf, .. }, Ok(n)) => *n > 0 && buf.len() < buf.capacity(),
            (Op::Send { buf, pos, .. }, Ok(n)) => pos + n < buf.len(),
            _ => false,
        }
    }
}

impl Op {
    /// Records that the kernel wrote `n` bytes into a receiving op's buffer (and, for
    /// `RecvFrom`, the sender's address into its header). For completion drivers; readiness
    /// drivers get this done by [`Op::perform`].
    ///
    /// # Safety
    /// The kernel must have written `n` initialised bytes after the buffer's length.
    pub unsafe fn assume_received(&mut self, n: usize) {
        if let Op::Recv { buf, .. } | Op::RecvFrom { buf, .. } = self {
            let len = (buf.len() + n).min(buf.capacity());
            // SAFETY: the caller guarantees those bytes were written.
            unsafe { buf.set_len(len) };
        }
    }
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
    let conn = unsafe { OwnedFd::from_raw_fd(new) };
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
