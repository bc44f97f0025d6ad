//! [`LoopConfig`]: what a loop is built from besides its driver.

use std::time::Duration;

use loop_api::VirtualClock;

/// The default slow-callback threshold of debug mode (asyncio's 100 ms).
pub const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(100);

/// How a loop is set up, besides its driver: its clock and its debug settings. A test loop is
/// not another kind of loop, only another clock.
///
/// ```
/// use loop_core::LoopConfig;
///
/// let real = LoopConfig::default();
/// assert!(real.clock.is_none());
/// let test = LoopConfig::virtual_time();
/// assert!(test.clock.is_some());
/// ```
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// `None`: the system's monotonic clock. `Some`: a test loop on this virtual clock (real
    /// I/O; timers that jump ahead when the loop would otherwise wait; with a seed, the tasks
    /// ready in one iteration run in a reproducible shuffled order; see [`VirtualClock`]).
    pub clock: Option<VirtualClock>,
    /// Debug mode from the start (see `EventLoop::set_debug`).
    pub debug: bool,
    /// The slow-callback threshold of debug mode.
    pub slow_callback: Duration,
}

impl Default for LoopConfig {
    /// A loop on the system's monotonic clock, debug mode off.
    fn default() -> Self {
        LoopConfig {
            clock: None,
            debug: false,
            slow_callback: DEFAULT_SLOW_CALLBACK,
        }
    }
}

impl LoopConfig {
    /// A test loop's config: a new [`VirtualClock`].
    pub fn virtual_time() -> Self {
        Self::with_clock(VirtualClock::new())
    }

    /// A test loop's config on `clock` (a clock the test keeps, to move time by hand or to set
    /// a seed).
    pub fn with_clock(clock: VirtualClock) -> Self {
        LoopConfig {
            clock: Some(clock),
            ..LoopConfig::default()
        }
    }
}
