//! The errors a loop reports: [`LoopError`] for the loop itself, [`TaskError`] for a task's outcome.

use std::fmt;
use std::io;

/// The `io::Error` an I/O operation gives when its loop is closed or gone ("Event loop is
/// closed", kind `Other`): close the loop only after its I/O is done, or keep a handle to it.
pub fn closed_loop_io_error() -> io::Error {
    io::Error::other("Event loop is closed")
}

/// Everything a loop operation can fail with.
///
/// The `Display` texts are asyncio's messages, so a user who knows asyncio recognises them.
#[non_exhaustive]
#[derive(Debug)]
pub enum LoopError {
    /// The loop was closed: "Event loop is closed".
    Closed,
    /// `run_forever`/`run_until_complete` on a loop that is already running.
    AlreadyRunning,
    /// `close()` on a running loop.
    CloseWhileRunning,
    /// `get_event_loop()` on a thread that has no loop (only the main thread gets one made).
    NoCurrentLoop {
        /// The name of the thread that asked.
        thread: String,
    },
    /// `get_running_loop()` outside a callback or task.
    NoRunningLoop,
    /// `run_until_complete` returned because the loop was stopped before the future finished.
    StoppedBeforeComplete,
    /// The future given to `run_until_complete` panicked; the panic message.
    Panicked(String),
    /// The future given to `run_until_complete` was cancelled before it finished.
    Cancelled,
    /// A loop was asked to run while another loop runs on the same thread.
    AnotherLoopRunning,
    /// A backend that was asked for cannot run here; `reason` says why and what to do.
    Unavailable {
        /// The backend's name (`"uring"`, `"mio"`, ...).
        backend: String,
        /// Why it cannot run, and what to do about it.
        reason: String,
    },
    /// A value given to the loop is not acceptable (bad `LOOP_BACKEND`, bad signal number, ...).
    InvalidArgument(String),
    /// The loop does not support this operation (yet, or on this platform); the text says which.
    NotSupported(String),
    /// `run()` was interrupted by Ctrl-C (SIGINT): its main future was cancelled (asyncio's
    /// `KeyboardInterrupt`).
    Interrupted,
    /// An error from the operating system.
    Io(io::Error),
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::Closed => f.write_str("Event loop is closed"),
            LoopError::AlreadyRunning => f.write_str("This event loop is already running"),
            LoopError::CloseWhileRunning => f.write_str("Cannot close a running event loop"),
            LoopError::NoCurrentLoop { thread } => {
                write!(f, "There is no current event loop in thread '{thread}'.")
            }
            LoopError::NoRunningLoop => f.write_str("no running event loop"),
            LoopError::StoppedBeforeComplete => {
                f.write_str("Event loop stopped before Future completed.")
            }
            LoopError::Panicked(msg) => write!(f, "the future panicked: {msg}"),
            LoopError::Cancelled => f.write_str("the future was cancelled"),
            LoopError::AnotherLoopRunning => {
                f.write_str("Cannot run the event loop while another loop is running")
            }
            LoopError::Unavailable { backend, reason } => {
                write!(f, "event loop backend '{backend}' is unavailable: {reason}")
            }
            LoopError::InvalidArgument(msg) => f.write_str(msg),
            LoopError::NotSupported(msg) => write!(f, "not supported: {msg}"),
            LoopError::Interrupted => f.write_str("interrupted by Ctrl-C (SIGINT)"),
            LoopError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for LoopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoopError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for LoopError {
    fn from(e: io::Error) -> Self {
        LoopError::Io(e)
    }
}

impl From<LoopError> for io::Error {
    fn from(e: LoopError) -> Self {
        match e {
            LoopError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// How a task (or an executor job) ended without producing its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The task was cancelled (or its loop was closed before it finished).
    Cancelled,
    /// The task panicked; the panic message.
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled"),
            TaskError::Panicked(msg) => write!(f, "task panicked: {msg}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// The text of a panic payload (`&str` or `String`), or a placeholder for other payloads.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a non-string panic payload)".to_string()
    }
}
