//! [`run`] (asyncio's `asyncio.run`) and [`Runner`] (asyncio's `Runner`, Python 3.11+).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use loop_api::{EventLoop, LoopError, LoopPolicy, get_running_loop};

use crate::global::get_event_loop_policy;
use crate::interrupt;
use crate::shutdown::{Limits, graceful_shutdown};

/// Runs `fut` to completion on a new loop and closes the loop (asyncio's `asyncio.run`).
///
/// The loop comes from the global policy ([`get_event_loop_policy`]) and is this thread's
/// current loop while `fut` runs, so `get_event_loop()` inside finds it. Afterwards the loop
/// is shut down gracefully ([`Runner::close`]): the tasks still pending are cancelled and
/// finish their cancellation in the loop, stragglers get a bounded time and are reported,
/// the default executor is shut down (its jobs awaited without blocking the loop), and the
/// loop is closed. The thread is left with no current loop, as asyncio leaves it.
///
/// On the main thread, Ctrl-C cancels `fut` and `run` returns [`LoopError::Interrupted`]; a
/// second Ctrl-C ends the process, as with `asyncio.run` (see [`Runner::run`]).
///
/// Works on any thread, so tests can use it directly.
///
/// ```
/// let answer = loop_policy::run(async {
///     loop_api::sleep(std::time::Duration::from_millis(1)).await;
///     42
/// })
/// .unwrap();
/// assert_eq!(answer, 42);
/// ```
///
/// # Errors
/// [`LoopError::AnotherLoopRunning`] when called from inside a running loop (nothing is run);
/// the error of making the loop; what `run_until_complete` reports (`Panicked`, ...).
#[track_caller]
pub fn run<F>(fut: F) -> Result<F::Output, LoopError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let mut runner = Runner::new();
    let out = runner.run(fut);
    let closed = runner.close();
    let out = out?;
    closed?;
    Ok(out)
}

/// A loop factory for a [`Runner`]; it runs on the runner's thread, so needs no `Send`.
type LocalLoopFactory = Box<dyn Fn() -> Result<EventLoop, LoopError>>;

/// Runs several futures, one after another, on the same loop, and closes it at the end
/// (asyncio's `Runner`).
///
/// The loop is made on first use: by [`Runner::new`] from the global policy (and made this
/// thread's current loop until [`close`](Runner::close)); by [`Runner::with_factory`] from the
/// factory (not made current, as in asyncio). Dropping the runner closes it.
///
/// ```
/// use loop_policy::{Backend, Runner};
///
/// let mut runner = Runner::with_factory(|| Backend::Mio.new_event_loop());
/// let a = runner.run(async { 1 }).unwrap();
/// let b = runner.run(async { 2 }).unwrap();
/// assert_eq!(a + b, 3);
/// let lp = runner.get_loop().unwrap();
/// runner.close().unwrap();
/// assert!(lp.is_closed());
/// ```
pub struct Runner {
    factory: Option<LocalLoopFactory>,
    /// The policy whose `new_event_loop` makes the loop when there is no factory (`None`:
    /// the global policy at that time).
    policy: Option<Arc<dyn LoopPolicy>>,
    debug: Option<bool>,
    limits: Limits,
    state: State,
}

enum State {
    /// No loop yet.
    Fresh,
    /// The loop, and the policy it was made current in (`None` for a factory's loop).
    Ready {
        lp: EventLoop,
        current_in: Option<Arc<dyn LoopPolicy>>,
    },
    /// Closed: running again is [`LoopError::Closed`].
    Closed,
}

impl Runner {
    /// A runner whose loop comes from the global policy's `new_event_loop()`.
    pub fn new() -> Self {
        Runner {
            factory: None,
            policy: None,
            debug: None,
            limits: Limits::default(),
            state: State::Fresh,
        }
    }

    /// A runner whose loop comes from `factory` (asyncio's `loop_factory`).
    pub fn with_factory(factory: impl Fn() -> Result<EventLoop, LoopError> + 'static) -> Self {
        Runner {
            factory: Some(Box::new(factory)),
            policy: None,
            debug: None,
            limits: Limits::default(),
            state: State::Fresh,
        }
    }

    /// A runner whose loop comes from `policy` (made current in it), as [`Runner::new`] does
    /// with the global policy.
    pub(crate) fn with_policy(policy: Arc<dyn LoopPolicy>) -> Self {
        Runner {
            factory: None,
            policy: Some(policy),
            debug: None,
            limits: Limits::default(),
            state: State::Fresh,
        }
    }

