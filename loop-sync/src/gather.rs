//! Awaiting several tasks: [`gather`], [`gather_settled`], [`as_completed`], and [`shield`].
//!
//! The tasks are polled through `futures-util`'s `FuturesUnordered`, so a task that finishes
//! costs one poll, not a pass over all of them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::stream::FuturesUnordered;
use loop_api::{Task, TaskError};

/// A task with its place in the caller's list.
struct Indexed<T> {
    index: usize,
    task: Task<T>,
}

impl<T> Future for Indexed<T> {
    type Output = (usize, Result<T, TaskError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.task).poll(cx).map(|out| (index, out))
    }
}

fn unordered<T>(tasks: Vec<Task<T>>) -> FuturesUnordered<Indexed<T>> {
    tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| Indexed { index, task })
        .collect()
}

/// Cancels every task of `pending` that is not done.
fn cancel_all<T>(pending: &FuturesUnordered<Indexed<T>>) {
    for t in pending.iter() {
        t.task.cancel();
    }
}

/// Waits for every task and gives their outputs in the order given (asyncio's `gather`).
///
/// The first failure (a task cancelled or panicked) is returned at once; the other tasks keep
/// running, as asyncio's default. Dropping the future before it finished (cancelling it)
/// cancels every task that is not done.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # let lp2 = lp.clone();
/// # lp.run_until_complete(async move {
/// let tasks = (1..=3)
///     .map(|i| lp2.create_task(async move { i * 10 }).unwrap())
///     .collect();
/// assert_eq!(loop_sync::gather(tasks).await, Ok(vec![10, 20, 30]));
/// # }).unwrap();
/// ```
pub fn gather<T: 'static>(tasks: Vec<Task<T>>) -> Gather<T> {
    let mut results = Vec::with_capacity(tasks.len());
    results.resize_with(tasks.len(), || None);
    Gather {
        pending: unordered(tasks),
        results,
        finished: false,
    }
}

/// The future of [`gather`].
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<T> {
    pending: FuturesUnordered<Indexed<T>>,
    results: Vec<Option<T>>,
    finished: bool,
}

// The outputs are never pinned (they are moved out by value).
impl<T> Unpin for Gather<T> {}

impl<T> Future for Gather<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.pending).poll_next(cx) {
                Poll::Ready(Some((i, Ok(v)))) => this.results[i] = Some(v),
                Poll::Ready(Some((_, Err(e)))) => {
                    // The others keep running: let go of them without cancelling.
                    this.pending = FuturesUnordered::new();
                    this.finished = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let results = std::mem::take(&mut this.results);
                    return Poll::Ready(Ok(results.into_iter().flatten().collect()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T> Drop for Gather<T> {
    fn drop(&mut self) {
        if !self.finished {
            cancel_all(&self.pending);
        }
    }
}

impl<T> fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("pending", &self.pending.len())
            .field("finished", &self.finished)
            .finish()
    }
}

/// Waits for every task and gives every outcome in the order given, failures included
/// (asyncio's `gather(..., return_exceptions=True)`).
///
/// Dropping the future before it finished (cancelling it) cancels every task that is not done.
pub fn gather_settled<T: 'static>(tasks: Vec<Task<T>>) -> GatherSettled<T> {
    let mut results = Vec::with_capacity(tasks.len());
    results.resize_with(tasks.len(), || None);
    GatherSettled {
        pending: unordered(tasks),
        results,
    }
}

/// The future of [`gather_settled`].
#[must_use = "futures do nothing unless awaited"]
pub struct GatherSettled<T> {
    pending: FuturesUnordered<Indexed<T>>,
    results: Vec<Option<Result<T, TaskError>>>,
}

// The outputs are never pinned (they are moved out by value).
impl<T> Unpin for GatherSettled<T> {}

impl<T> Future for GatherSettled<T> {
    type Output = Vec<Result<T, TaskError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.pending).poll_next(cx) {
                Poll::Ready(Some((i, out))) => this.results[i] = Some(out),
                Poll::Ready(None) => {
                    let results = std::mem::take(&mut this.results);
                    return Poll::Ready(results.into_iter().flatten().collect());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T> Drop for GatherSettled<T> {
    fn drop(&mut self) {
        cancel_all(&self.pending);
    }
}

impl<T> fmt::Debug for GatherSettled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherSettled")
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// The outcomes of the tasks in the order they finish, as a stream (asyncio's
/// `as_completed`, read with `futures_util::StreamExt::next`).
///
/// Dropping the stream does not cancel the tasks not yet finished (asyncio's does not
/// either); they run on.
pub fn as_completed<T: 'static>(tasks: Vec<Task<T>>) -> AsCompleted<T> {
    AsCompleted {
        pending: unordered(tasks),
    }
}

/// The stream of [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    pending: FuturesUnordered<Indexed<T>>,
}

impl<T> AsCompleted<T> {
    /// How many tasks have not been yielded yet.
    pub fn remaining(&self) -> usize {
        self.pending.len()
    }
}

impl<T> Stream for AsCompleted<T> {
    type Item = Result<T, TaskError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.pending)
            .poll_next(cx)
            .map(|o| o.map(|(_, out)| out))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.pending.len(), Some(self.pending.len()))
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.pending.len())
            .finish()
    }
}

/// Awaits `task` without ever cancelling it (asyncio's `shield`): dropping this future (say,
/// inside a [`gather`] or a timeout that gave up) leaves the task running. A `Task` awaited
/// directly is not cancelled by dropping it either; `shield` says so where it matters, and
/// lets a shielded task be handed where a future is expected.
pub fn shield<T>(task: Task<T>) -> Shield<T> {
    Shield { task }
}

/// The future of [`shield`].
#[must_use = "futures do nothing unless awaited"]
pub struct Shield<T> {
    task: Task<T>,
}

impl<T> Shield<T> {
    /// The shielded task (to cancel it on purpose, or check `done`).
    pub fn task(&self) -> &Task<T> {
        &self.task
    }
}

impl<T> Future for Shield<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.task).poll(cx)
    }
}

impl<T> fmt::Debug for Shield<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield").field("task", &self.task).finish()
    }
}
