//! `LoopHandle`: thread-safe calls and stopping from other threads (CONFORMANCE 3, 4).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use loop_api::{EventLoop, LoopError, LoopHandle, TimerHandle};

use crate::Factory;
use crate::util::{SyncLog, close, new_loop, run_forever, thread_sleep};

/// Stops the running loop (usable in a `Send` callback).
fn stop_running_loop() {
    loop_api::get_running_loop()
        .expect("a thread-safe callback ran outside its loop")
        .stop();
}

/// `call_soon_threadsafe` from another thread wakes a loop blocked in its poll (idle in
/// `run_forever`, nothing scheduled), and the callback runs on the loop's thread.
pub fn call_soon_threadsafe_wakes_blocked_loop(factory: Factory) {
    let lp = new_loop(factory);
    let loop_thread = thread::current().id();
    for _ in 0..3 {
        let handle = lp.handle();
        let on_loop_thread = Arc::new(AtomicBool::new(false));
        let flag = on_loop_thread.clone();
        let other = thread::spawn(move || {
            thread_sleep(50);
            handle
                .call_soon_threadsafe(move || {
                    flag.store(thread::current().id() == loop_thread, Ordering::SeqCst);
                    stop_running_loop();
                })
                .expect("call_soon_threadsafe");
        });
        run_forever(&lp);
        other.join().expect("thread");
        assert!(
            on_loop_thread.load(Ordering::SeqCst),
            "a thread-safe callback ran off the loop's thread"
        );
    }
    close(&lp);
}

/// On the loop's own thread, `call_soon_threadsafe` keeps FIFO order with `call_soon`.
pub fn call_soon_threadsafe_keeps_fifo_with_call_soon(factory: Factory) {
    let lp = new_loop(factory);
    let log = SyncLog::new();
    let handle = lp.handle();
    for i in 0..20 {
        let l = log.clone();
        if i % 2 == 0 {
            lp.call_soon(move || l.push(i)).expect("call_soon");
        } else {
            handle
                .call_soon_threadsafe(move || l.push(i))
                .expect("call_soon_threadsafe");
        }
    }
    // The same from inside a running callback.
    let (lp2, l) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        let h = lp2.handle();
        for i in 20..40 {
            let l = l.clone();
            if i % 3 == 0 {
                h.call_soon_threadsafe(move || l.push(i))
                    .expect("call_soon_threadsafe");
            } else {
                lp2.call_soon(move || l.push(i)).expect("call_soon");
            }
        }
        h.call_soon_threadsafe(stop_running_loop)
            .expect("call_soon_threadsafe");
    })
    .expect("call_soon");
    run_forever(&lp);
    assert_eq!(
        log.get(),
        (0..40).collect::<Vec<_>>(),
        "call_soon_threadsafe on the loop's thread broke FIFO order with call_soon"
    );
    close(&lp);
}

/// Shared state of [`threadsafe_calls_mixed_with_timers_run_once`].
struct Churn {
    lp: EventLoop,
    timers: RefCell<Vec<(TimerHandle, Rc<Cell<u32>>)>>,
    total_calls: Arc<AtomicUsize>,
    expected_calls: usize,
    rounds: Cell<u64>,
}

fn churn(c: Rc<Churn>) {
    if c.total_calls.load(Ordering::SeqCst) == c.expected_calls {
        // All thread-safe calls ran: stop after the last timer (ties keep insertion order).
        let last = c
            .timers
            .borrow()
            .iter()
            .map(|(t, _)| t.when())
            .max()
            .unwrap_or_else(|| c.lp.time());
        let lp = c.lp.clone();
        c.lp.call_at(last, move || lp.stop()).expect("call_at");
        return;
    }
    let round = c.rounds.get();
    c.rounds.set(round + 1);
    for k in 0..10u64 {
        let fired = Rc::new(Cell::new(0u32));
        let f = fired.clone();
        let delay = Duration::from_micros((round * 7 + k * 131) % 2000);
        let t =
            c.lp.call_later(delay, move || f.set(f.get() + 1))
                .expect("call_later");
        if k % 2 == 1 {
            t.cancel();
        }
        c.timers.borrow_mut().push((t, fired));
    }
    let c2 = c.clone();
    c.lp.call_later(Duration::from_micros(200), move || churn(c2))
        .expect("call_later");
}

