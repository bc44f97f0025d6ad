//! [`Condition`] and [`Barrier`]: asyncio's `Condition` and `Barrier`.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::locks::{Acquire, Lock, LockGuard};
use crate::waiters::{WaitList, wake_all};

/// asyncio's `Condition`: a [`Lock`] and a line of tasks waiting to be notified.
///
/// `let guard = cond.lock().await` is asyncio's `async with cond:`; `cond.wait(guard)` releases
/// the lock, waits for a [`notify`](Self::notify), then takes the lock again (in line with
/// every other task asking for it) and gives the guard back. Waiters are notified first come,
/// first served. A waiter that was notified but dropped (cancelled) before it ran passes the
/// notification on to the next waiter, so no `notify` is lost.
///
/// Unlike asyncio, `notify` does not require the lock to be held (nothing can race on one
/// thread between a check and a `notify`); holding it is still the usual pattern.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # let lp2 = lp.clone();
/// # lp.run_until_complete(async move {
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let cond = Rc::new(loop_sync::Condition::new());
/// let ready = Rc::new(Cell::new(false));
/// let (c, r) = (cond.clone(), ready.clone());
/// let waiter = lp2
///     .create_task(async move {
///         let guard = c.lock().await;
///         let _guard = c.wait_for(guard, || r.get()).await;
///         "saw it"
///     })
///     .unwrap();
/// loop_api::yield_now().await;
/// let guard = cond.lock().await;
/// ready.set(true);
/// cond.notify_all();
/// drop(guard);
/// assert_eq!(waiter.await, Ok("saw it"));
/// # }).unwrap();
/// ```
pub struct Condition {
    lock: Lock,
    waiters: RefCell<WaitList>,
}

impl Condition {
    /// A condition with its own lock.
    pub fn new() -> Self {
        Condition {
            lock: Lock::new(),
            waiters: RefCell::new(WaitList::default()),
        }
    }

    /// Takes the condition's lock (asyncio's `async with cond:`).
    pub fn lock(&self) -> Acquire<'_> {
        self.lock.lock()
    }

    /// True if the condition's lock is held.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock, waits to be notified, takes the lock again and returns its guard.
    ///
    /// Dropping the future (cancellation) at any point leaves the lock released and passes on
    /// a notification it had received.
    ///
    /// # Panics
    /// If `guard` is the guard of another lock than this condition's (a programming error, as
    /// using a `std::sync::Condvar` with two mutexes).
    pub async fn wait<'a>(&'a self, guard: LockGuard<'a>) -> LockGuard<'a> {
        assert!(
            std::ptr::eq(guard.lock, &self.lock),
            "Condition::wait was given the guard of another lock; pass the guard of this \
             condition's own lock (from Condition::lock)"
        );
        let notified = Notified {
            condition: self,
            key: None,
        };
        // Registered in the line on its first poll, right below: nothing runs in between.
        drop(guard);
        notified.await;
        self.lock.lock().await
    }

    /// Waits (as [`wait`](Self::wait)) until `predicate` is true, checking it with the lock
    /// held: first at once, then after each notification. Returns the guard.
    ///
    /// # Panics
    /// As [`wait`](Self::wait).
    pub async fn wait_for<'a>(
        &'a self,
        mut guard: LockGuard<'a>,
        mut predicate: impl FnMut() -> bool,
    ) -> LockGuard<'a> {
        while !predicate() {
            guard = self.wait(guard).await;
        }
        guard
    }

    /// Wakes up to `n` waiters, first come, first served.
    pub fn notify(&self, n: usize) {
        let mut wakers = Vec::new();
        {
            let mut w = self.waiters.borrow_mut();
            while wakers.len() < n {
                match w.notify_one() {
                    Some(waker) => wakers.push(waker),
                    None => break,
                }
            }
        }
        wake_all(wakers);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let mut wakers = Vec::new();
        self.waiters.borrow_mut().notify_all(&mut wakers);
        wake_all(wakers);
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("locked", &self.lock.locked())
            .field("waiting", &self.waiters.borrow().len())
            .finish()
    }
}

