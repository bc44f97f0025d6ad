//! asyncio's queues: [`Queue`] (first in, first out), [`LifoQueue`] and [`PriorityQueue`],
//! one implementation ([`BaseQueue`]) over three orders ([`QueueStore`]).
//!
//! Getters and putters wait in two [`WaitList`]s, served strictly first come, first served.
//! A `put` that finds a getter waiting hands it the item directly (the queue was empty, so
//! the item is the next one in any order); CPython instead leaves the item in the queue, where
//! a newcomer's `get_nowait` can take it ahead of the woken getter, which then goes to the back
//! of the line. A `get` that frees a slot of a full queue wakes the first putter and
//! *reserves* the slot for it: no newcomer (not even `put_nowait`) takes it. A woken getter
//! dropped (cancelled) before it ran gives its item back to the front of the queue (to the
//! next getter, if one waits), so a cancelled `get` loses no item (in that race the item
//! given back may reach a getter after an item put later had gone to an earlier getter); a woken putter dropped
//! before it ran passes its slot on; a `put` dropped before it finished never adds its item.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::waiters::{WaitList, wake_all};

/// How a queue orders its items: `VecDeque<T>` (FIFO), `Vec<T>` (LIFO),
/// `BinaryHeap<Reverse<T>>` (smallest first).
pub trait QueueStore<T>: Default {
    /// Adds an item.
    fn push_item(&mut self, item: T);
    /// Takes the next item.
    fn pop_item(&mut self) -> Option<T>;
    /// How many items it holds.
    fn item_count(&self) -> usize;
    /// Puts back an item that was taken but not used, so that it comes out next.
    fn give_back(&mut self, item: T);
}

impl<T> QueueStore<T> for VecDeque<T> {
    fn push_item(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop_item(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn item_count(&self) -> usize {
        self.len()
    }
    fn give_back(&mut self, item: T) {
        self.push_front(item);
    }
}

impl<T> QueueStore<T> for Vec<T> {
    fn push_item(&mut self, item: T) {
        self.push(item);
    }
    fn pop_item(&mut self) -> Option<T> {
        self.pop()
    }
    fn item_count(&self) -> usize {
        self.len()
    }
    fn give_back(&mut self, item: T) {
        self.push(item);
    }
}

impl<T: Ord> QueueStore<T> for BinaryHeap<Reverse<T>> {
    fn push_item(&mut self, item: T) {
        self.push(Reverse(item));
    }
    fn pop_item(&mut self) -> Option<T> {
        self.pop().map(|Reverse(item)| item)
    }
    fn item_count(&self) -> usize {
        self.len()
    }
    fn give_back(&mut self, item: T) {
        self.push(Reverse(item));
    }
}

/// asyncio's `Queue`: first in, first out.
pub type Queue<T> = BaseQueue<T, VecDeque<T>>;

/// asyncio's `LifoQueue`: last in, first out.
pub type LifoQueue<T> = BaseQueue<T, Vec<T>>;

/// asyncio's `PriorityQueue`: smallest item first (put `(priority, item)` tuples to order by
/// priority).
pub type PriorityQueue<T> = BaseQueue<T, BinaryHeap<Reverse<T>>>;

/// `put_nowait` on a full queue; gives the item back.
#[derive(Clone, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full; await put() to wait for a free slot")
    }
}

impl<T> std::error::Error for QueueFull<T> {}

/// `get_nowait` on an empty queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEmpty;

impl fmt::Display for QueueEmpty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is empty; await get() to wait for an item")
    }
}

impl std::error::Error for QueueEmpty {}

/// A queue of items in the order `S` keeps them; use it as [`Queue`], [`LifoQueue`] or
/// [`PriorityQueue`]. Clones share one queue.
///
/// A queue of `maxsize` 0 is unbounded. Getters and putters wait first come, first served;
/// dropping (cancelling) a `get` or `put` at any point loses no item and no slot. Like
/// asyncio's, every item `put` counts as unfinished until a [`task_done`](Self::task_done)
/// matches it, and [`join`](Self::join) waits until none is. Not `Send`.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # let lp2 = lp.clone();
/// # lp.run_until_complete(async move {
/// let q = loop_sync::Queue::new(2);
/// let consumer = {
///     let q = q.clone();
///     lp2.create_task(async move {
///         let mut got = Vec::new();
///         for _ in 0..5 {
///             got.push(q.get().await);
///             q.task_done();
///         }
///         got
///     })
///     .unwrap()
/// };
/// for i in 0..5 {
///     q.put(i).await; // waits while two items are queued
/// }
/// q.join().await;
/// assert_eq!(consumer.await, Ok(vec![0, 1, 2, 3, 4]));
/// # }).unwrap();
/// ```
pub struct BaseQueue<T, S> {
    shared: Rc<Shared<T, S>>,
}

struct Shared<T, S> {
    state: RefCell<State<T, S>>,
}

struct State<T, S> {
    items: S,
    _item: PhantomData<fn(T) -> T>,
    maxsize: usize,
    /// Getters; a woken one is handed its item with the wake-up.
    getters: WaitList<T>,
    putters: WaitList,
    /// Slots promised to notified putters that have not run yet.
    reserved_slots: usize,
    unfinished: usize,
    joiners: WaitList,
}

