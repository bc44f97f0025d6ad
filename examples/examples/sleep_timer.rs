//! A `sleep` built by hand from a `call_at` timer and a future, as in the seed text about
//! events in time.
//!
//! ```text
//! cargo run --example sleep_timer
//! ```
//!
//! The Python it re-tells: an `AsyncSleep` event that stores a target time and is awaited;
//! the loop decides how to wait for it. Here the event is [`AsyncSleep`], a future; the first
//! time it is polled it asks the loop for a timer (`call_at`) that wakes it. `asleep(d)`
//! waits twice for half of `d`, as the seed does, and two sleepers run at once: waiting on a
//! timer never blocks the other tasks (a `std::thread::sleep` would).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use loop_api::{EventLoop, LoopError, TimerHandle};

/// An event in time: ready once the loop's clock reaches `until`.
#[derive(Debug)]
struct AsyncSleep {
    lp: EventLoop,
    until: Instant,
    /// The timer that wakes us, and the waker it wakes (updated if the task's waker changes).
    armed: Option<(TimerHandle, Rc<RefCell<Waker>>)>,
}

impl AsyncSleep {
    fn until(lp: &EventLoop, until: Instant) -> Self {
        AsyncSleep {
            lp: lp.clone(),
            until,
            armed: None,
        }
    }
}

impl Future for AsyncSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.lp.time() >= self.until {
            return Poll::Ready(());
        }
        match &self.armed {
            // Already waiting: remember the latest waker, the timer will wake it.
            Some((_, waker)) => waker.borrow_mut().clone_from(cx.waker()),
            None => {
                let waker = Rc::new(RefCell::new(cx.waker().clone()));
                let w = waker.clone();
                match self
                    .lp
                    .call_at(self.until, move || w.borrow().wake_by_ref())
                {
                    Ok(timer) => self.armed = Some((timer, waker)),
                    // The loop is closing: nothing will ever wake us, so end the wait now.
                    Err(_) => return Poll::Ready(()),
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for AsyncSleep {
    /// A sleep given up early (its task was cancelled) cancels its timer.
    fn drop(&mut self) {
        if let Some((timer, _)) = self.armed.take() {
            timer.cancel();
        }
    }
}

/// Waits until `duration` has passed, in two halves (the seed's `asleep`).
async fn asleep(lp: EventLoop, name: &str, duration: Duration, start: Instant) {
    for half in 1..=2 {
        AsyncSleep::until(&lp, lp.time() + duration / 2).await;
        println!(
            "{:>7.3}s  {name}: half {half} of {duration:?} done",
            start.elapsed().as_secs_f64()
        );
    }
}

fn run() -> Result<(), LoopError> {
    let lp: EventLoop = loop_policy::get_event_loop()?;
    let start = Instant::now();
    println!("  0.000s  two sleepers start (0.4 s and 1 s)");
    let fast = lp.create_task(asleep(
        lp.clone(),
        "fast",
        Duration::from_millis(400),
        start,
    ))?;
    let slow = lp.create_task(asleep(lp.clone(), "slow", Duration::from_secs(1), start))?;
    let both = lp.run_until_complete(async move {
        let (a, b) = (fast.await, slow.await);
        a.and(b)
    });
    println!(
        "{:>7.3}s  both woke up, 1 s after they started: they slept side by side",
        start.elapsed().as_secs_f64()
    );
    lp.close()?;
    match both? {
        Ok(()) => Ok(()),
        Err(e) => Err(LoopError::Panicked(e.to_string())),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sleep_timer: {e}");
            ExitCode::FAILURE
        }
    }
}
