//! The thread-safe side of a loop ([`Shared`]), the local ready queue, and where task wakers
//! send their tasks ([`Schedule`] for `Shared`).
//!
//! A wake on the loop's own thread pushes straight onto the loop's ready queue (found through a
//! thread-local registry), so it keeps FIFO order with `call_soon`. A wake from another thread
//! goes through a mutex-protected queue and ends a blocked poll through the driver's waker; the
//! `notified` flag makes many wakes between two polls cost one driver wake-up.

use loop_api::{Handle, LoopError, Notified, Schedule, TaskRef, ThreadSafeScheduler};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use loop_api::Direction;

/// A thread-safe callback (from `call_soon_threadsafe`).
pub(crate) type RemoteCallback = Box<dyn FnOnce() + Send + 'static>;

/// One entry of the ready queue: two words, as a `Box<dyn FnOnce()>` (memory traffic is much of
/// the cost of a million queued callbacks).
pub(crate) enum Ready {
    /// A `call_soon` callback (or a due timer).
    Callback(Handle),
    /// A `call_soon_threadsafe` callback: the next one in [`LocalQueue::remote`].
    Remote,
    /// A task to poll.
    Task(TaskRef),
    /// A reader/writer callback whose fd became ready (`generation` tells a replaced watch apart).
    Watch {
        fd: RawFd,
        dir: Direction,
        generation: Generation,
    },
}

const _: () = assert!(std::mem::size_of::<Ready>() == 16);

/// A watch's 64-bit generation, kept as two halves (4-byte aligned, so `Ready` stays 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation([u32; 2]);

impl From<u64> for Generation {
    fn from(g: u64) -> Self {
        Generation([g as u32, (g >> 32) as u32])
    }
}

impl Generation {
    pub(crate) fn get(self) -> u64 {
        u64::from(self.0[0]) | u64::from(self.0[1]) << 32
    }
}

/// Something any thread can call to end a blocked [`Driver::poll`](crate::Driver::poll)
/// early (the thread-safe part of a loop keeps its driver's, to wake the loop).
pub type DriverWaker = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The loop's ready queue, reachable from wakers on the loop's thread.
pub(crate) struct LocalQueue {
    pub(crate) id: u64,
    pub(crate) ready: RefCell<VecDeque<Ready>>,
    /// The `call_soon_threadsafe` callbacks of the `Ready::Remote` entries, in their order.
    pub(crate) remote: RefCell<VecDeque<RemoteCallback>>,
}

thread_local! {
    /// The ready queues of the loops of this thread (strong: a loop unregisters its queue when
    /// it closes, and dropping a loop closes it).
    static LOCAL_QUEUES: RefCell<Vec<(u64, Rc<LocalQueue>)>> = const { RefCell::new(Vec::new()) };
}

impl LocalQueue {
    pub(crate) fn register(self: &Rc<Self>) {
        let me = self.clone();
        LOCAL_QUEUES.with(|q| q.borrow_mut().push((self.id, me)));
    }

    pub(crate) fn unregister(&self) {
        let id = self.id;
        let removed = LOCAL_QUEUES
            .try_with(|q| {
                let mut q = q.borrow_mut();
                let at = q.iter().position(|(i, _)| *i == id)?;
                Some(q.swap_remove(at))
            })
            .ok()
            .flatten();
        // Dropped outside the registry's borrow.
        drop(removed);
    }

    /// Runs `f` with the queue of loop `id` if this is the loop's thread (no reference-count
    /// traffic: the registry's borrow keeps the queue alive for the call).
    #[inline]
    fn with_local<R>(id: u64, f: impl FnOnce(&LocalQueue) -> R) -> Option<R> {
        LOCAL_QUEUES
            .try_with(|q| {
                let q = q.borrow();
                let (_, local) = q.iter().find(|(i, _)| *i == id)?;
                Some(f(local))
            })
            .ok()
            .flatten()
    }

    #[inline(always)]
    pub(crate) fn push(&self, item: Ready) {
        self.ready.borrow_mut().push_back(item);
    }

    /// Queues a `call_soon_threadsafe` callback (after everything queued so far).
    pub(crate) fn push_remote(&self, f: RemoteCallback) {
        self.remote.borrow_mut().push_back(f);
        self.push(Ready::Remote);
    }