impl<T, S: QueueStore<T>> State<T, S> {
    fn len(&self) -> usize {
        self.items.item_count()
    }

    /// A slot nobody has been promised.
    fn slot_free(&self) -> bool {
        self.maxsize == 0 || self.len() + self.reserved_slots < self.maxsize
    }

    /// Wakes a putter for a slot nobody has been promised, if one waits.
    fn wake_putter(&mut self) -> Option<Waker> {
        if !self.slot_free() {
            return None;
        }
        let w = self.putters.notify_one()?;
        self.reserved_slots += 1;
        Some(w)
    }

    /// An item a woken getter did not take: to the next getter, else to the front.
    fn give_back(&mut self, item: T) -> Option<Waker> {
        match self.getters.notify_one_with(item) {
            Ok(w) => Some(w),
            Err(item) => {
                self.items.give_back(item);
                None
            }
        }
    }

    /// Adds an item: to the first waiting getter, else to the queue.
    fn push(&mut self, item: T) -> Option<Waker> {
        self.unfinished += 1;
        match self.getters.notify_one_with(item) {
            Ok(w) => Some(w),
            Err(item) => {
                self.items.push_item(item);
                None
            }
        }
    }

    fn pop(&mut self) -> (Option<T>, Option<Waker>) {
        let item = self.items.pop_item();
        (item, self.wake_putter())
    }
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T, S: QueueStore<T>> BaseQueue<T, S> {
    /// A queue holding at most `maxsize` items (0: unbounded).
    pub fn new(maxsize: usize) -> Self {
        BaseQueue {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    items: S::default(),
                    _item: PhantomData,
                    maxsize,
                    getters: WaitList::default(),
                    putters: WaitList::default(),
                    reserved_slots: 0,
                    unfinished: 0,
                    joiners: WaitList::default(),
                }),
            }),
        }
    }

    fn state(&self) -> std::cell::RefMut<'_, State<T, S>> {
        self.shared.state.borrow_mut()
    }

    /// Puts `item` in the queue, waiting for a free slot while it is full (after the putters
    /// that waited before). Dropped before it finished, it has not put the item.
    pub fn put(&self, item: T) -> Put<'_, T, S> {
        Put {
            queue: self,
            item: Some(item),
            key: None,
        }
    }

    /// Puts `item` in the queue now.
    ///
    /// # Errors
    /// [`QueueFull`] (with the item) if the queue is full.
    pub fn put_nowait(&self, item: T) -> Result<(), QueueFull<T>> {
        let woken = {
            let mut st = self.state();
            if !st.slot_free() || !st.putters.is_empty() {
                return Err(QueueFull(item));
            }
            st.push(item)
        };
        wake(woken);
        Ok(())
    }

    /// Takes the next item, waiting while the queue is empty (after the getters that waited
    /// before). Dropped before it finished, it has taken no item.
    pub fn get(&self) -> Get<'_, T, S> {
        Get {
            queue: self,
            key: None,
        }
    }

    /// Takes the next item now.
    ///
    /// # Errors
    /// [`QueueEmpty`] if no item is there.
    pub fn get_nowait(&self) -> Result<T, QueueEmpty> {
        let (item, woken) = {
            let mut st = self.state();
            st.pop()
        };
        wake(woken);
        item.ok_or(QueueEmpty)
    }

    /// Marks one item taken earlier as processed; when every item put has been, [`join`]
    /// returns.
    ///
    /// A call without an unfinished item (asyncio's `ValueError`) changes nothing and is
    /// reported to the running loop's exception handler.
    ///
    /// [`join`]: Self::join
    pub fn task_done(&self) {
        let mut wakers = Vec::new();
        {
            let mut st = self.state();
            if st.unfinished == 0 {
                drop(st);
                report_task_done_misuse();
                return;
            }
            st.unfinished -= 1;
            if st.unfinished == 0 {
                st.joiners.notify_all(&mut wakers);
            }
        }
        wake_all(wakers);
    }

    /// Waits until every item put has been marked processed with
    /// [`task_done`](Self::task_done) (at once if none is unfinished).
    pub fn join(&self) -> QueueJoin<'_, T, S> {
        QueueJoin {
            queue: self,
            key: None,
        }
    }

    /// How many items the queue holds (an item handed to a woken getter has left it).
    pub fn qsize(&self) -> usize {
        self.shared.state.borrow().len()
    }

    /// True if the queue holds no item.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// True if the queue holds `maxsize` items (never for an unbounded queue).
    pub fn full(&self) -> bool {
        let st = self.shared.state.borrow();
        st.maxsize > 0 && st.len() >= st.maxsize
    }

    /// The largest number of items the queue holds (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.shared.state.borrow().maxsize
    }

    /// How many items were put and not yet marked with [`task_done`](Self::task_done).
    pub fn unfinished_tasks(&self) -> usize {
        self.shared.state.borrow().unfinished
    }
}

