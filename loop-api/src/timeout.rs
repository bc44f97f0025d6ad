//! [`wait_for`]: a future with a deadline (asyncio's `wait_for` / `timeout`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::running::{Sleep, sleep};

/// The deadline of [`wait_for`] passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(pub Duration);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.0)
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `fut` for at most `limit` on the running loop's clock; if the time runs out first,
/// `fut` is dropped (cancelled) and the result is [`Elapsed`] (asyncio's `wait_for`).
///
/// # Panics
/// As [`sleep`]: when polled outside a running loop.
pub fn wait_for<F: Future>(limit: Duration, fut: F) -> WaitFor<F> {
    WaitFor {
        fut: Box::pin(fut),
        timer: sleep(limit),
        limit,
    }
}

/// The future of [`wait_for`].
pub struct WaitFor<F: Future> {
    fut: Pin<Box<F>>,
    timer: Sleep,
    limit: Duration,
}

impl<F: Future> fmt::Debug for WaitFor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitFor")
            .field("limit", &self.limit)
            .finish()
    }
}

impl<F: Future> Future for WaitFor<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        let limit = self.limit;
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(limit))),
            Poll::Pending => {
                crate::introspect::awaiting("wait_for");
                Poll::Pending
            }
        }
    }
}