    /// Moves what other threads sent since the last iteration (callbacks, woken tasks) onto
    /// the ready queue, in their order; `scratch` is reused for its allocation.
    pub(crate) fn take_remote_work(&self, shared: &Shared, scratch: &mut Vec<RemoteItem>) {
        if !shared.notified.swap(false, Ordering::AcqRel) {
            return;
        }
        shared.take_remote(scratch);
        let mut ready = self.ready.borrow_mut();
        let mut remote = self.remote.borrow_mut();
        for item in scratch.drain(..) {
            match item {
                RemoteItem::Callback(f) => {
                    remote.push_back(f);
                    ready.push_back(Ready::Remote);
                }
                RemoteItem::Task(task) => {
                    // SAFETY: the local queue is only reached on the loop's thread (the loop is
                    // `!Send`), where every task spawned on it was made.
                    ready.push_back(Ready::Task(unsafe { task.into_local() }));
                }
            }
        }
    }

    /// Drops everything queued (the loop is closing), outside the borrows: destructors may
    /// call back into the loop.
    pub(crate) fn clear(&self) {
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        drop(ready);
        let remote = std::mem::take(&mut *self.remote.borrow_mut());
        drop(remote);
    }

    /// The callback of the `Ready::Remote` entry being run.
    pub(crate) fn pop_remote(&self) -> Option<RemoteCallback> {
        self.remote.borrow_mut().pop_front()
    }
}

pub(crate) enum RemoteItem {
    Callback(RemoteCallback),
    Task(Notified),
}

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// What other threads share with the loop: the remote queue, the stop request, the driver's
/// waker.
pub(crate) struct Shared {
    pub(crate) id: u64,
    remote: Mutex<Vec<RemoteItem>>,
    pub(crate) notified: AtomicBool,
    pub(crate) stop_requested: AtomicBool,
    pub(crate) closed: AtomicBool,
    /// Dropped at close, so the driver's wake-up fd closes with the loop even while handles
    /// to the loop live on.
    driver_waker: Mutex<Option<DriverWaker>>,
}

impl Shared {
    pub(crate) fn new(driver_waker: DriverWaker) -> Self {
        Shared {
            id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
            remote: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            driver_waker: Mutex::new(Some(driver_waker)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RemoteItem>> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            // Woken under the lock (a non-blocking write to the driver's wake-up fd, no user
            // code), so `close` taking the waker waits for a wake in flight: once the loop is
            // closed, no other thread (an executor job finishing, say) keeps that fd open.
            let waker = self.driver_waker.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(wake) = waker.as_ref() {
                wake();
            }
        }
    }

    pub(crate) fn push_remote(&self, item: RemoteItem) -> Result<(), LoopError> {
        {
            let mut q = self.lock();
            // Checked under the lock: close() empties the queue under it after setting `closed`.
            if self.closed.load(Ordering::Acquire) {
                return Err(LoopError::Closed);
            }
            q.push(item);
        }
        self.notify();
        Ok(())
    }

    /// Takes everything queued by other threads.
    pub(crate) fn take_remote(&self, into: &mut Vec<RemoteItem>) {
        std::mem::swap(&mut *self.lock(), into);
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let items = std::mem::take(&mut *self.lock());
        drop(items);
        let waker = self
            .driver_waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(waker);
    }
}

impl ThreadSafeScheduler for Shared {
    fn call_soon_threadsafe(&self, f: RemoteCallback) -> Result<(), LoopError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(LoopError::Closed);
        }
        let mut f = Some(f);
        let local = LocalQueue::with_local(self.id, |q| {
            if let Some(f) = f.take() {
                q.push_remote(f);
            }
        });
        match f {
            Some(f) if local.is_none() => self.push_remote(RemoteItem::Callback(f)),
            _ => Ok(()),
        }
    }

    fn stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
        self.notify();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl Schedule for Shared {
    /// A woken task: onto the ready queue at once on the loop's thread (FIFO with
    /// `call_soon`), else through the remote queue. Dropped if the loop is closed.
    fn schedule(&self, task: Notified) {
        let mut task = Some(task);
        LocalQueue::with_local(self.id, |q| {
            if let Some(task) = task.take() {
                // `with_local` only finds the queue of loop `id` on the thread that registered
                // it, the loop's own thread (the loop is `!Send`). Tasks bound to this `Shared`
                // were spawned on that loop, so they were made on that thread (`EventLoop` is
                // `!Send`).
                // SAFETY: so this is the task's thread.
                let task = unsafe { task.into_local() };
                q.push(Ready::Task(task));
            }
        });
        if let Some(task) = task
            && let Err(LoopError::Closed) = self.push_remote(RemoteItem::Task(task))
        {
            // The loop is closed: its tasks were aborted, nothing to wake.
        }
    }
}
