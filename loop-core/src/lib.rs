//! The backend-independent core of an asyncio-style event loop.
//!
//! [`BaseEventLoop<D>`] holds everything a loop does that is not waiting for I/O: the FIFO ready
//! queue (one iteration runs exactly what was ready when it began, asyncio's `_run_once`), the
//! timer heap, tasks and their `Send + Sync` wakers, `call_soon_threadsafe`, the default
//! executor, `add_reader`/`add_writer`, and the `sock_*` operations with owned buffers. It
//! implements [`loop_api::AbstractEventLoop`].
//!
//! Signals, child processes and pipes are core too, built on the same driver: a signal
//! handler is a watch on a self-pipe that signal-hook's async-signal-safe action writes to
//! (`signals.rs`); a child's exit is a pidfd polled like any fd, or a watcher thread where
//! pidfds are unavailable ([`ChildWatcher`]); pipes are non-blocking fds read and written after
//! a readiness wait (`pipe.rs`, `process.rs`).
//!
//! # The driver contract
//!
//! The core talks to the OS only through one trait, [`Driver`]:
//!
//! - the core puts an [`Op`] (plain owned data: fd, buffer, address) in its [`Ops`] table and
//!   calls [`Driver::submit`] with the key;
//! - the driver reports exactly one completion per key through [`Ops::complete`], from `submit`
//!   itself, from [`Driver::poll`], or from [`Driver::cancel`];
//! - the op, and every buffer in it, stays in the table until that completion: a future
//!   dropped mid-flight only marks its op orphaned, so no buffer is freed while the kernel may
//!   write to it, on any backend;
//! - [`Driver::poll`] waits at most the timeout the core computed (0 when work is ready,
//!   otherwise until the next timer), and [`Driver::waker`] ends that wait from any thread.
//!
//! Who implements it:
//!
//! | crate | how |
//! |---|---|
//! | `loop-mio` | a [`Selector`] over `mio::Poll` (epoll, kqueue), through [`ReadinessDriver`] |
//! | `loop-polling` | a [`Selector`] over `polling::Poller` |
//! | `loop-uring` | a [`Driver`] of its own: each op becomes an io_uring SQE |
//!
//! A readiness backend only writes a [`Selector`] (register, reregister, deregister, select,
//! waker); [`ReadinessDriver`] turns it into a driver by performing each op as a non-blocking
//! syscall and, on `WouldBlock`, waiting for readiness and retrying.
//!
//! Platforms: Unix.
#![deny(missing_docs)]

mod abstract_impl;
mod base_loop;
mod child;
mod clock;
mod config;
mod counters;
mod driver;
mod executor;
mod io;
mod net;
mod ops;
mod perform;
mod pipe;
mod process;
mod readiness;
mod reporting;
mod shared;
mod signals;
mod spares;
mod sys;
mod tasks;
mod timers;
#[cfg(feature = "tracing")]
mod trace;
mod watch;

pub use base_loop::BaseEventLoop;
pub use child::{CHILD_WATCHER_VAR, ChildWatcher, child_watcher, set_child_watcher};
pub use config::{DEFAULT_SLOW_CALLBACK, LoopConfig};
pub use driver::{
    Driver, DriverWaker, Event, Interest, ParkKey, Readiness, Registration, Selector, Started,
    WAKER_TOKEN,
};
pub use executor::{ThreadPool, default_max_workers};
pub use loop_api::{AddrBuf, Direction, MsgBuf, Op};
pub use ops::{OpKey, Ops};
pub use perform::{drained_by, perform};
pub use readiness::ReadinessDriver;
pub use spares::{LendingRounds, PARK_MIN, RoundCheck, SPARE_BUFFERS};

use loop_api::EventLoop;

/// Wraps a driver into a ready-to-use [`EventLoop`] set up by `config` (the system's clock
/// with `LoopConfig::default()`, a test loop with [`LoopConfig::virtual_time`]).
pub fn event_loop_with<D: Driver>(driver: D, config: LoopConfig) -> EventLoop {
    EventLoop::new(BaseEventLoop::new(driver, config))
}
