//! [`Lock`] and [`Semaphore`]: strictly first-come, first-served, as CPython's.
//!
//! Both are one counter of permits and a [`WaitList`]: [`Lock`] is a semaphore of one permit
//! whose permit is called a guard. A release with somebody waiting hands the permit straight
//! to the first waiter (the count does not go up), so a newcomer can never take it ahead of a
//! waiter that was already woken but has not run yet: CPython's Lock gets the same order by
//! keeping a woken waiter in its deque until it runs. A waiter dropped after it was handed the
//! permit gives it back, which hands it to the next one (CPython's `_wake_up_first` in the
//! `CancelledError` handler): a cancelled acquire never leaks a permit.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::waiters::WaitList;

/// Permits and the line of those waiting for one (the core of [`Lock`] and [`Semaphore`]).
#[derive(Debug)]
struct Permits {
    state: RefCell<PermitState>,
}

#[derive(Debug)]
struct PermitState {
    available: usize,
    waiters: WaitList,
}

impl Permits {
    fn new(available: usize) -> Self {
        Permits {
            state: RefCell::new(PermitState {
                available,
                waiters: WaitList::default(),
            }),
        }
    }

    /// Takes a permit if one is free and nobody waits for one.
    fn try_acquire(&self) -> bool {
        let mut st = self.state.borrow_mut();
        if st.available > 0 && st.waiters.is_empty() {
            st.available -= 1;
            true
        } else {
            false
        }
    }

    /// Gives a permit back: to the first waiter if there is one, else to the count.
    fn release(&self) {
        let woken = {
            let mut st = self.state.borrow_mut();
            let w = st.waiters.notify_one();
            if w.is_none() {
                st.available = st.available.saturating_add(1);
            }
            w
        };
        if let Some(w) = woken {
            w.wake();
        }
    }

    fn available(&self) -> usize {
        self.state.borrow().available
    }

    fn waiting(&self) -> usize {
        self.state.borrow().waiters.len()
    }
}

/// Waiting for one permit. Dropped after being handed one, it passes it on.
struct AcquirePermit<'a> {
    permits: &'a Permits,
    key: Option<usize>,
}

impl AcquirePermit<'_> {
    fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.permits.state.borrow_mut();
        match self.key {
            None => {
                if st.available > 0 && st.waiters.is_empty() {
                    st.available -= 1;
                    return Poll::Ready(());
                }
                self.key = Some(st.waiters.push(cx.waker()));
                crate::waiters::pending("acquire")
            }
            // Once woken, the releaser handed us its permit.
            Some(_) => {
                crate::waiters::waiting("acquire", st.waiters.poll_turn(&mut self.key, cx.waker()))
            }
        }
    }
}

impl Drop for AcquirePermit<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let handed_one = self.permits.state.borrow_mut().waiters.remove(key);
            if handed_one {
                self.permits.release();
            }
        }
    }
}

/// asyncio's `Lock`: mutual exclusion between tasks, strictly first come, first served.
///
/// [`lock`](Self::lock) gives a [`LockGuard`]; dropping the guard releases the lock (asyncio's
/// `async with lock:`). A lock released while tasks wait is handed to the first of them, so a
/// new `lock()` (or [`try_lock`](Self::try_lock)) always queues behind a waiter that was
/// already woken. Cancelling (dropping) a waiting `lock()` at any point leaks nothing: one that
/// had been handed the lock passes it to the next waiter.
///
/// Not `Send`: a lock serves the tasks of one loop (share it with `Rc`).
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # lp.run_until_complete(async {
/// let lock = loop_sync::Lock::new();
/// {
///     let _guard = lock.lock().await;
///     assert!(lock.locked());
///     assert!(lock.try_lock().is_none());
/// }
/// assert!(!lock.locked());
/// # }).unwrap();
/// ```
pub struct Lock {
    permits: Permits,
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Self {
        Lock {
            permits: Permits::new(1),
        }
    }

    /// Waits for the lock (after every task that asked before), then holds it until the guard
    /// is dropped (asyncio's `await lock.acquire()` / `async with lock`).
    pub fn lock(&self) -> Acquire<'_> {
        Acquire {
            lock: self,
            inner: AcquirePermit {
                permits: &self.permits,
                key: None,
            },
        }
    }

    /// The lock now if it is free and nobody waits for it, else `None`.
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.permits.try_acquire().then(|| LockGuard { lock: self })
    }

    /// True if the lock is held, or handed to a woken waiter that has not run yet.
    pub fn locked(&self) -> bool {
        self.permits.available() == 0
    }

    /// How many tasks wait for the lock (woken ones that have not run yet not counted).
    pub fn waiting(&self) -> usize {
        self.permits.waiting()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// The future of [`Lock::lock`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    lock: &'a Lock,
    inner: AcquirePermit<'a>,
}

impl<'a> Future for Acquire<'a> {
    type Output = LockGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a>> {
        let lock = self.lock;
        self.inner.poll_acquire(cx).map(|()| LockGuard { lock })
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.inner.key.is_some())
            .finish()
    }
}

/// Holds a [`Lock`]; dropping it releases the lock (to the first waiter, if any).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    pub(crate) lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.permits.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// asyncio's `Semaphore`: at most `permits` holders at once, strictly first come, first served.
///
/// [`acquire`](Self::acquire) gives a [`SemaphorePermit`] that gives its permit back when
/// dropped. A permit given back while tasks wait goes straight to the first of them, so a new
/// `acquire` queues behind a waiter that was already woken. Cancelling (dropping) a waiting
/// `acquire` at any point leaks no permit.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # lp.run_until_complete(async {
/// let sem = loop_sync::Semaphore::new(2);
/// let a = sem.acquire().await;
/// let b = sem.try_acquire().expect("a second permit");
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// # drop(b);
/// # }).unwrap();
/// ```
pub struct Semaphore {
    permits: Permits,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Self {
        Semaphore {
            permits: Permits::new(permits),
        }
    }

    /// Waits for a permit (after every task that asked before).
    pub fn acquire(&self) -> AcquireSemaphore<'_> {
        AcquireSemaphore {
            semaphore: self,
            inner: AcquirePermit {
                permits: &self.permits,
                key: None,
            },
        }
    }

    /// A permit now if one is free and nobody waits for one, else `None`.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.permits
            .try_acquire()
            .then(|| SemaphorePermit { semaphore: self })
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.permits.available()
    }

    /// True if an `acquire` would wait (asyncio's `locked()`).
    pub fn locked(&self) -> bool {
        self.permits.available() == 0 || self.permits.waiting() > 0
    }

    /// Adds a permit (asyncio's `release()` without a matching acquire): to the first waiter
    /// if one waits, else to the free permits.
    pub fn release(&self) {
        self.permits.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("waiting", &self.permits.waiting())
            .finish()
    }
}

/// The future of [`Semaphore::acquire`].
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireSemaphore<'a> {
    semaphore: &'a Semaphore,
    inner: AcquirePermit<'a>,
}

impl<'a> Future for AcquireSemaphore<'a> {
    type Output = SemaphorePermit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphorePermit<'a>> {
        let semaphore = self.semaphore;
        self.inner
            .poll_acquire(cx)
            .map(|()| SemaphorePermit { semaphore })
    }
}

impl fmt::Debug for AcquireSemaphore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireSemaphore")
            .field("waiting", &self.inner.key.is_some())
            .finish()
    }
}

/// One permit of a [`Semaphore`]; dropping it gives the permit back.
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (the semaphore has one permit fewer).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.permits.release();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit")
    }
}
