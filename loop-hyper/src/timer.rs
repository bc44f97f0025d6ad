//! [`LoopTimer`]: hyper's timer on the loop's clock, with `Send + Sync` sleeps.
//!
//! hyper needs its sleeps to be `Send + Sync`; the loop's own timers (a `TimerHandle` inside
//! the loop's thread) are not. So a [`LoopSleep`] is only shared state (a fired flag and a
//! waker behind a mutex) and the loop's thread-safe [`LoopHandle`]: making one schedules, with
//! `call_soon_threadsafe`, a callback on the loop's thread that arms a `call_at` timer; the
//! timer's handle stays on that thread (in a thread-local table, by the sleep's id), and
//! dropping the sleep schedules its cancellation the same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use loop_api::{EventLoop, LoopHandle, TimerHandle};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The armed timers of the sleeps whose loop runs on this thread, by sleep id.
    static ARMED: RefCell<HashMap<u64, TimerHandle>> = RefCell::new(HashMap::new());
}

/// hyper's `Timer` on the loop's clock (`EventLoop::time()`, so virtual time works too):
/// `now()` is the loop's time, and each sleep is a `call_at` timer of the loop, cancelled
/// when the sleep is dropped.
///
/// `LoopTimer::default()` uses the loop running where hyper asks for a sleep (hyper does so
/// while serving, inside the loop); [`LoopTimer::new`] names a loop. A sleep made where no
/// loop runs, with no loop named, never fires.
#[derive(Clone, Default)]
pub struct LoopTimer {
    handle: Option<LoopHandle>,
}

impl LoopTimer {
    /// A timer on loop `lp` (usable from any thread).
    pub fn new(lp: &EventLoop) -> Self {
        LoopTimer {
            handle: Some(lp.handle()),
        }
    }

    /// A sleep until `deadline` on the loop's clock.
    pub fn sleep_until_deadline(&self, deadline: Instant) -> LoopSleep {
        let state = Arc::new(SleepState::default());
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let handle = self
            .handle
            .clone()
            .or_else(|| loop_api::get_running_loop().ok().map(|lp| lp.handle()));
        if let Some(h) = &handle {
            let st = state.clone();
            // A closed loop never fires the sleep: hyper's connection is gone with it.
            let _ = h.call_soon_threadsafe(move || arm(id, deadline, st));
        }
        LoopSleep { id, state, handle }
    }
}

impl hyper::rt::Timer for LoopTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = hyper::rt::Timer::now(self);
        let deadline = now
            .checked_add(duration)
            .unwrap_or(now + Duration::from_secs(1 << 40));
        Box::pin(self.sleep_until_deadline(deadline))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.sleep_until_deadline(deadline))
    }

    fn now(&self) -> Instant {
        loop_api::get_running_loop().map_or_else(|_| Instant::now(), |lp| lp.time())
    }
}

impl fmt::Debug for LoopTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopTimer")
            .field("loop", &self.handle.as_ref().map_or("running", |_| "named"))
            .finish()
    }
}

#[derive(Default)]
struct SleepState {
    fired: AtomicBool,
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl SleepState {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// On the loop's thread: arms the `call_at` timer of sleep `id` (unless it was dropped).
fn arm(id: u64, deadline: Instant, st: Arc<SleepState>) {
    if st.cancelled.load(Ordering::Acquire) {
        return;
    }
    let Ok(lp) = loop_api::get_running_loop() else {
        return;
    };
    let fired = st.clone();
    let armed = lp.call_at(deadline, move || {
        ARMED.with(|a| a.borrow_mut().remove(&id));
        fired.fire();
    });
    if let Ok(timer) = armed {
        ARMED.with(|a| a.borrow_mut().insert(id, timer));
    }
}

/// One sleep of [`LoopTimer`]: `Send + Sync`, as hyper needs; dropping it cancels the loop's
/// timer.
pub struct LoopSleep {
    id: u64,
    state: Arc<SleepState>,
    handle: Option<LoopHandle>,
}

impl LoopSleep {
    /// How many sleeps have a timer armed on the loop of this thread (for tests: a dropped
    /// sleep leaves none).
    #[doc(hidden)]
    pub fn armed_on_this_thread() -> usize {
        ARMED.with(|a| a.borrow().len())
    }
}

impl Future for LoopSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self
            .state
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // The timer may have fired between the check and the registration.
        if self.state.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for LoopSleep {}

impl Drop for LoopSleep {
    fn drop(&mut self) {
        if self.state.fired.load(Ordering::Acquire) {
            return;
        }
        self.state.cancelled.store(true, Ordering::Release);
        if let Some(h) = &self.handle {
            let id = self.id;
            let _ = h.call_soon_threadsafe(move || {
                if let Some(timer) = ARMED.with(|a| a.borrow_mut().remove(&id)) {
                    timer.cancel();
                }
            });
        }
    }
}

impl fmt::Debug for LoopSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopSleep")
            .field("fired", &self.state.fired.load(Ordering::Relaxed))
            .finish()
    }
}
