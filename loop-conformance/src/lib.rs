//! The behaviour suite every event-loop backend must pass, as a library and a macro.
//!
//! The suite checks what `CONFORMANCE.md` asks of a loop (asyncio's documented semantics,
//! drawn from asyncio's docs and CPython's `Lib/test/test_asyncio/test_events.py`): FIFO
//! scheduling, timers that never fire early, `stop()` and `run_until_complete`, closing,
//! tasks, thread-safe calls, level-triggered readers and writers, socket operations, the
//! executor, child processes, signal handlers, and that nothing leaks a file descriptor or a
//! zombie. Platforms: Unix (the process behaviours run `sh`, `cat`, `sleep`, `yes`, `head`).
//!
//! # Running the suite for a backend
//!
//! A backend (in this workspace or a third party's) runs every behaviour with one line in
//! `tests/conformance.rs`, given a function that makes a fresh loop:
//!
//! ```
//! # mod my_backend {
//! #     pub fn new_event_loop() -> Result<loop_api::EventLoop, loop_api::LoopError> {
//! #         Err(loop_api::LoopError::NotSupported("an example".into()))
//! #     }
//! # }
//! loop_conformance::conformance_tests!(my_backend::new_event_loop);
//! # fn main() {}
//! ```
//!
//! and `loop-conformance` as a dev-dependency. The macro expands to one `#[test]` per
//! behaviour, grouped in modules by behaviour (`scheduling::call_soon_runs_in_fifo_order`,
//! `sockets::concurrent_connections_echo`, ...), so `cargo test -p my-backend timers::` runs
//! one group. The factory is a plain `fn() -> Result<EventLoop, LoopError>`; it is called
//! once per test, on the test's own thread (an [`EventLoop`] is `!Send`).
//!
//! A backend that cannot do something yet skips it by name, with its reason (printed when
//! the test runs; a generated test checks that every skipped name exists):
//!
//! ```
//! # mod my_backend {
//! #     pub fn new_event_loop() -> Result<loop_api::EventLoop, loop_api::LoopError> {
//! #         Err(loop_api::LoopError::NotSupported("an example".into()))
//! #     }
//! # }
//! loop_conformance::conformance_tests!(my_backend::new_event_loop, skip: {
//!     "sockets::cancelled_sock_sendall_keeps_stream_consistent": "cancel is not wired up yet",
//! });
//! # fn main() {}
//! ```
//!
//! A custom harness can instead walk [`BEHAVIOURS`] and call [`run`] for each.
//!
//! # How a test runs
//!
//! [`run`] calls the behaviour on a fresh thread named after it and waits with a watchdog
//! ([`DEFAULT_TIMEOUT`], or `LOOP_CONFORMANCE_TIMEOUT_SECS`): a backend that hangs fails the
//! test with a clear message instead of hanging CI, and a panic in the behaviour fails the
//! test with the panic's message. Tests never assert an upper bound on a duration.
//!
//! Behaviours that count the process's open file descriptors ([`Isolation::Exclusive`]) run
//! alone: every test holds a process-wide lock, shared for normal tests and exclusive for
//! those. Tests of your own in the same test binary that open descriptors can take the same
//! lock with [`shared_lock`].
#![deny(missing_docs)]

pub mod executor;
pub mod fds;
pub mod files;
pub mod io_traits;
pub mod lifecycle;
pub mod processes;
pub mod protocols;
pub mod readers;
pub mod registered;
pub mod scheduler;
pub mod scheduling;
pub mod signals;
pub mod sigpipe;
pub mod sockets;
pub mod stats;
pub mod streams;
pub mod sync;
pub mod sync_queues;
pub mod tasks;
pub mod threads;
pub mod timers;
pub mod tls;
pub mod transfers;
pub mod util;

mod list;
mod runner;

pub use loop_api::{EventLoop, LoopError};
pub use runner::{DEFAULT_TIMEOUT, check_skip_list, find, run, run_or_skip, shared_lock, timeout};

/// What the suite is given to make loops: a plain function that makes a fresh loop.
pub type Factory = fn() -> Result<EventLoop, LoopError>;

/// One behaviour's test body: makes its loops with the factory, panics on a violation.
pub type Body = fn(Factory);

/// Whether a behaviour may run beside others in the same process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Runs in parallel with other shared behaviours.
    Shared,
    /// Runs alone (it counts the process's open file descriptors, changes its limits, or
    /// changes its signal dispositions).
    Exclusive,
}

