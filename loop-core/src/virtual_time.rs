//! What a test loop (a `BaseEventLoop` with a [`VirtualClock`]) does differently: it reads its
//! clock, jumps it to the next timer when nothing is ready and nothing real is in flight, and
//! with a seed, permutes the tasks ready in one iteration reproducibly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use loop_api::VirtualClock;

use crate::base_loop::BaseEventLoop;
use crate::driver::Driver;
use crate::shared::Ready;

/// What a test loop's next poll does (see [`BaseEventLoop::virtual_poll_plan`]).
pub(crate) enum VirtualPoll {
    /// Poll with this timeout; the clock does not move.
    Wait(Option<Duration>),
    /// Poll up to this long in real time, and move the clock by the real time waited.
    Flow(Duration),
    /// Poll up to `wait` in real time; if no I/O happened, jump the clock to `to`.
    JumpIfQuiet {
        /// The real time to wait for I/O.
        wait: Duration,
        /// The next timer's deadline.
        to: Instant,
    },
}

impl<D: Driver> BaseEventLoop<D> {
    /// The loop's now: virtual on a test loop, else the monotonic clock.
    pub(crate) fn now(&self) -> Instant {
        match &self.clock {
            Some(c) => c.now(),
            None => Instant::now(),
        }
    }

    /// True while a socket operation a future waits for is in flight. Readers and writers
    /// (`add_reader`) do not count: they stay armed for as long as they are registered.
    fn socket_ops_in_flight(&self) -> bool {
        self.io
            .borrow()
            .as_ref()
            .is_some_and(|io| io.ops.pending_futures() > 0)
    }

    /// How a test loop polls:
    /// - work ready: do not block;
    /// - a timer and nothing real in flight: jump the clock to it (auto-advance) and do not
    ///   block;
    /// - a timer, but an executor job or a socket operation in flight: wait for it in real
    ///   time (virtual time flows); with an idle-I/O grace and only socket operations in
    ///   flight, wait at most the grace and jump if no I/O happened;
    /// - auto-advance paused: time stands still; wait for I/O or a wake-up only;
    /// - no timer: wait for I/O or a wake-up.
    pub(crate) fn virtual_poll_plan(&self, clock: &VirtualClock) -> VirtualPoll {
        if self.has_ready_work() {
            return VirtualPoll::Wait(Some(Duration::ZERO));
        }
        let Some(when) = self.timers.next_deadline() else {
            return VirtualPoll::Wait(None);
        };
        let now = clock.now();
        if when <= now {
            return VirtualPoll::Wait(Some(Duration::ZERO));
        }
        if !clock.auto_advance() {
            return VirtualPoll::Wait(None);
        }
        if clock.is_held() {
            return VirtualPoll::Flow(when - now);
        }
        if self.socket_ops_in_flight() {
            return match clock.idle_io_grace() {
                Some(grace) if grace < when - now => VirtualPoll::JumpIfQuiet {
                    wait: grace,
                    to: when,
                },
                _ => VirtualPoll::Flow(when - now),
            };
        }
        clock.advance_to(when);
        VirtualPoll::Wait(Some(Duration::ZERO))
    }

    /// Permutes the tasks in an iteration's batch (callbacks keep their places),
    /// reproducibly from `seed` and the iteration number.
    pub(crate) fn shuffle_ready_tasks(&self, ready: &mut VecDeque<Ready>, seed: u64) {
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
