//! The loop's clock part: the system's monotonic clock, or the virtual clock of a test loop,
//! which jumps to the next timer when nothing is ready and nothing real is in flight, and with
//! a seed permutes the tasks ready in one iteration reproducibly.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use loop_api::VirtualClock;

use crate::shared::Ready;

/// What the next poll does.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PollPlan {
    /// Poll with this timeout; the clock does not move.
    Wait(Option<Duration>),
    /// (Virtual time.) Poll up to this long in real time, and move the clock by the real time
    /// waited.
    Flow(Duration),
    /// (Virtual time.) Poll up to `wait` in real time; if no I/O happened, jump the clock to
    /// `to`.
    JumpIfQuiet {
        /// The real time to wait for I/O.
        wait: Duration,
        /// The next timer's deadline.
        to: Instant,
    },
}

impl PollPlan {
    /// How long the poll may block (`None`: until something happens).
    pub(crate) fn timeout(self) -> Option<Duration> {
        match self {
            PollPlan::Wait(t) => t,
            PollPlan::Flow(t) | PollPlan::JumpIfQuiet { wait: t, .. } => Some(t),
        }
    }
}

/// What the plan needs to know about the loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoopState {
    /// A callback or task is ready (or a stop is pending): the poll must not block.
    pub(crate) ready: bool,
    /// The earliest timer.
    pub(crate) next_deadline: Option<Instant>,
    /// A socket (or pipe, or child) operation a future waits for is in flight.
    pub(crate) ops_in_flight: bool,
}

/// A loop's clock.
pub(crate) struct LoopClock {
    /// `None`: the system's monotonic clock.
    virtual_clock: Option<VirtualClock>,
    /// Iterations run so far (seeds the task order of a seeded test loop).
    iteration: Cell<u64>,
}

impl LoopClock {
    pub(crate) fn new(virtual_clock: Option<VirtualClock>) -> Self {
        LoopClock {
            virtual_clock,
            iteration: Cell::new(0),
        }
    }

    /// The virtual clock of a test loop.
    pub(crate) fn virtual_clock(&self) -> Option<&VirtualClock> {
        self.virtual_clock.as_ref()
    }

    /// The loop's now.
    pub(crate) fn now(&self) -> Instant {
        match &self.virtual_clock {
            Some(c) => c.now(),
            None => Instant::now(),
        }
    }

    /// How the next poll waits. On the system's clock: not at all when work is ready, else
    /// until the earliest timer (`None`: no timer, wait for I/O or a wake-up). On a virtual
    /// clock:
    /// - work ready: do not block;
    /// - a timer and nothing real in flight: jump the clock to it (auto-advance) and do not
    ///   block;
    /// - a timer, but an executor job or an operation in flight: wait for it in real time
    ///   (virtual time flows); with an idle-I/O grace, wait at most the grace and jump if no
    ///   I/O happened;
    /// - auto-advance paused: time stands still; wait for I/O or a wake-up only;
    /// - no timer: wait for I/O or a wake-up.
    pub(crate) fn plan(&self, state: LoopState) -> PollPlan {
        if state.ready {
            return PollPlan::Wait(Some(Duration::ZERO));
        }
        let Some(clock) = &self.virtual_clock else {
            let timeout = state
                .next_deadline
                .map(|when| when.saturating_duration_since(Instant::now()));
            return PollPlan::Wait(timeout);
        };
        let Some(when) = state.next_deadline else {
            return PollPlan::Wait(None);
        };
        let now = clock.now();
        if when <= now {
            return PollPlan::Wait(Some(Duration::ZERO));
        }
        if !clock.auto_advance() {
            return PollPlan::Wait(None);
        }
        if clock.is_held() {
            return PollPlan::Flow(when - now);
        }
        if state.ops_in_flight {
            return match clock.idle_io_grace() {
                Some(grace) if grace < when - now => PollPlan::JumpIfQuiet {
                    wait: grace,
                    to: when,
                },
                _ => PollPlan::Flow(when - now),
            };
        }
        clock.advance_to(when);
        PollPlan::Wait(Some(Duration::ZERO))
    }

    /// Moves a virtual clock after a poll that followed `plan`, took `waited` and was `quiet`
    /// (reported nothing).
    pub(crate) fn after_poll(&self, plan: PollPlan, waited: Duration, quiet: bool) {
        let Some(clock) = &self.virtual_clock else {
            return;
        };
        match plan {
            // Real work was in flight: virtual time flowed as real time meanwhile.
            PollPlan::Flow(limit) => clock.advance(waited.min(limit)),
            // Only a wait of the whole grace with nothing to show: one that ended early (an
            // event that woke nothing, a driver's own round) is no proof of quiet.
            PollPlan::JumpIfQuiet { wait, to } if quiet && waited >= wait => clock.advance_to(to),
            _ => {}
        }
    }

    /// On a seeded test loop, permutes the tasks in an iteration's batch (callbacks keep their
    /// places), reproducibly from the seed and the iteration number.
    pub(crate) fn shuffle_ready_tasks(&self, ready: &mut VecDeque<Ready>) {
        let Some(seed) = self.virtual_clock.as_ref().and_then(|c| c.seed()) else {
            return;
        };
        let iteration = self.iteration.get();
        self.iteration.set(iteration + 1);
        let slots: Vec<usize> = (0..ready.len())
            .filter(|&i| matches!(ready[i], Ready::Task(_)))
            .collect();
        if slots.len() < 2 {
            return;
        }
        let mut rng = SplitMix64(seed ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Fisher-Yates over the tasks' places.
        for i in (1..slots.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            ready.swap(slots[i], slots[j]);
        }
    }
}

/// A tiny, well-known PRNG (splitmix64): reproducible across platforms and versions.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