/// One behaviour of the suite.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// The module it belongs to (`"timers"`, `"sockets"`, ...).
    pub module: &'static str,
    /// Its name inside the module.
    pub name: &'static str,
    /// The test body.
    pub body: Body,
    /// Whether it must run alone.
    pub isolation: Isolation,
}

impl Behaviour {
    /// `module::name`, as used in skip lists and thread names.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.module, self.name)
    }
}

/// Every behaviour of the suite, in the order of the README.
pub const BEHAVIOURS: &[Behaviour] = &crate::__behaviour_list!(table);

/// Expands to one `#[test]` per behaviour of the suite, run against `factory`.
///
/// `factory` is a path to (or expression giving) a `fn() -> Result<EventLoop, LoopError>`.
/// An optional `skip: { "module::name": "reason", ... }` skips behaviours by name, printing
/// the reason; a generated test `conformance_skip_list_is_valid` fails on unknown names.
///
/// ```
/// fn new_event_loop() -> Result<loop_api::EventLoop, loop_api::LoopError> {
///     Err(loop_api::LoopError::NotSupported("an example".into()))
/// }
/// loop_conformance::conformance_tests!(new_event_loop);
/// # fn main() {}
/// ```
///
/// An optional `skip_all_if: f`, before `skip`, with `f` a `fn() -> Option<String>`, skips
/// every behaviour (printing the reason) in a run where `f` gives a reason: for a backend the
/// user turned off, as `LOOP_URING=off` turns off io_uring.
///
/// ```
/// # fn new_event_loop() -> Result<loop_api::EventLoop, loop_api::LoopError> {
/// #     Err(loop_api::LoopError::NotSupported("an example".into()))
/// # }
/// fn turned_off() -> Option<String> {
///     std::env::var_os("MY_BACKEND_OFF").map(|_| "MY_BACKEND_OFF is set".to_string())
/// }
/// loop_conformance::conformance_tests!(new_event_loop, skip_all_if: turned_off, skip: {
///     "sockets::cancelled_sock_sendall_keeps_stream_consistent": "cancel is not wired up yet",
/// });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!($factory, skip: {});
    };
    ($factory:expr, skip_all_if: $skip_all:expr $(,)?) => {
        $crate::conformance_tests!($factory, skip_all_if: $skip_all, skip: {});
    };
    ($factory:expr, skip: { $($skip:literal : $reason:literal),* $(,)? } $(,)?) => {
        $crate::conformance_tests!($factory, skip_all_if: || None, skip: { $($skip: $reason),* });
    };
    (
        $factory:expr,
        skip_all_if: $skip_all:expr,
        skip: { $($skip:literal : $reason:literal),* $(,)? } $(,)?
    ) => {
        const __LOOP_CONFORMANCE_FACTORY: $crate::Factory = $factory;
        const __LOOP_CONFORMANCE_SKIP: &[(&str, &str)] = &[$(($skip, $reason)),*];
        const __LOOP_CONFORMANCE_SKIP_ALL: fn() -> Option<String> = $skip_all;

        #[test]
        fn conformance_skip_list_is_valid() {
            $crate::check_skip_list(__LOOP_CONFORMANCE_SKIP);
        }

        $crate::__behaviour_list! { tests }
    };
}

/// Turns the list of behaviours into a table or into tests (internal).
#[doc(hidden)]
#[macro_export]
macro_rules! __behaviour_expand {
    (table $( $module:ident { $( $name:ident : $iso:ident ),* $(,)? } )*) => {
        [ $( $( $crate::Behaviour {
            module: stringify!($module),
            name: stringify!($name),
            body: $crate::$module::$name,
            isolation: $crate::Isolation::$iso,
        }, )* )* ]
    };
    (tests $( $module:ident { $( $name:ident : $iso:ident ),* $(,)? } )*) => {
        $(
            #[doc = concat!("The `", stringify!($module), "` behaviours of the conformance suite.")]
            mod $module {
                $(
                    #[test]
                    fn $name() {
                        if let Some(reason) = (super::__LOOP_CONFORMANCE_SKIP_ALL)() {
                            eprintln!(
                                "{}::{}: skipped on this backend: {reason}",
                                stringify!($module),
                                stringify!($name),
                            );
                            return;
                        }
                        $crate::run_or_skip(
                            super::__LOOP_CONFORMANCE_FACTORY,
                            &$crate::Behaviour {
                                module: stringify!($module),
                                name: stringify!($name),
                                body: $crate::$module::$name,
                                isolation: $crate::Isolation::$iso,
                            },
                            super::__LOOP_CONFORMANCE_SKIP,
                        );
                    }
                )*
            }
        )*
    };
}
