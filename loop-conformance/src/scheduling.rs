//! `call_soon`, iterations and `stop()` (CONFORMANCE 1, 2, 7, 9).

use crate::Factory;
use crate::util::{Counter, Log, close, new_loop, run_forever, run_once, stopper};

/// `call_soon` callbacks run in FIFO order, each exactly once.
pub fn call_soon_runs_in_fifo_order(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    for i in 0..1000 {
        let log = log.clone();
        lp.call_soon(move || log.push(i)).expect("call_soon");
    }
    lp.call_soon(stopper(&lp)).expect("call_soon");
    run_forever(&lp);
    assert_eq!(
        log.get(),
        (0..1000).collect::<Vec<_>>(),
        "call_soon callbacks ran out of FIFO order"
    );
    // Nothing runs twice on a later iteration.
    run_once(&lp);
    assert_eq!(log.len(), 1000, "a call_soon callback ran more than once");
    close(&lp);
}

/// `call_soon` never runs the callback inline, also when called from a running callback.
pub fn call_soon_never_runs_inline(factory: Factory) {
    let lp = new_loop(factory);
    let ran = Counter::new();
    let r = ran.clone();
    lp.call_soon(move || r.bump()).expect("call_soon");
    assert_eq!(
        ran.get(),
        0,
        "call_soon ran its callback inline (before the loop ran)"
    );

    let inner_ran = Counter::new();
    let (lp2, ir) = (lp.clone(), inner_ran.clone());
    lp.call_soon(move || {
        let ir2 = ir.clone();
        lp2.call_soon(move || ir2.bump()).expect("call_soon");
        assert_eq!(
            ir.get(),
            0,
            "call_soon ran its callback inline inside a running callback"
        );
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    assert_eq!(ran.get(), 1);
    assert_eq!(
        inner_ran.get(),
        0,
        "a callback scheduled during the last iteration ran in it"
    );
    run_once(&lp);
    assert_eq!(inner_ran.get(), 1);
    close(&lp);
}

/// One iteration runs only the callbacks ready when it began; one added meanwhile waits for
/// the next iteration (a callback that schedules another one and calls `stop()`).
pub fn iteration_runs_only_ready_callbacks(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let (lp2, l) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        l.push("first");
        let l2 = l.clone();
        lp2.call_soon(move || l2.push("second")).expect("call_soon");
        lp2.stop();
    })
    .expect("call_soon");
    let l = log.clone();
    lp.call_soon(move || l.push("sibling")).expect("call_soon");
    run_forever(&lp);
    assert_eq!(
        log.get(),
        ["first", "sibling"],
        "the iteration must run exactly the callbacks ready when it began"
    );
    run_once(&lp);
    assert_eq!(log.get(), ["first", "sibling", "second"]);
    close(&lp);
}

/// `stop()` lets the current iteration finish: callbacks after the one that stops still run.
pub fn stop_lets_iteration_finish(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    for i in 0..10 {
        let (lp2, l) = (lp.clone(), log.clone());
        lp.call_soon(move || {
            l.push(i);
            if i == 3 {
                lp2.stop();
            }
        })
        .expect("call_soon");
    }
    run_forever(&lp);
    assert_eq!(
        log.get(),
        (0..10).collect::<Vec<_>>(),
        "stop() cut the current iteration short"
    );
    assert!(!lp.is_running());
    close(&lp);
}

