//! [`OpenOptions`]: std's builder for how a file is opened, with an async `open`.

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use crate::file::File;

/// How to open a file: std's `fs::OpenOptions`, with the same rules and errors, and an async
/// [`open`](OpenOptions::open).
///
/// ```no_run
/// # async fn f() -> std::io::Result<()> {
/// let log = loop_fs::OpenOptions::new().append(true).create(true).open("app.log").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// Every option off, mode `0o666` (as std's).
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }

    /// Opens for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Opens for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Opens for appending: every write goes to the end of the file, whatever its offset.
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncates the file to 0 bytes (needs write access).
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Creates the file if it does not exist (needs write or append access).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Creates the file, failing with `AlreadyExists` if it exists (atomically; needs write
    /// or append access).
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// The permissions of a created file, before the umask (`0o666` by default).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Opens `path` with these options on the running loop.
    ///
    /// # Errors
    /// `InvalidInput` for a combination std refuses (no access mode; `create` or `truncate`
    /// without write access); `NotFound`, `AlreadyExists` (`create_new`), `PermissionDenied`,
    /// and the other errors of open(2).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let lp = crate::running_loop()?;
        let path = path.as_ref().to_owned();
        #[cfg(target_os = "linux")]
        if crate::native(&lp) {
            let flags = self.flags()?;
            let file = crate::native::open(&lp, &path, flags, self.mode).await?;
            return Ok(File::from_std(file));
        }
        let options = self.to_std();
        let file = crate::blocking::run(&lp, move || options.open(path)).await?;
        Ok(File::from_arc(Arc::new(file)))
    }

    /// std's `OpenOptions` with the same settings.
    fn to_std(&self) -> fs::OpenOptions {
        let mut o = fs::OpenOptions::new();
        o.read(self.read)
            .write(self.write)
            .append(self.append)
            .truncate(self.truncate)
            .create(self.create)
            .create_new(self.create_new)
            .mode(self.mode);
        o
    }

    /// open(2)'s flags for these options, with std's rules (its `get_access_mode` and
    /// `get_creation_mode`) and std's errors, so both paths refuse the same combinations.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn flags(&self) -> io::Result<i32> {
        let invalid = |msg: &str| io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned());
        let needs_write = "creating or truncating a file requires write or append access";
        let creating = self.truncate || self.create || self.create_new;
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) if creating => return Err(invalid(needs_write)),
            (false, false, false) => {
                return Err(invalid(
                    "must specify at least one of read, write, or append access",
                ));
            }
        };
        if (!self.write && !self.append && creating)
            || (self.append && self.truncate && !self.create_new)
        {
            return Err(invalid(needs_write));
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (false, false, false) => 0,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
        };
        Ok(access | creation)
    }
}
