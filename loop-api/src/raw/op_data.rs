//! The data of operations that the kernel writes into: socket address storage and message
//! headers (plain C structs zeroed, and read back as addresses), and how a completion loop
//! records how many bytes the kernel received into an op's buffer.
//!
//! # Soundness
//!
//! `sockaddr_storage`, `iovec` and `msghdr` are plain C structs for which all-zero bytes are a
//! valid value. An address is read back only with the length the kernel wrote (or, for an
//! untouched buffer, the full storage of zeroes: an unspecified address). A buffer's length
//! grows only by what the caller of `assume_received` vouches the kernel initialised.

use std::fmt;
use std::mem;
use std::net::SocketAddr;

use socket2::SockAddr;

use crate::op::Op;

/// Storage for a socket address filled in by the kernel (accept).
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

    /// The address the kernel wrote.
    pub fn to_sock_addr(&self) -> SockAddr {
        // SAFETY: `storage` holds `len` bytes of a socket address written by the kernel (or
        // zeroes with the full length, an unspecified address).
        unsafe { SockAddr::new(self.storage, self.len) }
    }

    /// The address as a std `SocketAddr`, if it is IPv4 or IPv6.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        self.to_sock_addr().as_socket()
    }
}

impl fmt::Debug for AddrBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddrBuf")
            .field("addr", &self.to_socket_addr())
            .finish()
    }
}

/// A `msghdr` with its address storage and one `iovec`, boxed with the op so a completion
/// loop can hand the kernel pointers to it (recvmsg/sendmsg).
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
    pub fn to_addr(addr: &SockAddr) -> Box<MsgBuf> {
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
    pub fn peer(&self) -> SockAddr {
        // SAFETY: the kernel wrote `msg_namelen` bytes of a socket address into `addr`.
        unsafe { SockAddr::new(self.addr, self.hdr.msg_namelen) }
    }
}

impl fmt::Debug for MsgBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgBuf")
            .field("addr_len", &self.addr_len)
            .finish()
    }
}

impl Op {
    /// Records that the kernel wrote `n` bytes into a receiving (or file-reading) op's buffer
    /// (and, for
    /// `RecvFrom`, the sender's address into its header). For completion loops; a readiness
    /// loop sets the length when it performs the receive.
    ///
    /// # Safety
    /// The kernel must have written `n` initialised bytes after the buffer's length.
    pub unsafe fn assume_received(&mut self, n: usize) {
        if let Op::Recv { buf, .. } | Op::RecvFrom { buf, .. } | Op::Read { buf, .. } = self {
            let len = (buf.len() + n).min(buf.capacity());
            // SAFETY: the caller guarantees those bytes were written.
            unsafe { buf.set_len(len) };
        }
    }
}
