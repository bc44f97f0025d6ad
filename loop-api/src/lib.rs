//! asyncio's event-loop architecture for Rust: the traits and the types users hold.
//!
//! - [`AbstractEventLoop`]: what every loop can do, as object-safe primitives; backends
//!   implement it (most through `loop-core`'s `BaseEventLoop`, but nothing requires that).
//! - [`EventLoop`]: the cheap, cloneable, `!Send` handle users hold, with asyncio's methods:
//!   `call_soon`, `call_later`, `create_task`, `run_until_complete`, `add_reader`,
//!   `run_in_executor`, `sock_recv`, ...
//! - [`LoopHandle`]: the `Send + Sync` handle other threads use (`call_soon_threadsafe`).
//! - [`LoopPolicy`]: which loop a thread gets.
//! - [`Process`], [`PipeReader`], [`PipeWriter`]: child processes and their pipes
//!   (`subprocess_exec`, `subprocess_shell`); [`Executor`]: where `run_in_executor` runs
//!   blocking work.
//!
//! Platforms: Unix (Linux, macOS, the BSDs); file descriptors are `RawFd`.
//!
//! ```
//! use loop_api::{EventLoop, LoopError};
//!
//! fn run(lp: &EventLoop) -> Result<u32, LoopError> {
//!     lp.run_until_complete(async {
//!         loop_api::sleep(std::time::Duration::from_millis(1)).await;
//!         42
//!     })
//! }
//! ```
#![deny(missing_docs)]
// All of this crate's unsafe code is in `raw`, with its soundness argument.
#![deny(unsafe_code)]

mod abstract_loop;
mod clock;
mod context;
mod error;
mod event_loop;
mod event_loop_net;
mod event_loop_process;
mod executor;
mod handle;
pub mod introspect;
mod op;
pub mod panics;
mod pipe;
mod pipe_io;
mod policy;
mod process;
#[allow(unsafe_code)]
mod raw;
mod registered_socket;
mod remote;
mod running;
mod stats;
mod task;
mod thread_exit;
mod timeout;

use std::future::Future;
use std::pin::Pin;

pub use abstract_loop::AbstractEventLoop;
pub use clock::{AutoAdvancePause, ClockHold, VirtualClock};
pub use context::{ExceptionContext, ExceptionHandler};
pub use error::{LoopError, TaskError, closed_loop_io_error, panic_message};
pub use event_loop::{EventLoop, WeakEventLoop};
pub use event_loop_net::{SockRecv, SockSendAll};
pub use executor::{Executor, ExecutorFuture, Job, shutdown_in_thread};
pub use handle::{Handle, TimerCancelled, TimerHandle};
pub use op::{
    AddrBuf, Direction, IDLE_RECEIVE_AFTER, MsgBuf, Op, OpFuture, OpId, OpPoll, StatxBuf,
};
pub use pipe::{PipeRead, PipeReader, PipeWrite, PipeWriter};
pub use policy::LoopPolicy;
pub use process::{ChildProcess, Communicated, Process, shell_command};
pub use raw::{close_fd, is_loop_task_waker, wake_into};
pub use registered_socket::RegisteredSocket;
pub use remote::{LoopHandle, ThreadSafeScheduler};
pub use running::{Sleep, YieldNow, get_running_loop, sleep, yield_now};
pub use stats::LoopStats;
pub use task::{
    AnyTask, Notified, Schedule, Task, TaskRef, TaskState, current_task, set_task_timing,
    task_timing,
};
pub use timeout::{Elapsed, WaitFor, wait_for};

/// A socket address of any family (re-exported from `socket2`), as the raw socket primitives
/// take and give it.
pub use socket2::SockAddr;

/// A scheduled callback (what `call_soon` boxes).
pub type Callback = Box<dyn FnOnce() + 'static>;

/// The outcome of an operation on an owned buffer: the result and the buffer, given back in
/// every case.
pub type BufResult<T> = (std::io::Result<T>, Vec<u8>);

/// A boxed, `!Send` future (what the loop's socket primitives return).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
