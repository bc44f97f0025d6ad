//! [`Process`]: a child started by `subprocess_exec`.

use std::fmt;
use std::io;

use crate::LocalBoxFuture;

/// asyncio's returncode with everything read from stdout and stderr.
pub type Communicated = (i32, Vec<u8>, Vec<u8>);

/// What a loop implementation provides for a child process it started.
pub trait ChildProcess {
    /// The child's process id.
    fn pid(&self) -> u32;
    /// Sends SIGKILL to the child (no-op error if it already exited and was reaped).
    fn kill(&self) -> io::Result<()>;
    /// Sends `signal` to the child.
    fn send_signal(&self, signal: i32) -> io::Result<()>;
    /// Resolves to asyncio's returncode once the child exits.
    fn wait(&mut self) -> LocalBoxFuture<io::Result<i32>>;
    /// Feeds `input` to stdin (if piped), reads stdout and stderr (if piped) to the end, waits.
    fn communicate(&mut self, input: Vec<u8>) -> LocalBoxFuture<io::Result<Communicated>>;
}

/// A child started by `subprocess_exec` (stdio as configured on the `Command`).
pub struct Process {
    inner: Box<dyn ChildProcess>,
}

impl Process {
    /// Wraps a loop implementation's child process.
    pub fn new(inner: Box<dyn ChildProcess>) -> Self {
        Process { inner }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Kills the child with SIGKILL.
    ///
    /// # Errors
    /// The error of `kill(2)` (e.g. the child was already reaped).
    pub fn kill(&self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Sends SIGTERM to the child.
    ///
    /// # Errors
    /// The error of `kill(2)`.
    pub fn terminate(&self) -> io::Result<()> {
        self.inner.send_signal(15)
    }

    /// Sends `signal` to the child.
    ///
    /// # Errors
    /// The error of `kill(2)` (bad signal number, child gone).
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        self.inner.send_signal(signal)
    }

    /// asyncio's returncode: the exit code, or minus the signal number that killed it.
    pub fn wait(&mut self) -> impl std::future::Future<Output = io::Result<i32>> + use<> {
        self.inner.wait()
    }

    /// Feeds `input` to stdin (if piped), reads stdout/stderr (if piped) to the end, waits.
    pub fn communicate(
        &mut self,
        input: Vec<u8>,
    ) -> impl std::future::Future<Output = io::Result<(i32, Vec<u8>, Vec<u8>)>> + use<> {
        self.inner.communicate(input)
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process").field("pid", &self.pid()).finish()
    }
}
