//! Test tooling: [`TestLoopPolicy`] (every loop a test loop on virtual time), [`run_on`] and
//! the [`loop_test!`](crate::loop_test) macro (one async test body on every backend plus the
//! virtual-time loop, each its own named test).
#![doc = include_str!("../docs/testing.md")]

use std::fmt;
use std::future::Future;

use loop_api::{EventLoop, LoopError, LoopPolicy};

use crate::backend::Backend;
use crate::policy::DefaultLoopPolicy;

/// A policy whose loops are test loops: real I/O on a backend (`LOOP_BACKEND`, default
/// `auto`), timers on virtual time that jump ahead when the loop would otherwise wait
/// ([`loop_api::VirtualClock`]). Every thread gets a loop on first use (cargo runs tests on
/// worker threads), so code under test that calls `get_event_loop()`, `new_event_loop()` or
/// [`run`](crate::run) gets test loops once this policy is installed.
///
/// ```rust,standalone_crate
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// loop_policy::set_event_loop_policy(Some(Arc::new(loop_policy::TestLoopPolicy::new())));
/// let waited = loop_policy::run(async {
///     let lp = loop_api::get_running_loop().unwrap();
///     let t0 = lp.time();
///     loop_api::sleep(Duration::from_secs(3600)).await; // returns at once
///     lp.time() - t0
/// })
/// .unwrap();
/// assert!(waited >= Duration::from_secs(3600));
/// loop_policy::set_event_loop_policy(None);
/// ```
pub struct TestLoopPolicy {
    inner: DefaultLoopPolicy,
    backend: Backend,
}

impl TestLoopPolicy {
    /// Test loops on the backend `LOOP_BACKEND` names (default `auto`; a bad value falls back
    /// to `auto`, since tests should not depend on it).
    pub fn new() -> Self {
        Self::with_backend(Backend::from_env().unwrap_or(Backend::Auto))
    }

    /// Test loops on `backend`.
    pub fn with_backend(backend: Backend) -> Self {
        TestLoopPolicy {
            inner: DefaultLoopPolicy::with_factory(move || backend.new_virtual_event_loop())
                .on_any_thread(),
            backend,
        }
    }
}

impl Default for TestLoopPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TestLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestLoopPolicy")
            .field("backend", &self.backend)
            .finish()
    }
}

impl LoopPolicy for TestLoopPolicy {
    /// The current thread's test loop, made on first use on any thread.
    ///
    /// # Errors
    /// The error of making the loop (the backend unavailable, ...).
    fn get_event_loop(&self) -> Result<EventLoop, LoopError> {
        self.inner.get_event_loop()
    }

    fn set_event_loop(&self, lp: Option<EventLoop>) {
        self.inner.set_event_loop(lp);
    }

    /// A new test loop (not made current).
    ///
    /// # Errors
    /// The error of making the loop.
    fn new_event_loop(&self) -> Result<EventLoop, LoopError> {
        self.inner.new_event_loop()
    }
}

/// Where [`run_on`] runs a test body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestLoop {
    /// A real loop on this backend.
    Real(Backend),
    /// A test loop on virtual time (I/O on the `auto` backend).
    Virtual,
}

/// Runs the async test body `f` on a new loop of kind `which`, made this thread's current
/// loop while it runs, then closes it. A real backend that cannot run here is skipped with a
/// message naming the reason (the test passes: the machine, not the code, lacks it).
///
/// # Panics
/// If the loop cannot be made for another reason, or the body panics or the loop fails.
pub fn run_on<F, Fut>(which: TestLoop, f: F)
where
    F: FnOnce(EventLoop) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let made = match which {
        TestLoop::Real(b) => {
            if let Some(reason) = b.why_unavailable() {
                eprintln!("skipped on {b}: {reason}");
                return;
            }
            b.new_event_loop()
        }
        TestLoop::Virtual => Backend::Auto.new_virtual_event_loop(),
    };
    let lp = made.unwrap_or_else(|e| panic!("could not make the {which:?} loop: {e}"));
    let policy = crate::get_event_loop_policy();
    policy.set_event_loop(Some(lp.clone()));
    let out = lp.run_until_complete(f(lp.clone()));
    policy.set_event_loop(None);
    let closed = lp.close();
    if let Err(e) = out {
        panic!("the test body failed on {which:?}: {e}");
    }
    closed.unwrap_or_else(|e| panic!("closing the {which:?} loop failed: {e}"));
}

/// Runs one async test body on every backend (mio, polling, uring) and on the virtual-time
/// test loop, each as its own test named `NAME::mio`, `NAME::polling`, `NAME::uring`,
/// `NAME::virtual_time`. A backend unavailable here is skipped with its reason.
///
/// ```
/// loop_policy::loop_test!(answers, |lp| async move {
///     let t = lp.create_task(async { 6 * 7 }).unwrap();
///     assert_eq!(t.await.unwrap(), 42);
/// });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! loop_test {
    ($name:ident, $body:expr) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn mio() {
                $crate::testing::run_on(
                    $crate::testing::TestLoop::Real($crate::Backend::Mio),
                    $body,
                );
            }

            #[test]
            fn polling() {
                $crate::testing::run_on(
                    $crate::testing::TestLoop::Real($crate::Backend::Polling),
                    $body,
                );
            }

            #[test]
            fn uring() {
                $crate::testing::run_on(
                    $crate::testing::TestLoop::Real($crate::Backend::Uring),
                    $body,
                );
            }

            #[test]
            fn virtual_time() {
                $crate::testing::run_on($crate::testing::TestLoop::Virtual, $body);
            }
        }
    };
}