/// `stop()` before `run_forever()` runs exactly one iteration and returns.
pub fn stop_before_run_forever_runs_one_iteration(factory: Factory) {
    let lp = new_loop(factory);
    let iterations = Counter::new();
    // A callback that reschedules itself runs once per iteration.
    fn tick(lp: crate::EventLoop, n: Counter) {
        n.bump();
        let lp2 = lp.clone();
        lp.call_soon(move || tick(lp2, n)).expect("call_soon");
    }
    let (lp2, n) = (lp.clone(), iterations.clone());
    lp.call_soon(move || tick(lp2, n)).expect("call_soon");
    lp.stop();
    run_forever(&lp);
    assert_eq!(
        iterations.get(),
        1,
        "stop() before run_forever() must run exactly one iteration"
    );
    run_once(&lp);
    assert_eq!(iterations.get(), 2);
    // The stop request was consumed: the next run_forever() runs until stop() is called again.
    fn stop_at(lp: crate::EventLoop, n: Counter, at: usize) {
        if n.get() >= at {
            lp.stop();
        } else {
            let lp2 = lp.clone();
            lp.call_soon(move || stop_at(lp2, n, at))
                .expect("call_soon");
        }
    }
    let (lp2, n) = (lp.clone(), iterations.clone());
    lp.call_soon(move || stop_at(lp2, n, 6)).expect("call_soon");
    run_forever(&lp);
    assert!(
        iterations.get() >= 6,
        "run_forever() stopped after {} iterations: an earlier stop() request was not consumed",
        iterations.get()
    );
    close(&lp);
}

/// Across `stop()` and a restart every callback and timer runs exactly once: a ready event
/// is never dispatched twice.
pub fn stop_restart_runs_each_callback_once(factory: Factory) {
    let lp = new_loop(factory);
    let counts: Vec<Counter> = (0..20).map(|_| Counter::new()).collect();
    for (i, c) in counts.iter().enumerate() {
        let (lp2, c) = (lp.clone(), c.clone());
        let cb = move || {
            c.bump();
            if i % 5 == 4 {
                lp2.stop();
            }
        };
        if i % 2 == 0 {
            lp.call_soon(cb).expect("call_soon");
        } else {
            lp.call_later(std::time::Duration::ZERO, cb)
                .expect("call_later");
        }
    }
    // Callback 4 (a call_soon) stops the first run; then a few single iterations.
    run_forever(&lp);
    for _ in 0..5 {
        run_once(&lp);
    }
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(
            c.get(),
            1,
            "callback {i} ran {} times across stop/restart",
            c.get()
        );
    }
    close(&lp);
}

/// A cancelled handle never runs, also when an earlier callback of the same iteration
/// cancels it.
pub fn cancelled_handle_never_runs(factory: Factory) {
    let lp = new_loop(factory);
    let ran = Log::new();
    let r = ran.clone();
    let h = lp
        .call_soon(move || r.push("cancelled before the run"))
        .expect("call_soon");
    h.cancel();

    let victim_slot = std::rc::Rc::new(std::cell::RefCell::new(None::<loop_api::Handle>));
    let (slot, r) = (victim_slot.clone(), ran.clone());
    lp.call_soon(move || {
        r.push("canceller");
        if let Some(v) = slot.borrow_mut().take() {
            v.cancel();
        }
    })
    .expect("call_soon");
    let r = ran.clone();
    let victim = lp
        .call_soon(move || r.push("cancelled in the same iteration"))
        .expect("call_soon");
    *victim_slot.borrow_mut() = Some(victim);
    let r = ran.clone();
    lp.call_soon(move || r.push("after")).expect("call_soon");
    run_once(&lp);
    run_once(&lp);
    assert_eq!(ran.get(), ["canceller", "after"], "a cancelled handle ran");
    close(&lp);
}

/// `Handle::cancel()`/`cancelled()`: cancelling is visible through every clone and
/// cancelling twice is harmless.
pub fn handle_cancel_reports_cancelled(factory: Factory) {
    let lp = new_loop(factory);
    let ran = Counter::new();
    let r = ran.clone();
    let h = lp.call_soon(move || r.bump()).expect("call_soon");
    let twin = h.clone();
    assert!(!h.cancelled(), "a fresh handle reports cancelled()");
    h.cancel();
    assert!(
        h.cancelled() && twin.cancelled(),
        "cancelled() is false after cancel()"
    );
    h.cancel();
    twin.cancel();
    assert!(h.cancelled());
    let r = ran.clone();
    let kept = lp.call_soon(move || r.bump()).expect("call_soon");
    run_once(&lp);
    assert_eq!(ran.get(), 1, "only the handle that was not cancelled runs");
    assert!(!kept.cancelled(), "a handle that ran reports cancelled()");
    close(&lp);
}
