//! The thread-safe side of a loop ([`Shared`]), the local ready queue, and task wakers.
//!
//! A wake on the loop's own thread pushes straight onto the loop's ready queue (found through a
//! thread-local registry), so it keeps FIFO order with `call_soon`. A wake from another thread
//! goes through a mutex-protected queue and ends a blocked poll through the driver's waker; the
//! `notified` flag makes many wakes between two polls cost one driver wake-up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Wake;

use loop_api::{Handle, LoopError, ThreadSafeScheduler};

use crate::driver::DriverWaker;
use crate::op::Direction;

/// A thread-safe callback (from `call_soon_threadsafe`).
pub(crate) type RemoteCallback = Box<dyn FnOnce() + Send + 'static>;

/// One entry of the ready queue.
pub(crate) enum Ready {
    /// A `call_soon` callback (or a due timer).
    Callback(Handle),
    /// A `call_soon_threadsafe` callback.
    Remote(RemoteCallback),
    /// A task to poll, by its key in the task table.
    Task(usize),
    /// A reader/writer callback whose fd became ready (`generation` tells a replaced watch apart).
    Watch {
        fd: RawFd,
        dir: Direction,
        generation: u64,
    },
}

/// The loop's ready queue, reachable from wakers on the loop's thread.
pub(crate) struct LocalQueue {
    pub(crate) id: u64,
    pub(crate) ready: RefCell<VecDeque<Ready>>,
}

thread_local! {
    static LOCAL_QUEUES: RefCell<Vec<(u64, Weak<LocalQueue>)>> = const { RefCell::new(Vec::new()) };
}

impl LocalQueue {
    pub(crate) fn register(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        LOCAL_QUEUES.with(|q| q.borrow_mut().push((self.id, weak)));
    }

    pub(crate) fn unregister(&self) {
        let id = self.id;
        let _ = LOCAL_QUEUES.try_with(|q| q.borrow_mut().retain(|(i, _)| *i != id));
    }

    /// The queue of loop `id` if this is the loop's thread.
    fn find(id: u64) -> Option<Rc<LocalQueue>> {
        LOCAL_QUEUES
            .try_with(|q| {
                q.borrow()
                    .iter()
                    .find(|(i, _)| *i == id)
                    .and_then(|(_, w)| w.upgrade())
            })
            .ok()
            .flatten()
    }

    pub(crate) fn push(&self, item: Ready) {
        self.ready.borrow_mut().push_back(item);
    }
}

pub(crate) enum RemoteItem {
    Callback(RemoteCallback),
    Task(usize),
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
            let waker = self
                .driver_waker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(wake) = waker {
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
        if let Some(q) = LocalQueue::find(self.id) {
            q.push(Ready::Remote(f));
            return Ok(());
        }
        self.push_remote(RemoteItem::Callback(f))
    }

    fn stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
        self.notify();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// The waker of one task: reschedules it by key, from any thread.
pub(crate) struct TaskWaker {
    /// The task's key in the task table (set again when the waker is recycled, which happens
    /// only when nothing but the loop holds it).
    pub(crate) key: std::sync::atomic::AtomicUsize,
    pub(crate) queued: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(q) = LocalQueue::find(self.shared.id) {
            q.push(Ready::Task(self.key.load(Ordering::Relaxed)));
        } else if self
            .shared
            .push_remote(RemoteItem::Task(self.key.load(Ordering::Relaxed)))
            .is_err()
        {
            // The loop is closed: the task is gone, nothing to wake.
        }
    }
}
