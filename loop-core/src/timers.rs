//! The timer heap: earliest deadline first, insertion order among equal deadlines, never early.
//!
//! Heap entries are 16 bytes (deadline in nanoseconds from the loop's epoch, a sequence number
//! for the insertion order, a slot in a table holding the handles), so sifting moves little.
//! Cancelling a timer (through its [`TimerHandle`](loop_api::TimerHandle)) empties its slot at
//! once, dropping the loop's reference to the handle; its entry stays in the heap until popped
//! or purged. A purge runs when cancelled entries are many and more than half of the heap
//! (asyncio's rule), so schedule/cancel churn cannot grow the heap without bound; when every
//! entry is cancelled, the purge just empties the heap.
//!
//! Storage sized by a peak is given back: when the heap or the slot table has more than four
//! times the room its live timers need (and more than [`MIN_STORAGE`] entries), the next
//! iteration compacts them (cancelled entries out, live slots renumbered from 0, capacities cut
//! to twice what is live). A `TimerHandle` keeps the key of its timer's first slot, so a
//! moved slot is found through `moved` (by its generation) when that handle cancels.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use loop_api::{Handle, TimerCancelled};

use crate::shared::Ready;

/// Below this many cancelled timers, purging is not worth it.
const MIN_CANCELLED_TO_PURGE: usize = 100;

/// Timer storage of at most this many entries is never compacted (not worth reallocating).
const MIN_STORAGE: usize = 256;

/// The room compaction leaves for `live` timers: twice that, at least [`MIN_STORAGE`].
fn room_for(live: usize) -> usize {
    live.saturating_mul(2).max(MIN_STORAGE)
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Nanoseconds after the epoch (0: at or before it; instants that early are all due and
    /// keep only their insertion order).
    when: u64,
    /// Insertion order (renumbered before it would wrap).
    seq: u32,
    slot: u32,
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed, so the std max-heap pops the earliest deadline (then the lowest sequence).
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (other.when, other.seq).cmp(&(self.when, self.seq))
    }
}

/// A timer's handle, while its entry is in the heap. `generation` is new (from one counter for
/// all slots) each time the slot is taken, so the key of a timer that left the heap never
/// matches a later one (until the counter wraps, after 2^32 timers).
struct Slot {
    handle: Option<Handle>,
    generation: u32,
    /// Compaction moved this timer here: `moved` maps its generation to this slot.
    relocated: bool,
}

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Entries in the heap whose timer was cancelled through its `TimerHandle`.
    cancelled: usize,
    seq: u32,
    /// The next slot generation.
    generation: u32,
    /// Generation -> slot, for the timers compaction moved away from the slot their key names.
    moved: HashMap<u32, u32>,
}

impl Inner {
    /// Frees `slot` (its entry left the heap) and gives its handle, if not cancelled.
    fn release(&mut self, slot: u32) -> Option<Handle> {
        let s = &mut self.slots[slot as usize];
        let handle = s.handle.take();
        if s.relocated {
            s.relocated = false;
            self.moved.remove(&s.generation);
        }
        self.free.push(slot);
        if handle.is_none() {
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        handle
    }

    /// Renumbers the entries 0.. in their order (the sequence counter is about to wrap).
    fn renumber(&mut self) {
        let mut entries = std::mem::take(&mut self.heap).into_sorted_vec();
        // Sorted by the reversed order: latest first.
        entries.reverse();
        for (i, e) in entries.iter_mut().enumerate() {
            e.seq = i as u32;
        }
        self.seq = entries.len() as u32;
        self.heap = BinaryHeap::from(entries);
    }

    /// The slot of the timer `key` names, following a move by compaction.
    fn slot_of(&self, key: u64) -> Option<usize> {
        let slot = key as u32 as usize;
        let generation = (key >> 32) as u32;
        match self.slots.get(slot) {
            Some(s) if s.generation == generation => Some(slot),
            _ if self.moved.is_empty() => None,
            _ => {
                let moved = *self.moved.get(&generation)? as usize;
                (self.slots[moved].generation == generation).then_some(moved)
            }
        }
    }

    /// True when the heap or the slots have more than four times the room the live timers
    /// need (and are not small): a cheap check, made once per iteration.
    fn oversized(&self) -> bool {
        let room = self.heap.capacity().max(self.slots.capacity());
        let live = self.heap.len().saturating_sub(self.cancelled);
        room > MIN_STORAGE && room / 4 > live
    }

    /// Drops the cancelled entries and renumbers the live timers' slots from 0, in storage
    /// cut to [`room_for`] the live ones. The heap order (deadline, then sequence) is kept.
    fn compact(&mut self) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        let mut old = std::mem::take(&mut self.slots);
        entries.retain(|e| old[e.slot as usize].handle.is_some());
        let room = room_for(entries.len());
        let mut slots = Vec::with_capacity(room);
        let mut moved = HashMap::new();
        for (i, e) in entries.iter_mut().enumerate() {
            let s = &mut old[e.slot as usize];
            let relocated = s.relocated || e.slot as usize != i;
            if relocated {
                moved.insert(s.generation, i as u32);
            }
            slots.push(Slot {
                handle: s.handle.take(),
                generation: s.generation,
                relocated,
            });
            e.slot = i as u32;
        }
        entries.shrink_to(room);
        self.heap = BinaryHeap::from(entries);
        self.slots = slots;
        self.free = Vec::new();
        self.moved = moved;
        self.cancelled = 0;
    }
}

