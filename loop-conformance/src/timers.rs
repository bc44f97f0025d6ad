//! `call_later`, `call_at`, `sleep` and timer handles (CONFORMANCE 5-8).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use loop_api::{EventLoop, TimerHandle};

use crate::Factory;
use crate::util::{Counter, Log, block_on, close, new_loop, run_forever, run_once, stopper};

/// Schedules `f` at `when` and returns the handle, panicking on failure.
fn at(lp: &EventLoop, when: Instant, f: impl FnOnce() + 'static) -> TimerHandle {
    lp.call_at(when, f).expect("call_at")
}

/// Schedules a callback after each delay; each records the loop's time when it runs, and
/// must never see a time before its deadline.
fn check_never_early(lp: &EventLoop, delays: &[Duration]) {
    let fired: Log<(usize, Instant, Instant)> = Log::new();
    let mut last = lp.time();
    for (i, &d) in delays.iter().enumerate() {
        let t0 = lp.time();
        let slot: Rc<RefCell<Option<Instant>>> = Rc::default();
        let (lp2, f, s) = (lp.clone(), fired.clone(), slot.clone());
        let h = lp
            .call_later(d, move || {
                let when = s.borrow().expect("deadline recorded");
                f.push((i, when, lp2.time()));
            })
            .expect("call_later");
        assert!(
            h.when() >= t0 + d,
            "call_later({d:?}) set a deadline before now + delay"
        );
        *slot.borrow_mut() = Some(h.when());
        last = last.max(h.when());
    }
    at(lp, last, stopper(lp));
    run_forever(lp);
    let fired = fired.get();
    assert_eq!(fired.len(), delays.len(), "not every timer fired");
    for (i, when, now) in fired {
        assert!(
            now >= when,
            "timer {i} (delay {:?}) fired {:?} before its deadline",
            delays[i],
            when - now
        );
    }
}

/// A timer never fires before its deadline on the loop's clock.
pub fn timers_never_fire_early(factory: Factory) {
    let lp = new_loop(factory);
    let ms = Duration::from_millis;
    let delays = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(300),
        Duration::from_micros(999),
        ms(1),
        Duration::from_micros(1500),
        ms(5),
        ms(16),
        ms(50),
    ];
    check_never_early(&lp, &delays);
    close(&lp);
}

/// Sub-millisecond timers (300 µs, one after another) never fire early: the poll timeout
/// is rounded up, not down.
pub fn sub_millisecond_timers_never_fire_early(factory: Factory) {
    let lp = new_loop(factory);
    let early: Log<Duration> = Log::new();
    let done = Counter::new();
    fn chain(lp: EventLoop, left: usize, early: Log<Duration>, done: Counter) {
        if left == 0 {
            lp.stop();
            return;
        }
        let slot: Rc<RefCell<Option<Instant>>> = Rc::default();
        let (lp2, s) = (lp.clone(), slot.clone());
        let h = lp
            .call_later(Duration::from_micros(300), move || {
                let when = s.borrow().expect("deadline recorded");
                let now = lp2.time();
                if now < when {
                    early.push(when - now);
                }
                done.bump();
                chain(lp2, left - 1, early, done);
            })
            .expect("call_later");
        *slot.borrow_mut() = Some(h.when());
    }
    chain(lp.clone(), 50, early.clone(), done.clone());
    run_forever(&lp);
    assert_eq!(done.get(), 50);
    assert!(
        early.is_empty(),
        "300 µs timers fired early by {:?}",
        early.get()
    );
    close(&lp);
}

/// `sleep()` never returns before its delay on the loop's clock.
pub fn sleep_never_returns_early(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let early = block_on(&lp, async move {
        let mut early = Vec::new();
        for d in [0u64, 1, 300, 1000, 2500, 10_000] {
            let d = Duration::from_micros(d);
            let t0 = lp2.time();
            loop_api::sleep(d).await;
            let slept = lp2.time() - t0;
            if slept < d {
                early.push((d, slept));
            }
        }
        early
    });
    assert!(
        early.is_empty(),
        "sleep(delay) returned early: (delay, slept) = {early:?}"
    );
    close(&lp);
}

/// `lp.time()` never goes backwards.
pub fn loop_time_is_monotonic(factory: Factory) {
    let lp = new_loop(factory);
    let backwards = Counter::new();
    let last = Rc::new(RefCell::new(lp.time()));
    fn step(lp: EventLoop, left: usize, last: Rc<RefCell<Instant>>, backwards: Counter) {
        for _ in 0..10 {
            let now = lp.time();
            if now < *last.borrow() {
                backwards.bump();
            }
            *last.borrow_mut() = now;
        }
        if left == 0 {
            lp.stop();
        } else {
            let lp2 = lp.clone();
            lp.call_later(Duration::from_micros(50), move || {
                step(lp2, left - 1, last, backwards)
            })
            .expect("call_later");
        }
    }
    let (lp2, l, b) = (lp.clone(), last.clone(), backwards.clone());
    lp.call_soon(move || step(lp2, 100, l, b))
        .expect("call_soon");
    run_forever(&lp);
    assert_eq!(backwards.get(), 0, "lp.time() went backwards");
    close(&lp);
}

