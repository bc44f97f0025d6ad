//! The one waiting line every primitive of this crate is built on: a first-come, first-served
//! list of waiters with O(1) join, leave and wake, and no allocation per wait once warm.
//!
//! A waiter is a slot in a slab, linked into a doubly linked list (by slab keys, so no
//! `unsafe`). Waking it ([`WaitList::notify_one`]) unlinks it and marks it *notified*: its
//! future sees that on its next poll and takes what it was woken for (an item, the lock, a
//! permit). A future that is dropped ([`WaitList::remove`]) learns whether it had been
//! notified, so it can pass the wake-up on (asyncio's `_wake_up_next` in a `CancelledError`
//! handler).
//!
//! Wakers are handed back to the caller to wake after it has released its `RefCell` borrow
//! (a waker may run code that touches the same primitive).

use std::task::{Poll, Waker};

use slab::Slab;

/// No neighbour.
const NIL: usize = usize::MAX;

/// One waiter.
#[derive(Debug)]
struct Node<V> {
    prev: usize,
    next: usize,
    waker: Option<Waker>,
    /// Woken (and unlinked) but its future has not taken the wake-up yet.
    notified: bool,
    /// What the waker handed over with the wake-up (a queue's item), if anything.
    value: Option<V>,
}

/// A first-come, first-served line of waiters (single-threaded).
///
/// # Invariant
/// A key is in the linked list if and only if its node is not `notified`; `linked` counts them.
#[derive(Debug)]
pub(crate) struct WaitList<V = ()> {
    nodes: Slab<Node<V>>,
    head: usize,
    tail: usize,
    linked: usize,
}

impl<V> Default for WaitList<V> {
    fn default() -> Self {
        WaitList {
            nodes: Slab::new(),
            head: NIL,
            tail: NIL,
            linked: 0,
        }
    }
}

impl<V> WaitList<V> {
    /// Joins the end of the line; the key identifies this waiter from now on.
    pub(crate) fn push(&mut self, waker: &Waker) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: NIL,
            waker: Some(waker.clone()),
            notified: false,
            value: None,
        });
        if self.tail == NIL {
            self.head = key;
        } else {
            self.nodes[self.tail].next = key;
        }
        self.tail = key;
        self.linked += 1;
        key
    }

    /// True if waiter `key` was woken (its future should take what it waited for).
    pub(crate) fn is_notified(&self, key: usize) -> bool {
        self.nodes.get(key).is_some_and(|n| n.notified)
    }

    /// Keeps the newest waker of a waiter that is still waiting.
    pub(crate) fn update_waker(&mut self, key: usize, waker: &Waker) {
        if let Some(node) = self.nodes.get_mut(key) {
            match &node.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => node.waker = Some(waker.clone()),
            }
        }
    }

    /// For a future in line under `*key`: once it was woken, it leaves the line (`*key`
    /// becomes `None`) and this is `Ready`; until then its newest waker is kept and this is
    /// `Pending`. A future not in line (`None`) is `Ready` at once.
    pub(crate) fn poll_turn(&mut self, key: &mut Option<usize>, waker: &Waker) -> Poll<()> {
        let Some(k) = *key else {
            return Poll::Ready(());
        };
        if self.is_notified(k) {
            self.remove(k);
            *key = None;
            Poll::Ready(())
        } else {
            self.update_waker(k, waker);
            Poll::Pending
        }
    }

    /// Leaves the line (a future that was dropped, or that took its wake-up). True if the
    /// waiter had been notified.
    pub(crate) fn remove(&mut self, key: usize) -> bool {
        let Some(node) = self.nodes.try_remove(key) else {
            return false;
        };
        if !node.notified {
            self.unlink(&node);
        }
        node.notified
    }

    fn unlink(&mut self, node: &Node<V>) {
        if node.prev == NIL {
            self.head = node.next;
        } else {
            self.nodes[node.prev].next = node.next;
        }
        if node.next == NIL {
            self.tail = node.prev;
        } else {
            self.nodes[node.next].prev = node.prev;
        }
        self.linked -= 1;
    }

    /// Wakes the first waiter still in line: it leaves the line, notified. Gives its waker, to
    /// be woken once the caller's borrow is released; `None` if nobody waits.
    pub(crate) fn notify_one(&mut self) -> Option<Waker> {
        if self.head == NIL {
            return None;
        }
        let key = self.head;
        let next = self.nodes[key].next;
        self.head = next;
        if next == NIL {
            self.tail = NIL;
        } else {
            self.nodes[next].prev = NIL;
        }
        self.linked -= 1;
        let node = &mut self.nodes[key];
        node.notified = true;
        node.prev = NIL;
        node.next = NIL;
        node.waker.take()
    }

    /// Wakes the first waiter still in line and hands it `value` (taken back with
    /// [`take_value`](Self::take_value)); gives `value` back if nobody waits.
    pub(crate) fn notify_one_with(&mut self, value: V) -> Result<Waker, V> {
        let key = self.head;
        match self.notify_one() {
            Some(w) => {
                self.nodes[key].value = Some(value);
                Ok(w)
            }
            None => Err(value),
        }
    }

    /// Takes what was handed to waiter `key` with its wake-up.
    pub(crate) fn take_value(&mut self, key: usize) -> Option<V> {
        self.nodes.get_mut(key).and_then(|n| n.value.take())
    }

    /// Wakes every waiter in line (into `wakers`, to be woken after the borrow is released).
    pub(crate) fn notify_all(&mut self, wakers: &mut Vec<Waker>) {
        while self.head != NIL {
            if let Some(w) = self.notify_one() {
                wakers.push(w);
            }
        }
    }

    /// True if nobody is waiting in line (notified waiters have left it).
    pub(crate) fn is_empty(&self) -> bool {
        self.linked == 0
    }

    /// How many wait in line.
    pub(crate) fn len(&self) -> usize {
        self.linked
    }
}

/// Wakes the wakers gathered while a primitive's state was borrowed.
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// `Pending`, recording for a monitor that the task waits at `label` (`"Event.wait"`...).
#[inline]
pub(crate) fn pending<T>(label: &'static str) -> Poll<T> {
    loop_api::introspect::awaiting(label);
    Poll::Pending
}

/// `poll`, recording for a monitor that the task waits at `label` when it is `Pending`.
#[inline]
pub(crate) fn waiting<T>(label: &'static str, poll: Poll<T>) -> Poll<T> {
    if poll.is_pending() {
        loop_api::introspect::awaiting(label);
    }
    poll
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_come_first_served_and_removal_anywhere() {
        let mut l: WaitList = WaitList::default();
        let w = Waker::noop();
        let a = l.push(w);
        let b = l.push(w);
        let c = l.push(w);
        assert_eq!(l.len(), 3);
        assert!(!l.remove(b));
        assert!(l.notify_one().is_some());
        assert!(l.is_notified(a));
        assert!(!l.is_notified(c));
        assert!(l.notify_one().is_some());
        assert!(l.is_notified(c));
        assert!(l.notify_one().is_none());
        assert!(l.is_empty());
        assert!(l.remove(a));
        assert!(l.remove(c));
        assert!(!l.remove(c));
    }
}
