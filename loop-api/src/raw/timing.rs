//! The process-wide switch for task timing ([`crate::set_task_timing`]) and the clock the
//! task cells keep their times in (nanoseconds since a process epoch, plus one, so that 0
//! means "not read").
//!
//! Reading the clock costs about as much as a quarter of a task's whole creation, so it is
//! only read while timing is on: one relaxed load per poll (and per creation) otherwise.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// What task polls do beyond polling: [`TIMING`] and [`PUBLISH`] bits (0, the usual case,
/// costs a poll one relaxed load and a branch).
static MODE: AtomicU8 = AtomicU8::new(0);

/// Task timing is on.
pub(crate) const TIMING: u8 = 1;
/// The [`TIMING`] bit alone.
static TIMING_ON: AtomicBool = AtomicBool::new(false);
/// Publication for a monitor is on (`crate::introspect`).
pub(crate) const PUBLISH: u8 = 2;
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Turns task timing on or off for the whole process.
pub(crate) fn set(on: bool) {
    if on {
        EPOCH.get_or_init(Instant::now);
    }
    TIMING_ON.store(on, Ordering::Relaxed);
    set_bit(TIMING, on);
}

/// Turns publication on or off (`crate::introspect::Publication`).
pub(crate) fn set_publish(on: bool) {
    EPOCH.get_or_init(Instant::now);
    set_bit(PUBLISH, on);
}

fn set_bit(bit: u8, on: bool) {
    if on {
        MODE.fetch_or(bit, Ordering::Relaxed);
    } else {
        MODE.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// The [`TIMING`] and [`PUBLISH`] bits.
#[inline]
pub(crate) fn mode() -> u8 {
    MODE.load(Ordering::Relaxed)
}

/// True while task timing is on (what task creation reads: a `bool` of its own, which is
/// cheaper to test there than a bit of [`MODE`]).
#[inline]
pub(super) fn on() -> bool {
    TIMING_ON.load(Ordering::Relaxed)
}

/// The clock now (never 0).
#[inline(never)]
pub(crate) fn now() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// The clock now if timing is on, else 0.
#[inline]
pub(super) fn now_if_on() -> u64 {
    if on() { now() } else { 0 }
}

/// The time from `mark` (a reading of [`now`], or 0 for none) to now.
pub(super) fn since(mark: u64) -> Duration {
    if mark == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(now().saturating_sub(mark))
}