/// The loop's timers.
pub(crate) struct Timers {
    inner: RefCell<Inner>,
    /// Deadlines are kept as nanoseconds after this instant (no later than any "now" of the
    /// loop's clock: see `BaseEventLoop::with_clock`).
    epoch: Instant,
}

impl TimerCancelled for Timers {
    fn timer_cancelled(&self, key: u64) {
        let dropped = {
            let Ok(mut inner) = self.inner.try_borrow_mut() else {
                // Cancelled from a handle's destructor while the heap is being changed: the
                // entry is skipped when it comes up (its handle says cancelled).
                return;
            };
            let inner = &mut *inner;
            match inner.slot_of(key).map(|slot| &mut inner.slots[slot]) {
                Some(s) if s.handle.is_some() => {
                    inner.cancelled += 1;
                    s.handle.take()
                }
                _ => None,
            }
        };
        // Dropped outside the borrow (it is the loop's reference; the callback is gone).
        drop(dropped);
    }
}

impl Timers {
    pub(crate) fn new(epoch: Instant) -> Self {
        Timers {
            inner: RefCell::new(Inner::default()),
            epoch,
        }
    }

    /// `when` in nanoseconds after the epoch (0 for earlier instants, saturating far away).
    #[inline]
    fn to_ns(&self, when: Instant) -> u64 {
        match when.checked_duration_since(self.epoch) {
            Some(d) => d
                .as_secs()
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.subsec_nanos())),
            None => 0,
        }
    }

    /// Adds a timer due at `when`; gives its key for `timer_cancelled`.
    #[inline]
    pub(crate) fn push(&self, when: Instant, handle: Handle) -> u64 {
        let when = self.to_ns(when);
        let mut inner = self.inner.borrow_mut();
        if inner.seq == u32::MAX {
            inner.renumber();
        }
        let seq = inner.seq;
        inner.seq = seq + 1;
        let generation = inner.generation;
        inner.generation = generation.wrapping_add(1);
        let slot = match inner.free.pop() {
            Some(slot) => {
                inner.slots[slot as usize] = Slot {
                    handle: Some(handle),
                    generation,
                    relocated: false,
                };
                slot
            }
            None => {
                let slot = u32::try_from(inner.slots.len()).expect("fewer than 2^32 timers");
                inner.slots.push(Slot {
                    handle: Some(handle),
                    generation,
                    relocated: false,
                });
                slot
            }
        };
        inner.heap.push(Entry { when, seq, slot });
        u64::from(generation) << 32 | u64::from(slot)
    }

    /// Timers in the heap (live and cancelled ones not purged yet).
    pub(crate) fn len(&self) -> usize {
        self.inner.borrow().heap.len()
    }

    /// Room in the timer storage (heap, slots, free list, moved slots), in entries.
    pub(crate) fn storage_capacity(&self) -> usize {
        let inner = self.inner.borrow();
        inner.heap.capacity()
            + inner.slots.capacity()
            + inner.free.capacity()
            + inner.moved.capacity()
    }

    /// Drops cancelled entries when they are many and more than half of the heap; compacts
    /// the storage when it is mostly empty.
    pub(crate) fn purge_if_needed(&self) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        if inner.oversized() {
            inner.compact();
            return;
        }
        let cancelled = inner.cancelled;
        if cancelled < MIN_CANCELLED_TO_PURGE || cancelled * 2 <= inner.heap.len() {
            return;
        }
        if cancelled >= inner.heap.len() {
            // Every entry is cancelled: every slot is empty (generations are never reused, so
            // the slots can go).
            inner.heap.clear();
            inner.free.clear();
            inner.slots.clear();
            inner.moved.clear();
        } else {
            let slots = &mut inner.slots;
            let free = &mut inner.free;
            let moved = &mut inner.moved;
            inner.heap.retain(|e| {
                let s = &mut slots[e.slot as usize];
                if s.handle.is_some() {
                    return true;
                }
                if s.relocated {
                    s.relocated = false;
                    moved.remove(&s.generation);
                }
                free.push(e.slot);
                false
            });
        }
        inner.cancelled = 0;
    }

    /// The earliest deadline of a live timer (dropping cancelled ones on top).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut dropped = Vec::new();
        let next = {
            let mut inner = self.inner.borrow_mut();
            loop {
                let Some(&top) = inner.heap.peek() else {
                    break None;
                };
                let live = inner.slots[top.slot as usize]
                    .handle
                    .as_ref()
                    .is_some_and(Handle::pending);
                if live {
                    break Some(self.epoch + Duration::from_nanos(top.when));
                }
                inner.heap.pop();
                dropped.extend(inner.release(top.slot));
            }
        };
        drop(dropped);
        next
    }

    /// Moves every timer due at `now` to `ready`, earliest first.
    pub(crate) fn pop_due(&self, now: Instant, ready: &RefCell<VecDeque<Ready>>) {
        let now = self.to_ns(now);
        let mut inner = self.inner.borrow_mut();
        if inner.heap.peek().is_none_or(|top| top.when > now) {
            return;
        }
        let mut ready = ready.borrow_mut();
        while let Some(&top) = inner.heap.peek() {
            if top.when > now {
                break;
            }
            inner.heap.pop();
            if let Some(handle) = inner.release(top.slot) {
                // A handle cancelled without its `TimerHandle` runs nothing: queued anyway.
                ready.push_back(Ready::Callback(handle));
            }
        }
    }

    /// Takes every timer out (the loop is closing); the caller drops them.
    pub(crate) fn take_all(&self) -> Vec<Handle> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        inner.heap = BinaryHeap::new();
        inner.cancelled = 0;
        inner.free = Vec::new();
        inner.moved = HashMap::new();
        std::mem::take(&mut inner.slots)
            .into_iter()
            .filter_map(|s| s.handle)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    fn fire(t: &Timers, now: Instant) {
        let ready = RefCell::new(VecDeque::new());
        t.pop_due(now, &ready);
        for r in ready.into_inner() {
            if let Ready::Callback(h) = r {
                h.run();
            }
        }
    }

    fn timer(order: &Rc<RefCell<Vec<u32>>>, i: u32) -> Handle {
        let o = order.clone();
        Handle::new(move || o.borrow_mut().push(i))
    }

    #[test]
    fn deadline_order_then_insertion_order_with_cancels() {
        let epoch = Instant::now();
        let t = Timers::new(epoch);
        let order = Rc::new(RefCell::new(Vec::new()));
        let ms = |n| epoch + Duration::from_millis(n);
        let mut keys = Vec::new();
        for (i, at) in [(0, 5), (1, 3), (2, 5), (3, 1), (4, 3), (5, 5)] {
            let h = timer(&order, i);
            keys.push((t.push(ms(at), h.clone()), h));
        }
        // Cancel 1 and 2 the way a TimerHandle does.
        for i in [1, 2] {
            keys[i].1.cancel();
            t.timer_cancelled(keys[i].0);
        }
        assert_eq!(t.next_deadline(), Some(ms(1)));
        fire(&t, ms(4));
        assert_eq!(*order.borrow(), [3, 4]);
        fire(&t, ms(5));
        assert_eq!(*order.borrow(), [3, 4, 0, 5]);
        assert_eq!(t.len(), 0);
        // A stale key (its timer left the heap) matches nothing, even once its slot is reused.
        let h = timer(&order, 9);
        let _ = t.push(ms(9), h);
        t.timer_cancelled(keys[0].0);
        t.timer_cancelled(keys[1].0);
        assert_eq!(t.next_deadline(), Some(ms(9)));
    }

    #[test]
    fn purge_of_all_and_of_most() {
        let epoch = Instant::now();
        let t = Timers::new(epoch);
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut all = Vec::new();
        for i in 0..300 {
            let h = timer(&order, i);
            all.push((
                t.push(epoch + Duration::from_millis(u64::from(i % 7)), h.clone()),
                h,
            ));
        }
        for (k, h) in &all {
            h.cancel();
            t.timer_cancelled(*k);
        }
        t.purge_if_needed();
        assert_eq!(t.len(), 0);
        let mut kept = Vec::new();
        for i in 0..300u32 {
            let h = timer(&order, i);
            let k = t.push(epoch + Duration::from_millis(u64::from(i % 7)), h.clone());
            if i % 3 == 0 {
                kept.push(i);
            } else {
                h.cancel();
                t.timer_cancelled(k);
            }
        }
        // Stale keys of the first round do not touch the second.
        for (k, _) in &all {
            t.timer_cancelled(*k);
        }
        t.purge_if_needed();
        assert_eq!(t.len(), kept.len());
        fire(&t, epoch + Duration::from_secs(1));
        kept.sort_by_key(|i| (i % 7, *i));
        assert_eq!(*order.borrow(), kept);
    }

    #[test]
    fn mostly_cancelled_storage_is_given_back_keeping_order_and_keys() {
        let epoch = Instant::now();
        let t = Timers::new(epoch);
        let order = Rc::new(RefCell::new(Vec::new()));
        let n = 200_000u32;
        let at = |i: u32| epoch + Duration::from_millis(u64::from(i % 1000));
        let (mut kept, mut survivors, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let h = timer(&order, i);
            let k = t.push(at(i), h.clone());
            // Ten survivors spread over the slots, the very last one included.
            if i % (n / 10) == n / 10 - 1 {
                kept.push(i);
                survivors.push((k, h));
            } else {
                h.cancel();
                t.timer_cancelled(k);
                gone.push(k);
            }
        }
        assert!(t.storage_capacity() >= 2 * n as usize);
        t.purge_if_needed();
        let after = t.storage_capacity();
        assert!(
            after <= 4 * MIN_STORAGE,
            "{after} entries of timer storage kept for 10 live timers"
        );
        assert_eq!(t.len(), 10);
        // Keys of cancelled timers (their slots now hold moved survivors) touch nothing.
        for k in &gone {
            t.timer_cancelled(*k);
        }
        // A survivor's key still reaches its (moved) timer.
        let (k, h) = survivors.remove(9);
        h.cancel();
        t.timer_cancelled(k);
        assert_eq!(
            t.inner.borrow().cancelled,
            1,
            "a moved timer's cancel was lost"
        );
        kept.pop();
        // More timers after the compaction: storage grows again and the order holds.
        for i in n..n + 1000 {
            let _ = t.push(at(i), timer(&order, i));
            kept.push(i);
        }
        fire(&t, epoch + Duration::from_secs(1));
        kept.sort_by_key(|i| (i % 1000, *i));
        assert_eq!(*order.borrow(), kept);
        assert!(t.inner.borrow().moved.is_empty());
    }

    #[test]
    fn renumbering_keeps_the_order() {
        let epoch = Instant::now();
        let t = Timers::new(epoch);
        let order = Rc::new(RefCell::new(Vec::new()));
        t.inner.borrow_mut().seq = u32::MAX - 3;
        for i in 0..8 {
            let _ = t.push(epoch, timer(&order, i));
        }
        fire(&t, epoch);
        assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn never_early_and_instants_before_the_epoch() {
        let epoch = Instant::now();
        let t = Timers::new(epoch + Duration::from_secs(1));
        let order = Rc::new(RefCell::new(Vec::new()));
        let _ = t.push(epoch, timer(&order, 0));
        let late = epoch + Duration::from_secs(2);
        let _ = t.push(late, timer(&order, 1));
        fire(&t, late - Duration::from_nanos(1));
        assert_eq!(*order.borrow(), [0]);
        fire(&t, late);
        assert_eq!(*order.borrow(), [0, 1]);
    }
}
