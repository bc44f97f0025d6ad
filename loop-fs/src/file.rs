//! [`File`]: an open file, read and written at explicit offsets with owned buffers.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use loop_api::BufResult;

use crate::metadata::Metadata;
use crate::open_options::OpenOptions;
use crate::{blocking, running_loop};

/// An open file on the running loop. Reads and writes name their offset (`pread`/`pwrite`:
/// there is no cursor, so any number of them may be in flight at once) and take the buffer
/// by value, giving it back with the result ([`BufResult`]).
///
/// Dropping a `File` closes it (without reporting close's error: [`close`](File::close)
/// does). On an executor path, a read or write whose future was dropped keeps the file open
/// until its job has finished.
pub struct File {
    /// Shared with the executor's jobs while they run (never on io_uring).
    std: Arc<fs::File>,
}

impl File {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// `NotFound`, `PermissionDenied`, ... (open(2)'s).
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` for writing, creating it or truncating it.
    ///
    /// # Errors
    /// `NotFound` for a missing directory, `PermissionDenied`, ... (open(2)'s).
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Wraps a std file.
    pub fn from_std(file: fs::File) -> File {
        File::from_arc(Arc::new(file))
    }

    pub(crate) fn from_arc(std: Arc<fs::File>) -> File {
        File { std }
    }

    /// Reads into `buf` from `offset`: the buffer is cleared first, then filled up to its
    /// capacity at most, as `sock_recv` does; the result is the count (`buf.len()`), 0 at the
    /// end of the file.
    ///
    /// # Errors
    /// `InvalidInput` for a buffer without capacity; `EISDIR` for a directory, `EBADF` for a
    /// file not opened for reading, ... (pread(2)'s).
    pub async fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> BufResult<usize> {
        if buf.capacity() == 0 {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "read_at needs a buffer with capacity: pass Vec::with_capacity(n)",
            );
            return (Err(e), buf);
        }
        buf.clear();
        let lp = match running_loop() {
            Ok(lp) => lp,
            Err(e) => return (Err(e), buf),
        };
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::read_at(&lp, self.fd(), buf, offset).await;
        }
        blocking::read_at(&lp, self.std.clone(), buf, offset).await
    }

    /// Writes `buf` at `offset` once: the result is the count written, which may be less than
    /// `buf.len()` (see [`write_all_at`](File::write_all_at)). In a file opened with `append`,
    /// the bytes go to the end whatever the offset.
    ///
    /// # Errors
    /// `EBADF` for a file not opened for writing, `StorageFull`, ... (pwrite(2)'s).
    pub async fn write_at(&self, buf: Vec<u8>, offset: u64) -> BufResult<usize> {
        let lp = match running_loop() {
            Ok(lp) => lp,
            Err(e) => return (Err(e), buf),
        };
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::write_at(&lp, self.fd(), buf, offset).await;
        }
        blocking::write_at(&lp, self.std.clone(), buf, offset).await
    }

    /// Writes all of `buf` at `offset` onwards.
    ///
    /// # Errors
    /// As [`write_at`](File::write_at); `WriteZero` if the file takes no more bytes. Some
    /// bytes may have been written before the error.
    pub async fn write_all_at(&self, buf: Vec<u8>, offset: u64) -> BufResult<()> {
        let lp = match running_loop() {
            Ok(lp) => lp,
            Err(e) => return (Err(e), buf),
        };
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::write_all_at(&lp, self.fd(), buf, offset).await;
        }
        blocking::write_all_at(&lp, self.std.clone(), buf, offset).await
    }

    /// Flushes the file's data and metadata to the device (fsync(2)).
    ///
    /// # Errors
    /// `EIO` and the other errors of fsync(2).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.sync(false).await
    }

    /// Flushes the file's data, and only the metadata needed to read it back, to the device
    /// (fdatasync(2)).
    ///
    /// # Errors
    /// As [`sync_all`](File::sync_all).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.sync(true).await
    }

    async fn sync(&self, data_only: bool) -> io::Result<()> {
        let lp = running_loop()?;
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::sync(&lp, self.fd(), data_only).await;
        }
        let file = self.std.clone();
        blocking::run(&lp, move || {
            if data_only {
                file.sync_data()
            } else {
                file.sync_all()
            }
        })
        .await
    }

    /// The file's metadata.
    ///
    /// # Errors
    /// fstat(2)'s (rare on an open file).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let lp = running_loop()?;
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::file_metadata(&lp, self.fd()).await;
        }
        let file = self.std.clone();
        blocking::run(&lp, move || file.metadata().map(Metadata::from_std)).await
    }

    /// Closes the file, reporting close(2)'s error (dropping it does not). If a job of a
    /// dropped read or write still runs on the executor, the file is closed when it ends and
    /// this returns `Ok`.
    ///
    /// # Errors
    /// close(2)'s: `EIO` when a delayed write failed (network file systems).
    pub async fn close(self) -> io::Result<()> {
        let lp = running_loop()?;
        let Ok(file) = Arc::try_unwrap(self.std) else {
            return Ok(());
        };
        let fd = OwnedFd::from(file);
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            return crate::native::close(&lp, fd).await;
        }
        blocking::run(&lp, move || loop_api::close_fd(fd)).await
    }

    fn fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("fd", &self.fd()).finish()
    }
}
