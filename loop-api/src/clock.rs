//! [`VirtualClock`]: the clock of a test loop, on virtual time.
//!
//! A loop made with a virtual clock reads [`VirtualClock::now`] instead of the system's
//! monotonic clock, and every timer runs on it. When no callback is ready and nothing real is
//! in flight (a socket operation, an executor job: see [`VirtualClock::hold`]), the loop jumps
//! the clock to its next timer, so `sleep(Duration::from_secs(3600))` in a test completes at
//! once while the order of events stays exactly as on a real loop. [`VirtualClock::advance`]
//! moves time by hand, and [`VirtualClock::pause_auto_advance`] stops the jumps while its
//! guard lives.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Inner {
    origin: Instant,
    offset: Cell<Duration>,
    pauses: Cell<usize>,
    holds: Arc<AtomicUsize>,
    seed: Cell<Option<u64>>,
    io_grace: Cell<Option<Duration>>,
}

/// The virtual clock of a test loop. Clones share the same clock.
#[derive(Clone)]
pub struct VirtualClock {
    inner: Rc<Inner>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualClock")
            .field("elapsed", &self.elapsed())
            .field("auto_advance", &self.auto_advance())
            .finish()
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl VirtualClock {
    /// A clock starting now (in real time), with auto-advance on.
    pub fn new() -> Self {
        VirtualClock {
            inner: Rc::new(Inner {
                origin: Instant::now(),
                offset: Cell::new(Duration::ZERO),
                pauses: Cell::new(0),
                holds: Arc::new(AtomicUsize::new(0)),
                seed: Cell::new(None),
                io_grace: Cell::new(None),
            }),
        }
    }

    /// The virtual now.
    pub fn now(&self) -> Instant {
        self.inner.origin + self.inner.offset.get()
    }

    /// Virtual time passed since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.inner.offset.get()
    }

    /// Moves the clock forward by `d` (timers now due run on the loop's next iteration).
    pub fn advance(&self, d: Duration) {
        let offset = self.inner.offset.get().saturating_add(d);
        self.inner.offset.set(offset);
    }

    /// Moves the clock to `when` if that is later than now (what auto-advance does).
    pub fn advance_to(&self, when: Instant) {
        if let Some(d) = when.checked_duration_since(self.now()) {
            self.advance(d);
        }
    }

    /// Stops auto-advance while the returned guard lives (time then moves only by
    /// [`advance`](Self::advance)).
    #[must_use = "auto-advance resumes when the guard is dropped"]
    pub fn pause_auto_advance(&self) -> AutoAdvancePause {
        self.inner.pauses.set(self.inner.pauses.get() + 1);
        AutoAdvancePause {
            clock: self.clone(),
        }
    }

    /// True unless a [`pause_auto_advance`](Self::pause_auto_advance) guard lives.
    pub fn auto_advance(&self) -> bool {
        self.inner.pauses.get() == 0
    }

    /// Something real is in flight (an executor job, say): the loop must not jump time while
    /// the returned hold lives. The hold is `Send`, to be dropped on the thread doing the work.
    pub fn hold(&self) -> ClockHold {
        self.inner.holds.fetch_add(1, Ordering::AcqRel);
        ClockHold {
            holds: self.inner.holds.clone(),
        }
    }

    /// True while some [`hold`](Self::hold) lives.
    pub fn is_held(&self) -> bool {
        self.inner.holds.load(Ordering::Acquire) > 0
    }

    /// Sets the seed that permutes the order in which the tasks ready in one iteration run
    /// (`None`: creation order, as on a real loop). The same seed gives the same order, so a
    /// test can explore interleavings reproducibly. Callbacks keep their FIFO order.
    pub fn set_seed(&self, seed: Option<u64>) {
        self.inner.seed.set(seed);
    }

    /// By default (`None`) a socket operation in flight stops the jumps until it completes:
    /// time then flows as real time, which keeps a test's real round trips in order with its
    /// timers. A server listening on the test loop itself keeps an accept in flight for good;
    /// with `Some(grace)`, in-flight socket operations stop a jump only until no I/O has
    /// happened for `grace` of real time (executor jobs still stop it for as long as they run).
    pub fn set_idle_io_grace(&self, grace: Option<Duration>) {
        self.inner.io_grace.set(grace);
    }

    /// The grace set with [`set_idle_io_grace`](Self::set_idle_io_grace).
    pub fn idle_io_grace(&self) -> Option<Duration> {
        self.inner.io_grace.get()
    }

    /// The seed set with [`set_seed`](Self::set_seed).
    pub fn seed(&self) -> Option<u64> {
        self.inner.seed.get()
    }
}

/// Keeps auto-advance paused while it lives (from [`VirtualClock::pause_auto_advance`]).
#[derive(Debug)]
pub struct AutoAdvancePause {
    clock: VirtualClock,
}

impl Drop for AutoAdvancePause {
    fn drop(&mut self) {
        let pauses = &self.clock.inner.pauses;
        pauses.set(pauses.get().saturating_sub(1));
    }
}

/// Stops a virtual clock's jumps while it lives (from [`VirtualClock::hold`]).
#[derive(Debug)]
pub struct ClockHold {
    holds: Arc<AtomicUsize>,
}

impl Drop for ClockHold {
    fn drop(&mut self) {
        self.holds.fetch_sub(1, Ordering::AcqRel);
    }
}
