//! The running loop of this thread, and the futures built on it: [`sleep`], [`yield_now`].

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::LoopError;
use crate::event_loop::{EventLoop, WeakEventLoop};
use crate::handle::TimerHandle;

thread_local! {
    static RUNNING: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// Records `lp` as this thread's running loop until dropped (also on unwinding).
pub(crate) struct RunningGuard {
    previous: Option<EventLoop>,
}

impl RunningGuard {
    pub(crate) fn enter(lp: EventLoop) -> Self {
        RunningGuard {
            previous: RUNNING.with(|r| r.borrow_mut().replace(lp)),
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let ours = RUNNING.with(|r| std::mem::replace(&mut *r.borrow_mut(), previous));
        drop(ours);
    }
}

pub(crate) fn is_any_loop_running() -> bool {
    RUNNING.with(|r| r.borrow().is_some())
}

/// The loop running on this thread (inside a callback or task).
///
/// # Errors
/// [`LoopError::NoRunningLoop`] outside a running loop.
pub fn get_running_loop() -> Result<EventLoop, LoopError> {
    RUNNING
        .with(|r| r.borrow().clone())
        .ok_or(LoopError::NoRunningLoop)
}

/// Waits `delay` on the running loop's clock (asyncio's `sleep`). Never completes early.
///
/// # Panics
/// When polled outside a running loop (inside a task that panic is caught and the task ends
/// with `TaskError::Panicked`). Use [`EventLoop::call_later`] to build timers without one.
pub fn sleep(delay: Duration) -> Sleep {
    Sleep { delay, timer: None }
}

/// The future of [`sleep`]. It holds its loop weakly, so a sleep pending in one of the
/// loop's own tasks does not keep the loop alive.
#[derive(Debug)]
pub struct Sleep {
    delay: Duration,
    timer: Option<(WeakEventLoop, TimerHandle, Waker)>,
}

impl Sleep {
    fn arm(lp: &EventLoop, when: Instant, waker: &Waker) -> TimerHandle {
        let w = waker.clone();
        match lp.call_at(when, move || w.wake()) {
            Ok(t) => t,
            Err(e) => panic!("sleep() could not schedule its timer: {e}"),
        }
    }

    fn running_loop() -> EventLoop {
        match get_running_loop() {
            Ok(lp) => lp,
            Err(_) => panic!(
                "sleep() was polled outside a running event loop; run it in a task or run_until_complete"
            ),
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let armed = self.timer.take();
        let (lp, when, old) = match armed.and_then(|(weak, t, w)| Some((weak.upgrade()?, t, w))) {
            None => {
                let lp = Sleep::running_loop();
                let when = crate::event_loop::deadline_after(lp.time(), self.delay);
                (lp, when, None)
            }
            Some((lp, t, w)) => {
                if lp.time() >= t.when() {
                    return Poll::Ready(());
                }
                let when = t.when();
                (lp, when, Some((t, w)))
            }
        };
        let timer = match old {
            Some((t, w)) if w.will_wake(cx.waker()) => (t, w),
            Some((t, _)) => {
                t.cancel();
                (Sleep::arm(&lp, when, cx.waker()), cx.waker().clone())
            }
            None => (Sleep::arm(&lp, when, cx.waker()), cx.waker().clone()),
        };
        self.timer = Some((lp.downgrade(), timer.0, timer.1));
        crate::introspect::awaiting("sleep");
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((_, t, _)) = self.timer.take() {
            t.cancel();
        }
    }
}

/// Gives way to the other ready callbacks and tasks once (asyncio's `await sleep(0)`).
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        crate::introspect::awaiting("yield_now");
        Poll::Pending
    }
}
