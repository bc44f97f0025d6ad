//! [`run`] (asyncio's `asyncio.run`) and [`Runner`] (asyncio's `Runner`, Python 3.11+).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use loop_api::{EventLoop, LoopError, LoopPolicy, get_running_loop};

use crate::global::get_event_loop_policy;

/// Runs `fut` to completion on a new loop and closes the loop (asyncio's `asyncio.run`).
///
/// The loop comes from the global policy ([`get_event_loop_policy`]) and is this thread's
/// current loop while `fut` runs, so `get_event_loop()` inside finds it. Afterwards the loop
/// runs one more iteration, so that work cancelled at the end (a task whose `cancel()` was just
/// called) finishes in the loop, and is then closed: tasks still unfinished end `Cancelled`
/// (their futures are dropped), pending callbacks are dropped, the executor is joined. The
/// thread is left with no current loop, as asyncio leaves it.
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
    debug: Option<bool>,
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
            debug: None,
            state: State::Fresh,
        }
    }

    /// A runner whose loop comes from `factory` (asyncio's `loop_factory`).
    pub fn with_factory(factory: impl Fn() -> Result<EventLoop, LoopError> + 'static) -> Self {
        Runner {
            factory: Some(Box::new(factory)),
            debug: None,
            state: State::Fresh,
        }
    }

    /// Sets the loop's debug mode when it is made (asyncio's `Runner(debug=...)`).
    #[must_use]
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
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
                let policy = get_event_loop_policy();
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
    /// # Errors
    /// [`LoopError::AnotherLoopRunning`] from inside a running loop; [`LoopError::Closed`]
    /// after [`close`](Runner::close); the error of making the loop; what `run_until_complete`
    /// reports.
    pub fn run<F>(&mut self, fut: F) -> Result<F::Output, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if get_running_loop().is_ok() {
            return Err(LoopError::AnotherLoopRunning);
        }
        self.get_loop()?.run_until_complete(fut)
    }

    /// Closes the runner: runs the loop one more iteration (so just-cancelled work settles),
    /// unsets it as the thread's current loop, and closes it (unfinished tasks end
    /// `Cancelled`). Idempotent.
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
            // As asyncio.run: cancel the tasks still pending and let them finish their
            // cancellation inside the running loop (a cancelled task is dropped the next time
            // the loop gets to it, so one iteration is enough; what is left after it ends
            // `Cancelled` at close). Its errors do not matter: the loop is closed next.
            for task in lp.all_tasks() {
                task.cancel();
            }
            lp.stop();
            let _ = lp.run_forever();
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