    /// Sets the loop's debug mode when it is made (asyncio's `Runner(debug=...)`).
    #[must_use]
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// How long [`close`](Runner::close) lets tasks that are still pending after the
    /// cancellation run before it reports them and closes the loop anyway
    /// ([`DEFAULT_TASKS_GRACE`](crate::DEFAULT_TASKS_GRACE) by default).
    #[must_use]
    pub fn shutdown_timeout(mut self, limit: Duration) -> Self {
        self.limits.tasks = limit;
        self
    }

    /// How long [`close`](Runner::close) waits for the default executor's jobs
    /// ([`DEFAULT_EXECUTOR_TIMEOUT`](crate::DEFAULT_EXECUTOR_TIMEOUT), asyncio's 300 s, by
    /// default).
    #[must_use]
    pub fn executor_shutdown_timeout(mut self, limit: Duration) -> Self {
        self.limits.executor = limit;
        self
    }

    /// The runner's loop, made now if it was not yet.
    ///
    /// # Errors
    /// [`LoopError::Closed`] after [`close`](Runner::close); the error of making the loop.
    pub fn get_loop(&mut self) -> Result<EventLoop, LoopError> {
        match &self.state {
            State::Ready { lp, .. } => return Ok(lp.clone()),
            State::Closed => return Err(LoopError::Closed),
            State::Fresh => {}
        }
        let (lp, current_in) = match &self.factory {
            Some(factory) => (factory()?, None),
            None => {
                let policy = self.policy.clone().unwrap_or_else(get_event_loop_policy);
                let lp = policy.new_event_loop()?;
                policy.set_event_loop(Some(lp.clone()));
                (lp, Some(policy))
            }
        };
        if let Some(on) = self.debug {
            lp.set_debug(on);
        }
        self.state = State::Ready {
            lp: lp.clone(),
            current_in,
        };
        Ok(lp)
    }

    /// Runs `fut` to completion on the runner's loop and returns its output. Can be called
    /// again: tasks left over from one call go on running in the next.
    ///
    /// On the main thread, while SIGINT has its default disposition, Ctrl-C cancels `fut`
    /// (dropping it) and the run returns [`LoopError::Interrupted`]; a second Ctrl-C ends the
    /// process (asyncio.run's behaviour). A SIGINT handler of the program's own is left alone.
    ///
    /// # Errors
    /// [`LoopError::AnotherLoopRunning`] from inside a running loop; [`LoopError::Closed`]
    /// after [`close`](Runner::close); the error of making the loop; what `run_until_complete`
    /// reports; [`LoopError::Interrupted`] after Ctrl-C.
    #[track_caller]
    pub fn run<F>(&mut self, fut: F) -> Result<F::Output, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if get_running_loop().is_ok() {
            return Err(LoopError::AnotherLoopRunning);
        }
        let lp = self.get_loop()?;
        let Some(sigint) = interrupt::install(&lp) else {
            return lp.run_until_complete(fut);
        };
        let out = lp.run_until_complete(sigint.wrap(fut));
        drop(sigint);
        out?.ok_or(LoopError::Interrupted)
    }

    /// Closes the runner gracefully: cancels the tasks still pending and runs the loop so they
    /// finish their cancellation; lets tasks left after that (spawned by a destructor, say)
    /// run up to [`shutdown_timeout`](Runner::shutdown_timeout), then reports them to the
    /// exception handler by name; shuts down the default executor, waiting up to
    /// [`executor_shutdown_timeout`](Runner::executor_shutdown_timeout) without blocking the
    /// loop; unsets the loop as the thread's current loop and closes it (tasks still
    /// unfinished end `Cancelled`). Idempotent.
    ///
    /// # Errors
    /// [`LoopError::CloseWhileRunning`] when the loop is running (the runner stays open).
    pub fn close(&mut self) -> Result<(), LoopError> {
        if let State::Ready { lp, .. } = &self.state
            && lp.is_running()
        {
            return Err(LoopError::CloseWhileRunning);
        }
        let State::Ready { lp, current_in } = std::mem::replace(&mut self.state, State::Closed)
        else {
            return Ok(());
        };
        if !lp.is_closed() {
            graceful_shutdown(&lp, self.limits);
        }
        if let Some(policy) = current_in {
            policy.set_event_loop(None);
        }
        lp.close()
    }
}

impl Default for Runner {
    /// The same as [`Runner::new`].
    fn default() -> Self {
        Runner::new()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // A drop cannot report an error; close() only fails on a running loop, which then
        // stays open and is dropped with its last handle.
        let _ = self.close();
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Fresh => "fresh",
            State::Ready { .. } => "ready",
            State::Closed => "closed",
        };
        f.debug_struct("Runner")
            .field("state", &state)
            .field("factory", &self.factory.is_some())
            .field("debug", &self.debug)
            .finish()
    }
}
