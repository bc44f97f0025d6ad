//! The timer heap: earliest deadline first, insertion order among equal deadlines, O(1)
//! cancellation (a cancelled entry stays until popped or purged), and a purge when cancelled
//! entries are more than half the heap (asyncio's rule), so schedule/cancel churn cannot grow it
//! without bound.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use loop_api::{Handle, TimerCancelled};

use crate::shared::Ready;

/// Below this many cancelled timers, purging is not worth it.
const MIN_CANCELLED_TO_PURGE: usize = 100;

struct Entry {
    when: Instant,
    seq: u64,
    handle: Handle,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.when == other.when && self.seq == other.seq
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so the std max-heap pops the earliest deadline (then the lowest sequence).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .when
            .cmp(&self.when)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The loop's timers.
#[derive(Default)]
pub(crate) struct Timers {
    heap: RefCell<BinaryHeap<Entry>>,
    cancelled: Cell<usize>,
    seq: Cell<u64>,
}

impl TimerCancelled for Timers {
    fn timer_cancelled(&self, _when: Instant) {
        self.cancelled.set(self.cancelled.get() + 1);
    }
}

impl Timers {
    pub(crate) fn push(&self, when: Instant, handle: Handle) {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        self.heap.borrow_mut().push(Entry { when, seq, handle });
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.borrow().len()
    }

    /// Drops cancelled entries when they are many and more than half of the heap.
    pub(crate) fn purge_if_needed(&self) {
        let cancelled = self.cancelled.get();
        if cancelled < MIN_CANCELLED_TO_PURGE || cancelled * 2 <= self.len() {
            return;
        }
        let mut removed = Vec::new();
        {
            let mut heap = self.heap.borrow_mut();
            let entries = std::mem::take(&mut *heap).into_vec();
            let mut kept = Vec::with_capacity(entries.len() - cancelled.min(entries.len()));
            for e in entries {
                if e.handle.cancelled() {
                    removed.push(e);
                } else {
                    kept.push(e);
                }
            }
            *heap = BinaryHeap::from(kept);
        }
        self.cancelled.set(0);
        drop(removed);
    }

    /// The earliest deadline of a live timer (dropping cancelled ones on top).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut heap = self.heap.borrow_mut();
        while let Some(top) = heap.peek() {
            if top.handle.cancelled() {
                heap.pop();
                self.cancelled.set(self.cancelled.get().saturating_sub(1));
            } else {
                return Some(top.when);
            }
        }
        None
    }

    /// Moves every timer due at `now` to `ready`, earliest first.
    pub(crate) fn pop_due(&self, now: Instant, ready: &RefCell<VecDeque<Ready>>) {
        let mut heap = self.heap.borrow_mut();
        let mut ready = ready.borrow_mut();
        while let Some(top) = heap.peek() {
            if top.when > now {
                break;
            }
            let Some(e) = heap.pop() else { break };
            if e.handle.cancelled() {
                self.cancelled.set(self.cancelled.get().saturating_sub(1));
            } else {
                ready.push_back(Ready::Callback(e.handle));
            }
        }
    }

    /// Takes every timer out (the loop is closing); the caller drops them.
    pub(crate) fn take_all(&self) -> Vec<Handle> {
        self.cancelled.set(0);
        std::mem::take(&mut *self.heap.borrow_mut())
            .into_vec()
            .into_iter()
            .map(|e| e.handle)
            .collect()
    }
}