fn report_task_done_misuse() {
    if let Ok(lp) = loop_api::get_running_loop() {
        lp.call_exception_handler(&loop_api::ExceptionContext {
            message: "Queue.task_done() called more times than there were items put; \
                      call it once per item taken with get()"
                .to_string(),
            ..loop_api::ExceptionContext::default()
        });
    }
}

impl<T, S> Clone for BaseQueue<T, S> {
    fn clone(&self) -> Self {
        BaseQueue {
            shared: self.shared.clone(),
        }
    }
}

impl<T, S: QueueStore<T>> fmt::Debug for BaseQueue<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.borrow();
        f.debug_struct("Queue")
            .field("qsize", &st.len())
            .field("maxsize", &st.maxsize)
            .field("getters", &st.getters.len())
            .field("putters", &st.putters.len())
            .field("unfinished", &st.unfinished)
            .finish()
    }
}

/// The future of [`BaseQueue::put`].
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T, S> {
    queue: &'a BaseQueue<T, S>,
    item: Option<T>,
    key: Option<usize>,
}

impl<T, S: QueueStore<T>> Future for Put<'_, T, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let woken = {
            let mut st = this.queue.state();
            match this.key {
                Some(key) if st.putters.is_notified(key) => {
                    st.putters.remove(key);
                    st.reserved_slots -= 1;
                    this.key = None;
                }
                Some(key) => {
                    st.putters.update_waker(key, cx.waker());
                    return crate::waiters::pending("Queue.put");
                }
                None if st.slot_free() && st.putters.is_empty() => {}
                None => {
                    this.key = Some(st.putters.push(cx.waker()));
                    return crate::waiters::pending("Queue.put");
                }
            }
            let item = this.item.take().expect("Put polled after it finished");
            st.push(item)
        };
        wake(woken);
        Poll::Ready(())
    }
}

// The item is never pinned: it is moved into the queue by value.
impl<T, S> Unpin for Put<'_, T, S> {}

impl<T, S> Drop for Put<'_, T, S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let woken = {
                let mut st = self.queue.shared.state.borrow_mut();
                if st.putters.remove(key) {
                    // Woken for a slot it will not use: the next putter gets it.
                    st.reserved_slots -= 1;
                    pass_slot_on(&mut st)
                } else {
                    None
                }
            };
            wake(woken);
        }
    }
}

/// `wake_putter` without the `QueueStore` bound `Drop` cannot have: the slot just given back
/// is free, so the next putter (if any) gets it.
fn pass_slot_on<T, S>(st: &mut State<T, S>) -> Option<Waker> {
    let w = st.putters.notify_one()?;
    st.reserved_slots += 1;
    Some(w)
}

impl<T, S> fmt::Debug for Put<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

/// The future of [`BaseQueue::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T, S: QueueStore<T>> {
    queue: &'a BaseQueue<T, S>,
    key: Option<usize>,
}

impl<T, S: QueueStore<T>> Future for Get<'_, T, S> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let (item, woken) = {
            let mut st = self.queue.state();
            match self.key {
                Some(key) if st.getters.is_notified(key) => {
                    // A put handed us its item.
                    let item = st.getters.take_value(key);
                    st.getters.remove(key);
                    self.key = None;
                    (item, None)
                }
                Some(key) => {
                    st.getters.update_waker(key, cx.waker());
                    return crate::waiters::pending("Queue.get");
                }
                None if st.getters.is_empty() && st.len() > 0 => st.pop(),
                None => {
                    self.key = Some(st.getters.push(cx.waker()));
                    return crate::waiters::pending("Queue.get");
                }
            }
        };
        wake(woken);
        match item {
            Some(item) => Poll::Ready(item),
            None => unreachable!("a woken getter was handed no item"),
        }
    }
}

impl<T, S: QueueStore<T>> Drop for Get<'_, T, S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let woken = {
                let mut st = self.queue.state();
                let item = st.getters.take_value(key);
                st.getters.remove(key);
                // Woken with an item it will not take: the next getter gets it, or it goes
                // back to the front of the queue.
                item.and_then(|item| st.give_back(item))
            };
            wake(woken);
        }
    }
}

impl<T, S: QueueStore<T>> fmt::Debug for Get<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}

/// The future of [`BaseQueue::join`].
#[must_use = "futures do nothing unless awaited"]
pub struct QueueJoin<'a, T, S> {
    queue: &'a BaseQueue<T, S>,
    key: Option<usize>,
}

impl<T, S> Future for QueueJoin<'_, T, S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.queue.shared.state.borrow_mut();
        match self.key {
            None if st.unfinished == 0 => Poll::Ready(()),
            None => {
                self.key = Some(st.joiners.push(cx.waker()));
                crate::waiters::pending("Queue.join")
            }
            Some(_) => crate::waiters::waiting(
                "Queue.join",
                st.joiners.poll_turn(&mut self.key, cx.waker()),
            ),
        }
    }
}

impl<T, S> Drop for QueueJoin<'_, T, S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.queue.shared.state.borrow_mut().joiners.remove(key);
        }
    }
}

impl<T, S> fmt::Debug for QueueJoin<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueJoin")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
