//! [`LoopHandle`]: the `Send + Sync` way other threads reach a loop.

use std::fmt;
use std::sync::Arc;

use crate::error::LoopError;

/// What a loop offers other threads. Loop implementations implement it on their shared state.
pub trait ThreadSafeScheduler: Send + Sync {
    /// Schedules `f` on the loop's thread and wakes the loop if it is blocked waiting for I/O.
    ///
    /// # Errors
    /// [`LoopError::Closed`] once the loop is closed.
    fn call_soon_threadsafe(&self, f: Box<dyn FnOnce() + Send + 'static>) -> Result<(), LoopError>;
    /// Asks the loop to stop after its current iteration (and wakes it).
    fn stop(&self);
    /// True once the loop is closed.
    fn is_closed(&self) -> bool;
}

/// A thread-safe handle to a loop: the only way other threads touch it.
#[derive(Clone)]
pub struct LoopHandle {
    inner: Arc<dyn ThreadSafeScheduler>,
}

impl LoopHandle {
    /// Wraps a loop implementation's thread-safe side.
    pub fn new(inner: Arc<dyn ThreadSafeScheduler>) -> Self {
        LoopHandle { inner }
    }

    /// Schedules `f` to run on the loop's thread (asyncio's `call_soon_threadsafe`), waking the
    /// loop if it is blocked. On the loop's own thread it keeps FIFO order with `call_soon`.
    ///
    /// # Errors
    /// [`LoopError::Closed`] once the loop is closed.
    pub fn call_soon_threadsafe(&self, f: impl FnOnce() + Send + 'static) -> Result<(), LoopError> {
        self.inner.call_soon_threadsafe(Box::new(f))
    }

    /// Stops the loop after its current iteration, from any thread.
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// True once the loop is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("closed", &self.inner.is_closed())
            .finish()
    }
}