/// Deadlines in the past (and zero delays) scheduled during an iteration run on the next
/// iteration, earliest deadline first.
pub fn past_deadlines_run_next_iteration_in_order(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let (lp2, l) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        let now = lp2.time();
        let ago = |ms: u64| {
            now.checked_sub(Duration::from_millis(ms))
                .expect("clock too young")
        };
        let push = |name: &'static str| {
            let l = l.clone();
            move || l.push(name)
        };
        at(&lp2, ago(1), push("-1ms"));
        at(&lp2, ago(3), push("-3ms"));
        lp2.call_later(Duration::ZERO, push("zero"))
            .expect("call_later");
        at(&lp2, ago(2), push("-2ms"));
        lp2.call_later(Duration::ZERO, push("zero again"))
            .expect("call_later");
        at(&lp2, ago(1000), push("-1s"));
    })
    .expect("call_soon");
    run_once(&lp);
    assert!(
        log.is_empty(),
        "timers scheduled during an iteration ran in that same iteration: {:?}",
        log.get()
    );
    run_once(&lp);
    assert_eq!(
        log.get(),
        ["-1s", "-3ms", "-2ms", "-1ms", "zero", "zero again"],
        "due timers must all run on the next iteration, earliest deadline first"
    );
    close(&lp);
}

/// Timers with equal deadlines run in the order they were scheduled (mixed with earlier and
/// later deadlines, so a heap that is not stable shows).
pub fn equal_deadlines_keep_insertion_order(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let base = lp.time() + Duration::from_millis(2);
    let deadlines = [
        base,
        base - Duration::from_millis(1),
        base + Duration::from_millis(1),
    ];
    let mut expected = Vec::new();
    for i in 0..300usize {
        let group = (i * 7) % 3;
        let l = log.clone();
        at(&lp, deadlines[group], move || l.push(i));
        expected.push((deadlines[group], i));
    }
    at(&lp, deadlines[2], stopper(&lp));
    run_forever(&lp);
    expected.sort_by_key(|&(when, _)| when); // stable: insertion order within a deadline
    let expected: Vec<usize> = expected.into_iter().map(|(_, i)| i).collect();
    assert_eq!(
        log.get(),
        expected,
        "equal deadlines must keep insertion order"
    );
    close(&lp);
}

/// Timers fire in deadline order overall, across iterations.
pub fn timers_fire_in_deadline_order(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let mut expected = Vec::new();
    let mut x: u64 = 12345;
    let mut last = lp.time();
    for i in 0..200usize {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let delay = Duration::from_micros((x >> 33) % 20_000);
        let l = log.clone();
        let h = lp.call_later(delay, move || l.push(i)).expect("call_later");
        expected.push((h.when(), i));
        last = last.max(h.when());
    }
    at(&lp, last, stopper(&lp));
    run_forever(&lp);
    expected.sort_by_key(|&(when, _)| when);
    let expected: Vec<usize> = expected.into_iter().map(|(_, i)| i).collect();
    assert_eq!(log.get(), expected, "timers fired out of deadline order");
    close(&lp);
}

/// A cancelled timer never runs, also when a timer due in the same iteration cancels it.
pub fn cancelled_timer_never_runs(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let l = log.clone();
    let early = lp
        .call_later(Duration::from_millis(1), move || l.push("cancelled early"))
        .expect("call_later");
    early.cancel();

    let when = lp.time() + Duration::from_millis(3);
    let victim: Rc<RefCell<Option<TimerHandle>>> = Rc::default();
    let (v, l) = (victim.clone(), log.clone());
    at(&lp, when, move || {
        l.push("canceller");
        if let Some(t) = v.borrow_mut().take() {
            t.cancel();
        }
    });
    let l = log.clone();
    *victim.borrow_mut() = Some(at(&lp, when, move || l.push("cancelled by a sibling")));
    let l = log.clone();
    at(&lp, when + Duration::from_millis(2), move || l.push("kept"));
    at(&lp, when + Duration::from_millis(5), stopper(&lp));
    run_forever(&lp);
    assert_eq!(log.get(), ["canceller", "kept"], "a cancelled timer ran");
    close(&lp);
}

