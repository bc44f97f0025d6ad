//! How [`run`](crate::run) and [`Runner::close`](crate::Runner::close) end a loop gracefully
//! (asyncio.run's `_cancel_all_tasks` and `shutdown_default_executor`, with bounds).
//!
//! 1. Every pending task is cancelled, and the loop runs so they finish their cancellation (a
//!    cancelled task is dropped the next time the loop gets to it, so one iteration ends them).
//! 2. Tasks still pending after that (a task spawned by a destructor, say) get the loop for up
//!    to [`DEFAULT_TASKS_GRACE`] to finish; those still pending then are reported to the
//!    exception handler by name and end `Cancelled` when the loop closes.
//! 3. The default executor is shut down without blocking the loop, waiting up to
//!    [`DEFAULT_EXECUTOR_TIMEOUT`] for its jobs (asyncio waits as long); past that, the
//!    shutdown goes on in the background and is reported.

use std::time::{Duration, Instant};

use loop_api::{EventLoop, ExceptionContext, wait_for};

/// How long tasks left after cancellation may keep the loop before it is closed anyway.
pub const DEFAULT_TASKS_GRACE: Duration = Duration::from_secs(5);

/// How long closing waits for the default executor's jobs (asyncio's `THREAD_JOIN_TIMEOUT`).
pub const DEFAULT_EXECUTOR_TIMEOUT: Duration = Duration::from_secs(300);

/// The loop runs in slices this long while waiting for stragglers.
const SLICE: Duration = Duration::from_millis(10);

/// Bounds of a graceful shutdown.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) tasks: Duration,
    pub(crate) executor: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tasks: DEFAULT_TASKS_GRACE,
            executor: DEFAULT_EXECUTOR_TIMEOUT,
        }
    }
}

/// Runs exactly one iteration of `lp` (its errors do not matter here: the loop closes next).
fn run_once(lp: &EventLoop) {
    lp.stop();
    let _ = lp.run_forever();
}

/// Cancels what is pending, lets it settle within the limits, shuts down the default
/// executor. Leaves the loop open (the caller closes it).
pub(crate) fn graceful_shutdown(lp: &EventLoop, limits: Limits) {
    for task in lp.all_tasks() {
        task.cancel();
    }
    run_once(lp);
    let deadline = Instant::now() + limits.tasks;
    loop {
        let left = lp.all_tasks();
        if left.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            let names: Vec<String> = left.iter().map(|t| t.name()).collect();
            lp.call_exception_handler(&ExceptionContext {
                message: format!(
                    "{} task(s) still pending {:?} after the loop's tasks were cancelled; closing the loop anyway (they end Cancelled): {}",
                    names.len(),
                    limits.tasks,
                    names.join(", ")
                ),
                task: names.first().cloned(),
                ..ExceptionContext::default()
            });
            break;
        }
        let stopper = lp.clone();
        let Ok(timer) = lp.call_later(SLICE.min(deadline - now), move || stopper.stop()) else {
            break;
        };
        let _ = lp.run_forever();
        timer.cancel();
    }
    let executor = lp.shutdown_default_executor();
    let limit = limits.executor;
    let joined = lp.run_until_complete(async move { wait_for(limit, executor).await });
    let problem = match joined {
        Ok(Ok(Ok(()))) => return,
        Ok(Ok(Err(e))) => format!("shutting down the default executor failed: {e}"),
        Ok(Err(_elapsed)) => format!(
            "The executor did not finish joining its threads within {limit:?}; its jobs go on in the background"
        ),
        Err(e) => format!("could not run the loop to shut down the default executor: {e}"),
    };
    lp.call_exception_handler(&ExceptionContext {
        message: problem,
        ..ExceptionContext::default()
    });
}
