//! [`Metadata`]: a file's type, size, permissions and times, from std's `Metadata` (executor
//! path) or from statx(2) (io_uring).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::SystemTime;

// `mode_t` is u32 on Linux, u16 on macOS: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
const S_IFMT: u32 = libc::S_IFMT as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFREG: u32 = libc::S_IFREG as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFDIR: u32 = libc::S_IFDIR as u32;
#[allow(clippy::unnecessary_cast)]
const S_IFLNK: u32 = libc::S_IFLNK as u32;

/// Information about a file (std's `fs::Metadata`, which it wraps where the loop used std).
#[derive(Debug, Clone)]
pub struct Metadata {
    len: u64,
    mode: u32,
    modified: Option<SystemTime>,
    accessed: Option<SystemTime>,
    std: Option<fs::Metadata>,
}

impl Metadata {
    /// From std's metadata (the executor path).
    pub(crate) fn from_std(m: fs::Metadata) -> Self {
        Metadata {
            len: m.len(),
            mode: m.mode(),
            modified: m.modified().ok(),
            accessed: m.accessed().ok(),
            std: Some(m),
        }
    }

    /// From what statx(2) wrote (the io_uring path).
    #[cfg(target_os = "linux")]
    pub(crate) fn from_statx(s: &loop_api::StatxBuf) -> Self {
        Metadata {
            len: s.size(),
            mode: s.mode(),
            modified: s.modified(),
            accessed: s.accessed(),
            std: None,
        }
    }

    /// The size of the file, in bytes.
    #[allow(clippy::len_without_is_empty)] // std's `Metadata::len`, which has no is_empty.
    pub fn len(&self) -> u64 {
        self.len
    }

    fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// True for a symbolic link (never, for [`metadata`](crate::metadata), which follows
    /// them).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// The type and permission bits (`st_mode`).
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The permissions.
    pub fn permissions(&self) -> fs::Permissions {
        fs::Permissions::from_mode(self.mode & 0o7777)
    }

    /// The last modification time.
    ///
    /// # Errors
    /// `Unsupported` where the file system does not record it.
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.modified.ok_or_else(|| no_time("modification"))
    }

    /// The last access time.
    ///
    /// # Errors
    /// `Unsupported` where the file system does not record it.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.accessed.ok_or_else(|| no_time("access"))
    }

    /// std's metadata, when the loop got it from std (the executor path; `None` on io_uring,
    /// where it comes from statx).
    pub fn as_std(&self) -> Option<&fs::Metadata> {
        self.std.as_ref()
    }
}

fn no_time(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the file system did not report the file's {what} time"),
    )
}
