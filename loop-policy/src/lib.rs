//! Which event loop a program gets: the backend registry, the default per-thread policy, the
//! global policy, and the `asyncio.run`-style entry points.
//!
//! ```
//! use loop_policy::{Backend, Runner};
//!
//! // asyncio.run(main()): a new loop from the global policy, closed afterwards.
//! let n = loop_policy::run(async { 6 * 7 }).unwrap();
//! assert_eq!(n, 42);
//!
//! // A chosen backend, several runs on one loop (asyncio.Runner with a loop_factory).
//! let mut runner = Runner::with_factory(|| Backend::Mio.new_event_loop());
//! assert_eq!(runner.run(async { 1 }).unwrap(), 1);
//! assert_eq!(runner.get_loop().unwrap().backend_name(), "mio");
//! ```
//!
//! # Choosing a backend
//!
//! - [`Backend`] names one: `Auto` (io_uring when it works here, else mio), `Mio`, `Polling`,
//!   `Uring`. [`Backend::resolve_with_reason`] says what `Auto` picked and why.
//! - `LOOP_BACKEND=mio` in the environment picks it for [`DefaultLoopPolicy::new`] (the default
//!   global policy); it is ignored in setuid/setgid processes. A bad value is reported as
//!   [`LoopError::InvalidArgument`](loop_api::LoopError::InvalidArgument) when a loop is made.
//! - [`install`] picks it in code for the whole process (like `uvloop.install()`),
//!   [`DefaultLoopPolicy::with_backend`] for one policy, [`DefaultLoopPolicy::with_factory`] and
//!   [`Runner::with_factory`] take any function that makes loops.
//!
//! Each backend is a cargo feature of this crate (`mio`, `polling` and `uring`, all on by
//! default), so a program links only the backends it wants. Asking for one that
//! is not built in, or cannot run here, gives
//! [`LoopError::Unavailable`](loop_api::LoopError::Unavailable) saying why: never a panic.
//!
//! # Debug mode and `tracing`
//!
//! `LOOP_DEBUG=1` in the environment turns debug mode on for the loops [`DefaultLoopPolicy`]
//! makes on a backend (asyncio's `PYTHONASYNCIODEBUG`; see [`DEBUG_ENV_VAR`] for the values).
//! The `tracing` feature (off by default) makes the default exception handler's reports
//! `tracing` events when a subscriber is in place, runs each task poll in a span with the
//! task's id and name, and says which backend each loop runs on and why (a DEBUG event of
//! target `loop_policy`; `Auto`'s fallback reason is a WARN event).
//!
//! # Which loop a thread gets
//!
//! [`DefaultLoopPolicy`] is asyncio's default policy: one loop per thread, made on first use on
//! the main thread only. [`get_event_loop`], [`set_event_loop`] and [`new_event_loop`] use the
//! global policy ([`get_event_loop_policy`], [`set_event_loop_policy`]). `cargo test` runs tests
//! on worker threads, which get no loop made for them: use [`run`], a [`Runner`] or
//! [`new_event_loop`] there.
//!
//! # Looking inside a running loop
//!
//! `LOOP_MONITOR=HOST:PORT` (or `unix:PATH`) in the environment, read when this crate makes
//! its first loop, or [`monitor::start`] in code, serves the loop monitor: `ps`, `where ID`,
//! `cancel ID` and `stats` over a text protocol, answered even while a loop is blocked (see
//! [`monitor`]).
//!
//! Platforms: Unix (Linux, macOS, the BSDs).
#![deny(missing_docs)]

mod auto;
mod backend;
mod debug_env;
mod global;
mod interrupt;
pub mod monitor;
mod per_core;
mod policy;
mod registry;
mod runner;
mod shutdown;
pub mod testing;
mod thread;

pub use backend::{Backend, ENV_VAR};
pub use debug_env::{DEBUG_ENV_VAR, debug_from_env};
pub use global::{
    get_event_loop, get_event_loop_policy, install, new_event_loop, set_event_loop,
    set_event_loop_policy,
};
pub use loop_core::LoopConfig;
pub use per_core::{PerCore, run_per_core};
pub use policy::DefaultLoopPolicy;
pub use runner::{Runner, run};
pub use shutdown::{DEFAULT_EXECUTOR_TIMEOUT, DEFAULT_TASKS_GRACE};
pub use testing::TestLoopPolicy;

/// The examples of the repository's README.md (this crate's README), compiled and run as doc
/// tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
