//! [`Process`]: a child started by `subprocess_exec` or `subprocess_shell`.

use std::fmt;
use std::io;
use std::process::Command;

use crate::LocalBoxFuture;
use crate::pipe::{PipeReader, PipeWriter};

/// The `Command` that `subprocess_shell` runs: `/bin/sh -c cmd`. Configure its stdio and
/// give it to `subprocess_exec` to pipe the shell's streams.
pub fn shell_command(cmd: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(cmd);
    c
}

/// asyncio's returncode with everything read from stdout and stderr.
pub type Communicated = (i32, Vec<u8>, Vec<u8>);

/// What a loop implementation provides for a child process it started.
pub trait ChildProcess {
    /// The child's process id.
    fn pid(&self) -> u32;
    /// Sends SIGKILL to the child (a `NotFound` error once it was reaped: its pid is then
    /// never signalled, since it may belong to another process).
    fn kill(&self) -> io::Result<()>;
    /// Sends `signal` to the child.
    fn send_signal(&self, signal: i32) -> io::Result<()>;
    /// Resolves to asyncio's returncode once the child exits.
    fn wait(&mut self) -> LocalBoxFuture<io::Result<i32>>;
    /// Feeds `input` to stdin (if piped), reads stdout and stderr (if piped) to the end, waits.
    fn communicate(&mut self, input: Vec<u8>) -> LocalBoxFuture<io::Result<Communicated>>;
    /// asyncio's returncode once the child has been reaped, else `None`.
    fn returncode(&self) -> Option<i32> {
        None
    }
    /// Takes the child's stdin pipe (if piped and not taken yet).
    fn take_stdin(&mut self) -> Option<PipeWriter> {
        None
    }
    /// Takes the child's stdout pipe (if piped and not taken yet).
    fn take_stdout(&mut self) -> Option<PipeReader> {
        None
    }
    /// Takes the child's stderr pipe (if piped and not taken yet).
    fn take_stderr(&mut self) -> Option<PipeReader> {
        None
    }
}

/// A child started by `subprocess_exec` (stdio as configured on the `Command`), asyncio's
/// `asyncio.subprocess.Process`.
///
/// ```no_run
/// # fn demo(lp: &loop_api::EventLoop) -> Result<(), loop_api::LoopError> {
/// use std::process::{Command, Stdio};
///
/// let mut cmd = Command::new("tr");
/// cmd.args(["a-z", "A-Z"]).stdin(Stdio::piped()).stdout(Stdio::piped());
/// let mut child = lp.subprocess_exec(cmd)?;
/// let (code, out, _err) = lp.run_until_complete(child.communicate(b"hello".to_vec()))??;
/// assert_eq!((code, out), (0, b"HELLO".to_vec()));
/// # Ok(()) }
/// ```
///
/// For CPU-bound work that must not share the program's process (isolation from a crash or a
/// memory limit, asyncio's `ProcessPoolExecutor`), run a program this way and talk to it over
/// its pipes: Rust closures cannot be sent to another process, so there is no process pool.
///
/// # Standard input, output and error
///
/// They are what the `Command` given to `subprocess_exec` says (std's defaults: inherited):
///
/// - `Stdio::piped()`: the loop makes the pipe non-blocking and gives it to the `Process`, as
///   a [`PipeWriter`] (stdin) or [`PipeReader`] (stdout, stderr), reached with
///   [`Process::take_stdin`] and friends, and used by [`Process::communicate`];
/// - `Stdio::inherit()`: the child shares the program's stream;
/// - `Stdio::null()`: `/dev/null`;
/// - stderr into stdout (asyncio's `stderr=STDOUT`): make a pipe with `std::io::pipe()`, give
///   its writing end to both, and read its reading end through
///   [`EventLoop::connect_read_pipe`](crate::EventLoop::connect_read_pipe):
///
/// ```no_run
/// # fn demo(lp: &loop_api::EventLoop) -> Result<(), loop_api::LoopError> {
/// use std::process::{Command, Stdio};
///
/// let (reader, writer) = std::io::pipe()?;
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo out; echo err >&2"])
///     .stdout(Stdio::from(writer.try_clone()?))
///     .stderr(Stdio::from(writer));
/// let mut child = lp.subprocess_exec(cmd)?; // the Command, and its copies of the pipe, are gone
/// let mut merged = lp.connect_read_pipe(reader.into())?;
/// let both = lp.run_until_complete(async move {
///     let both = merged.recv_to_end().await;
///     let _ = child.wait().await;
///     both
/// })??;
/// assert_eq!(both, b"out\nerr\n");
/// # Ok(()) }
/// ```
///
/// # Reaping
///
/// Every child is reaped: [`Process::wait`] reaps it, and a `Process` dropped before its child
/// was reaped hands the child to a background reaper, so no zombie is left behind.
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
    /// `NotFound` once the child was reaped (its pid is then never signalled: it may belong
    /// to another process by now); the error of `kill(2)`.
    pub fn kill(&self) -> io::Result<()> {
        self.inner.kill()
    }

    /// Sends SIGTERM to the child.
    ///
    /// # Errors
    /// As [`kill`](Self::kill).
    pub fn terminate(&self) -> io::Result<()> {
        self.inner.send_signal(15)
    }

    /// Sends `signal` to the child.
    ///
    /// # Errors
    /// As [`kill`](Self::kill); `EINVAL` for a bad signal number.
    pub fn send_signal(&self, signal: i32) -> io::Result<()> {
        self.inner.send_signal(signal)
    }

    /// asyncio's returncode: the exit code, or minus the signal number that killed it.
    ///
    /// Waiting while stdout or stderr is piped and unread can deadlock once the child fills
    /// the pipe (as in asyncio): read them, or use [`communicate`](Self::communicate).
    /// Waiting again gives the same code.
    pub fn wait(&mut self) -> impl std::future::Future<Output = io::Result<i32>> + use<> {
        self.inner.wait()
    }

    /// Feeds `input` to stdin (if piped), reads stdout/stderr (if piped) to the end, waits.
    ///
    /// The writes and both reads progress together, so a child that fills one pipe while
    /// the program writes to another never deadlocks. Stdin is closed once `input` is written
    /// (also when `input` is empty), as Python's `communicate` does; a child that exits
    /// without reading all of it is not an error (`BrokenPipe` is ignored). Pipes already
    /// taken with `take_*` are left alone (their output is not in the result).
    ///
    /// # Errors
    /// `InvalidInput` if `input` is not empty but stdin is not piped; an error reading the
    /// pipes or waiting.
    pub fn communicate(
        &mut self,
        input: Vec<u8>,
    ) -> impl std::future::Future<Output = io::Result<(i32, Vec<u8>, Vec<u8>)>> + use<> {
        self.inner.communicate(input)
    }
}

impl Process {
    /// asyncio's `returncode`: `Some` once the child was reaped (by [`wait`](Self::wait) or
    /// [`communicate`](Self::communicate)), `None` while that has not happened.
    pub fn returncode(&self) -> Option<i32> {
        self.inner.returncode()
    }

    /// Takes the child's stdin (if it was piped): write to it, drop it to close it.
    pub fn take_stdin(&mut self) -> Option<PipeWriter> {
        self.inner.take_stdin()
    }

    /// Takes the child's stdout (if it was piped), to read it as it comes.
    pub fn take_stdout(&mut self) -> Option<PipeReader> {
        self.inner.take_stdout()
    }

    /// Takes the child's stderr (if it was piped).
    pub fn take_stderr(&mut self) -> Option<PipeReader> {
        self.inner.take_stderr()
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid())
            .field("returncode", &self.returncode())
            .finish()
    }
}