/// `TimerHandle::when()` is the deadline; `cancel()`/`cancelled()` work through clones and
/// cancelling twice is harmless.
pub fn timer_handle_when_and_cancel(factory: Factory) {
    let lp = new_loop(factory);
    let when = lp.time() + Duration::from_secs(3600);
    let ran = Counter::new();
    let r = ran.clone();
    let t = at(&lp, when, move || r.bump());
    assert_eq!(
        t.when(),
        when,
        "call_at's handle must report the deadline it was given"
    );
    let t0 = lp.time();
    let later = lp
        .call_later(Duration::from_millis(20), || {})
        .expect("call_later");
    assert!(later.when() >= t0 + Duration::from_millis(20));
    let twin = t.clone();
    assert!(!t.cancelled());
    t.cancel();
    assert!(
        t.cancelled() && twin.cancelled(),
        "cancelled() is false after cancel()"
    );
    t.cancel();
    twin.cancel();
    later.cancel();
    let r = ran.clone();
    lp.call_later(Duration::from_millis(1), move || r.bump())
        .expect("call_later");
    lp.call_later(Duration::from_millis(2), stopper(&lp))
        .expect("call_later");
    run_forever(&lp);
    assert_eq!(ran.get(), 1, "only the timer that was not cancelled runs");
    close(&lp);
}

/// 100 000 timers scheduled and cancelled never run, and the loop still works afterwards.
pub fn many_cancelled_timers_do_not_run(factory: Factory) {
    let lp = new_loop(factory);
    let ran = Counter::new();
    let mut handles = Vec::with_capacity(100_000);
    for i in 0..100_000u64 {
        let r = ran.clone();
        let delay = Duration::from_micros((i % 1000) * 10);
        handles.push(lp.call_later(delay, move || r.bump()).expect("call_later"));
    }
    for h in &handles {
        h.cancel();
    }
    drop(handles);
    // Churn while running: schedule and cancel again from inside the loop.
    let (lp2, r) = (lp.clone(), ran.clone());
    lp.call_soon(move || {
        for i in 0..100_000u64 {
            let r = r.clone();
            let delay = Duration::from_micros(i % 5000);
            lp2.call_later(delay, move || r.bump())
                .expect("call_later")
                .cancel();
        }
    })
    .expect("call_soon");
    lp.call_later(Duration::from_millis(20), stopper(&lp))
        .expect("call_later");
    run_forever(&lp);
    assert_eq!(ran.get(), 0, "{} cancelled timers ran", ran.get());
    let out = block_on(&lp, async {
        loop_api::sleep(Duration::from_millis(1)).await;
        7
    });
    assert_eq!(out, 7);
    close(&lp);
}

/// Huge delays (years, `Duration::MAX`) are accepted and cancellable: no overflow and no
/// panic, and a nearer timer or a thread-safe call still wakes the loop.
pub fn huge_delays_accepted_and_cancellable(factory: Factory) {
    let lp = new_loop(factory);
    let ran = Log::new();
    let year = Duration::from_secs(365 * 24 * 3600);
    let mut handles = Vec::new();
    for (name, d) in [
        ("MAX", Duration::MAX),
        ("100 years", year * 100),
        ("1 year", year),
    ] {
        let r = ran.clone();
        let t0 = lp.time();
        let h = lp
            .call_later(d, move || r.push(name))
            .unwrap_or_else(|e| panic!("call_later({name}) failed: {e}"));
        assert!(
            h.when() > t0,
            "call_later({name}) got a deadline that is not in the future"
        );
        handles.push(h);
    }
    if let Some(far) = lp.time().checked_add(year * 10) {
        let r = ran.clone();
        handles.push(at(&lp, far, move || r.push("call_at in 10 years")));
    }
    // A near timer still fires while the far ones are pending.
    lp.call_later(Duration::from_millis(5), stopper(&lp))
        .expect("call_later");
    run_forever(&lp);
    // Only far timers pending: the loop blocks with a huge timeout until another thread wakes it.
    let handle = lp.handle();
    let waker = std::thread::spawn(move || {
        crate::util::thread_sleep(20);
        handle
            .call_soon_threadsafe(|| loop_api::get_running_loop().expect("running loop").stop())
            .expect("call_soon_threadsafe");
    });
    run_forever(&lp);
    waker.join().expect("waker thread");
    for h in &handles {
        h.cancel();
        assert!(h.cancelled());
    }
    // Scheduling a huge timer from inside a running callback is fine too.
    let (lp2, r) = (lp.clone(), ran.clone());
    lp.call_soon(move || {
        let r2 = r.clone();
        lp2.call_later(Duration::MAX, move || r2.push("MAX from a callback"))
            .expect("call_later")
            .cancel();
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    run_once(&lp);
    assert!(ran.is_empty(), "far-future timers ran: {:?}", ran.get());
    close(&lp);
}