/// Waiting in a condition's line; dropped after being notified, it passes the notification on.
struct Notified<'a> {
    condition: &'a Condition,
    key: Option<usize>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut w = this.condition.waiters.borrow_mut();
        match this.key {
            None => {
                this.key = Some(w.push(cx.waker()));
                crate::waiters::pending("Condition.wait")
            }
            Some(_) => {
                crate::waiters::waiting("Condition.wait", w.poll_turn(&mut this.key, cx.waker()))
            }
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let was_notified = self.condition.waiters.borrow_mut().remove(key);
            if was_notified {
                self.condition.notify(1);
            }
        }
    }
}

/// asyncio's `Barrier`: `parties` tasks wait for each other; the last to arrive lets them all
/// through, and the barrier is ready for the next round.
///
/// [`wait`](Self::wait) returns the arrival index: 0 for the first task of the round to
/// arrive, `parties - 1` for the last. A waiting task that is cancelled (dropped) leaves the
/// round, as in CPython (the round then needs another task). `Barrier::new(0)` behaves as
/// `Barrier::new(1)` (every wait passes at once), as `std::sync::Barrier` does; asyncio's
/// `abort`/`reset` and broken state are not provided.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # let lp2 = lp.clone();
/// # lp.run_until_complete(async move {
/// use std::rc::Rc;
/// let barrier = Rc::new(loop_sync::Barrier::new(2));
/// let b = barrier.clone();
/// let first = lp2.create_task(async move { b.wait().await }).unwrap();
/// loop_api::yield_now().await;
/// assert_eq!(barrier.wait().await, 1);
/// assert_eq!(first.await, Ok(0));
/// # }).unwrap();
/// ```
pub struct Barrier {
    parties: usize,
    state: RefCell<BarrierState>,
}

#[derive(Debug)]
struct BarrierState {
    arrived: usize,
    waiters: WaitList,
}

impl Barrier {
    /// A barrier for `parties` tasks (0 is taken as 1).
    pub fn new(parties: usize) -> Self {
        Barrier {
            parties: parties.max(1),
            state: RefCell::new(BarrierState {
                arrived: 0,
                waiters: WaitList::default(),
            }),
        }
    }

    /// How many tasks each round needs.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many tasks wait in the current round.
    pub fn n_waiting(&self) -> usize {
        self.state.borrow().arrived
    }

    /// Waits until `parties` tasks wait; gives this task's arrival index in the round.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            waiting: None,
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .finish()
    }
}

/// The future of [`Barrier::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    /// Our key in the line and our arrival index, once arrived.
    waiting: Option<(usize, usize)>,
}

impl Future for BarrierWait<'_> {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let barrier = self.barrier;
        let mut st = barrier.state.borrow_mut();
        match self.waiting {
            None => {
                let index = st.arrived;
                if index + 1 < barrier.parties {
                    st.arrived += 1;
                    self.waiting = Some((st.waiters.push(cx.waker()), index));
                    return Poll::Pending;
                }
                // The last one: let the round through.
                st.arrived = 0;
                let mut wakers = Vec::new();
                st.waiters.notify_all(&mut wakers);
                drop(st);
                wake_all(wakers);
                Poll::Ready(index)
            }
            Some((key, index)) if st.waiters.is_notified(key) => {
                st.waiters.remove(key);
                self.waiting = None;
                Poll::Ready(index)
            }
            Some((key, _)) => {
                st.waiters.update_waker(key, cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        if let Some((key, _)) = self.waiting.take() {
            let mut st = self.barrier.state.borrow_mut();
            if !st.waiters.remove(key) {
                // Left before the round was let through.
                st.arrived -= 1;
            }
        }
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}
