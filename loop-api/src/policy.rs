//! [`LoopPolicy`]: which loop a thread gets (asyncio's event loop policy).

use crate::error::LoopError;
use crate::event_loop::EventLoop;

/// Decides which loop `get_event_loop()` gives each thread (asyncio's
/// `AbstractEventLoopPolicy`). `loop-policy` provides the default (per-thread loops, made on
/// first use on the main thread only) and a virtual-time test policy.
pub trait LoopPolicy: Send + Sync {
    /// The current thread's loop.
    ///
    /// # Errors
    /// `NoCurrentLoop` naming the thread when it has none and the policy will not make one.
    fn get_event_loop(&self) -> Result<EventLoop, LoopError>;
    /// Sets (or with `None`, clears) the current thread's loop.
    fn set_event_loop(&self, lp: Option<EventLoop>);
    /// Makes a new loop (not set as the current one).
    ///
    /// # Errors
    /// `Unavailable` when the policy's backend cannot run here, or an I/O error.
    fn new_event_loop(&self) -> Result<EventLoop, LoopError>;
}