/// Thousands of thread-safe calls from 4 threads, mixed with timers being created and
/// cancelled on the loop: each call runs exactly once, on the loop's thread, in each thread's
/// order; each timer runs once unless cancelled, then never.
pub fn threadsafe_calls_mixed_with_timers_run_once(factory: Factory) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 2500;
    let lp = new_loop(factory);
    let counts: Arc<Vec<AtomicU32>> = Arc::new(
        (0..THREADS * PER_THREAD)
            .map(|_| AtomicU32::new(0))
            .collect(),
    );
    let last_seen: Arc<Vec<AtomicUsize>> =
        Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
    let out_of_order = Arc::new(AtomicUsize::new(0));
    let off_thread = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let loop_thread = thread::current().id();
    let start = Arc::new(Barrier::new(THREADS + 1));
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let h: LoopHandle = lp.handle();
        let (counts, last_seen, ooo, off, total, start) = (
            counts.clone(),
            last_seen.clone(),
            out_of_order.clone(),
            off_thread.clone(),
            total.clone(),
            start.clone(),
        );
        threads.push(thread::spawn(move || {
            start.wait();
            for i in 0..PER_THREAD {
                let (counts, last_seen, ooo, off, total) = (
                    counts.clone(),
                    last_seen.clone(),
                    ooo.clone(),
                    off.clone(),
                    total.clone(),
                );
                h.call_soon_threadsafe(move || {
                    counts[t * PER_THREAD + i].fetch_add(1, Ordering::SeqCst);
                    // Calls from one thread run in that thread's order.
                    if last_seen[t].swap(i + 1, Ordering::SeqCst) != i {
                        ooo.fetch_add(1, Ordering::SeqCst);
                    }
                    if thread::current().id() != loop_thread {
                        off.fetch_add(1, Ordering::SeqCst);
                    }
                    total.fetch_add(1, Ordering::SeqCst);
                })
                .expect("call_soon_threadsafe");
                if i % 97 == 0 {
                    thread::yield_now();
                }
                if i % 500 == 0 {
                    thread_sleep(1);
                }
            }
        }));
    }
    let c = Rc::new(Churn {
        lp: lp.clone(),
        timers: RefCell::new(Vec::new()),
        total_calls: total.clone(),
        expected_calls: THREADS * PER_THREAD,
        rounds: Cell::new(0),
    });
    let c2 = c.clone();
    lp.call_soon(move || churn(c2)).expect("call_soon");
    start.wait();
    run_forever(&lp);
    for t in threads {
        t.join().expect("caller thread");
    }
    let wrong: Vec<(usize, u32)> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| (i, n.load(Ordering::SeqCst)))
        .filter(|&(_, n)| n != 1)
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "thread-safe calls that did not run exactly once (index, runs): {wrong:?}"
    );
    assert_eq!(
        out_of_order.load(Ordering::SeqCst),
        0,
        "calls from one thread ran out of order"
    );
    assert_eq!(
        off_thread.load(Ordering::SeqCst),
        0,
        "thread-safe callbacks ran off the loop's thread"
    );
    for (t, fired) in c.timers.borrow().iter() {
        let want = u32::from(!t.cancelled());
        assert_eq!(
            fired.get(),
            want,
            "a timer (cancelled: {}) ran {} times",
            t.cancelled(),
            fired.get()
        );
    }
    close(&lp);
}

/// `LoopHandle::stop()` from another thread wakes a blocked loop and stops it.
pub fn loop_handle_stop_wakes_blocked_loop(factory: Factory) {
    let lp = new_loop(factory);
    let handle = lp.handle();
    let other = thread::spawn(move || {
        thread_sleep(50);
        handle.stop();
    });
    run_forever(&lp);
    other.join().expect("thread");
    // A far timer pending does not keep the loop asleep either.
    lp.call_later(Duration::from_secs(3600), || {})
        .expect("call_later");
    let handle = lp.handle();
    let other = thread::spawn(move || {
        thread_sleep(20);
        handle.stop();
    });
    run_forever(&lp);
    other.join().expect("thread");
    close(&lp);
}

/// A thread-safe call made before `run_forever()` runs once the loop starts.
pub fn threadsafe_call_before_run_forever_runs(factory: Factory) {
    let lp = new_loop(factory);
    let handle = lp.handle();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    thread::spawn(move || {
        handle
            .call_soon_threadsafe(move || {
                r.store(true, Ordering::SeqCst);
                stop_running_loop();
            })
            .expect("call_soon_threadsafe");
    })
    .join()
    .expect("thread");
    run_forever(&lp);
    assert!(
        ran.load(Ordering::SeqCst),
        "the early thread-safe call did not run"
    );
    close(&lp);
}

/// After `close()`, `LoopHandle::call_soon_threadsafe` is `Closed` from any thread;
/// `is_closed()` says so and `stop()` is harmless. `LoopHandle` is `Send + Sync`.
pub fn loop_handle_after_close_is_closed(factory: Factory) {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<LoopHandle>();
    let lp = new_loop(factory);
    let handle = lp.handle();
    assert!(!handle.is_closed());
    close(&lp);
    assert!(handle.is_closed());
    let r = handle.call_soon_threadsafe(|| {});
    assert!(
        matches!(r, Err(LoopError::Closed)),
        "call_soon_threadsafe after close gave {r:?}, expected Closed"
    );
    let h2 = handle.clone();
    let from_thread = thread::spawn(move || {
        h2.stop();
        format!("{:?}", h2.call_soon_threadsafe(|| {}))
    })
    .join()
    .expect("thread");
    assert_eq!(from_thread, "Err(Closed)");
    // The handle outlives the loop.
    drop(lp);
    assert!(matches!(
        handle.call_soon_threadsafe(|| {}),
        Err(LoopError::Closed)
    ));
    handle.stop();
}
