//! The data of file operations that the kernel writes into ([`StatxBuf`], statx(2)'s result)
//! and [`close_fd`], close(2) with its error reported.
//!
//! # Soundness
//!
//! `libc::statx` is a plain C struct for which all-zero bytes are a valid value; the kernel
//! only ever overwrites it with another valid value, so its fields can be read at any time
//! (before a completion they read as zeroes). `close_fd` takes the descriptor out of its
//! `OwnedFd` first, so nothing else closes it again.

use std::fmt;
use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

/// Where statx(2) writes a file's status ([`Op::Statx`](crate::Op::Statx)), boxed with the op
/// so its address is stable while the kernel writes to it.
pub struct StatxBuf {
    #[cfg(target_os = "linux")]
    raw: libc::statx,
    /// statx(2) is Linux's: elsewhere no loop runs `Op::Statx`, and the buffer stays empty.
    #[cfg(not(target_os = "linux"))]
    _empty: (),
}

impl StatxBuf {
    /// An all-zero buffer, boxed.
    pub fn new_boxed() -> Box<StatxBuf> {
        Box::new(StatxBuf {
            // SAFETY: statx is plain old data; all-zero is a valid value.
            #[cfg(target_os = "linux")]
            raw: unsafe { std::mem::zeroed() },
            #[cfg(not(target_os = "linux"))]
            _empty: (),
        })
    }
}

#[cfg(target_os = "linux")]
impl StatxBuf {
    /// The pointer to hand the kernel (statx(2)'s `statxbuf`).
    pub fn as_mut_ptr(&mut self) -> *mut libc::statx {
        &mut self.raw
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.raw.stx_size
    }

    /// The file's type and permission bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        u32::from(self.raw.stx_mode)
    }

    /// The last modification time, if the kernel reported one.
    pub fn modified(&self) -> Option<SystemTime> {
        (self.raw.stx_mask & libc::STATX_MTIME != 0).then(|| to_time(&self.raw.stx_mtime))
    }

    /// The last access time, if the kernel reported one.
    pub fn accessed(&self) -> Option<SystemTime> {
        (self.raw.stx_mask & libc::STATX_ATIME != 0).then(|| to_time(&self.raw.stx_atime))
    }
}

#[cfg(target_os = "linux")]
fn to_time(t: &libc::statx_timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.tv_nsec));
    match u64::try_from(t.tv_sec) {
        Ok(secs) => SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + nanos,
        Err(_) => SystemTime::UNIX_EPOCH - Duration::from_secs(t.tv_sec.unsigned_abs()) + nanos,
    }
}

impl fmt::Debug for StatxBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StatxBuf");
        #[cfg(target_os = "linux")]
        d.field("size", &self.size()).field("mode", &self.mode());
        d.finish()
    }
}

/// Closes `fd` and reports close(2)'s error (dropping an `OwnedFd` ignores it). The
/// descriptor is released either way, as close(2) does on Linux and the BSDs.
///
/// # Errors
/// close(2)'s: `EIO` (a delayed write failed), `EINTR`.
pub fn close_fd(fd: OwnedFd) -> io::Result<()> {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` was just taken out of its OwnedFd: this is its one close.
    if unsafe { libc::close(raw) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
