//! `run_until_complete`, panics and the exception handler, debug mode, closing, identity
//! (CONFORMANCE 10-13).

use std::future::pending;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use loop_api::{AnyTask, ExceptionContext, LoopError, TaskError};

use crate::Factory;
use crate::util::{
    Counter, Log, block_on, close, is_closed_error, listener, new_loop, poll_once, run_forever,
    run_once, socketpair, stopper,
};

/// `run_until_complete` returns the future's output, and can be called again.
pub fn run_until_complete_returns_output(factory: Factory) {
    let lp = new_loop(factory);
    let out = lp
        .run_until_complete(async { 6 * 7 })
        .expect("run_until_complete");
    assert_eq!(out, 42);
    let out = lp
        .run_until_complete(async {
            loop_api::sleep(Duration::from_millis(1)).await;
            String::from("after a sleep")
        })
        .expect("run_until_complete");
    assert_eq!(out, "after a sleep");
    assert!(
        !lp.is_running(),
        "the loop still reports running after run_until_complete"
    );
    close(&lp);
}

/// A future that stops the loop before finishing gives `StoppedBeforeComplete`, and the loop
/// can run again.
pub fn run_until_complete_stopped_before_complete(factory: Factory) {
    let lp = new_loop(factory);
    let res = lp.run_until_complete(async {
        loop_api::get_running_loop().expect("running loop").stop();
        loop_api::sleep(Duration::from_secs(3600)).await;
    });
    assert!(
        matches!(res, Err(LoopError::StoppedBeforeComplete)),
        "expected StoppedBeforeComplete, got {res:?}"
    );
    // Stopped by a plain callback this time.
    lp.call_soon(stopper(&lp)).expect("call_soon");
    let res = lp.run_until_complete(pending::<()>());
    assert!(
        matches!(res, Err(LoopError::StoppedBeforeComplete)),
        "got {res:?}"
    );
    assert_eq!(
        block_on(&lp, async { 1 }),
        1,
        "the loop is not reusable after StoppedBeforeComplete"
    );
    close(&lp);
}

/// `run_forever`/`run_until_complete` from inside a callback or task is `AlreadyRunning`.
pub fn nested_run_is_already_running(factory: Factory) {
    let lp = new_loop(factory);
    let seen: Log<String> = Log::new();
    let (lp2, s) = (lp.clone(), seen.clone());
    lp.call_soon(move || {
        s.push(format!("{:?}", lp2.run_forever()));
        s.push(format!("{:?}", lp2.run_until_complete(async {})));
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    let lp2 = lp.clone();
    let in_task = block_on(&lp, async move {
        (
            format!("{:?}", lp2.run_forever()),
            format!("{:?}", lp2.run_until_complete(async { 1 })),
        )
    });
    let all = [seen.get(), vec![in_task.0, in_task.1]].concat();
    for s in &all {
        assert_eq!(
            s, "Err(AlreadyRunning)",
            "a nested run must be refused with AlreadyRunning"
        );
    }
    assert_eq!(all.len(), 4);
    close(&lp);
}

/// A future that panics makes `run_until_complete` return `Panicked(message)`; the loop stays
/// usable.
pub fn run_until_complete_reports_panic(factory: Factory) {
    let lp = new_loop(factory);
    let res = lp.run_until_complete(async {
        loop_api::sleep(Duration::from_millis(1)).await;
        if loop_api::get_running_loop().is_ok() {
            panic!("run-until-complete-boom");
        }
    });
    match res {
        Err(LoopError::Panicked(m)) => {
            assert!(m.contains("run-until-complete-boom"), "message: {m}")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(
        block_on(&lp, async { 5 }),
        5,
        "the loop is not reusable after a panic"
    );
    close(&lp);
}

/// A panicking callback goes to the exception handler with the panic message and the
/// callback's name; the rest of the iteration runs and the loop stays usable.
pub fn panicking_callback_goes_to_exception_handler(factory: Factory) {
    let lp = new_loop(factory);
    let reports: Log<ExceptionContext> = Log::new();
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.push(ctx.clone())
    })));
    let after = Counter::new();
    lp.call_soon(|| panic!("callback-boom")).expect("call_soon");
    let a = after.clone();
    lp.call_soon(move || a.bump()).expect("call_soon");
    run_once(&lp);
    assert_eq!(
        after.get(),
        1,
        "the callback after the panicking one did not run"
    );
    let reports = reports.get();
    assert_eq!(reports.len(), 1, "expected one report, got {reports:?}");
    let ctx = &reports[0];
    assert!(!ctx.message.is_empty(), "the report has no message");
    assert!(
        ctx.panic
            .as_deref()
            .is_some_and(|p| p.contains("callback-boom")),
        "the report lacks the panic message: {ctx:?}"
    );
    assert!(
        ctx.callback
            .as_deref()
            .is_some_and(|c| c.contains("panicking_callback_goes_to_exception_handler")),
        "the report lacks the callback's name (Handle::name()): {ctx:?}"
    );
    assert_eq!(
        block_on(&lp, async { 3 }),
        3,
        "the loop is not reusable after a panicking callback"
    );
    close(&lp);
}

/// An exception handler that panics is contained: the loop goes on.
pub fn panicking_exception_handler_is_contained(factory: Factory) {
    let lp = new_loop(factory);
    let calls = Counter::new();
    let c = calls.clone();
    lp.set_exception_handler(Some(Box::new(move |_: &ExceptionContext| {
        c.bump();
        panic!("handler-boom");
    })));
    lp.call_soon(|| panic!("callback-boom")).expect("call_soon");
    let after = Counter::new();
    let a = after.clone();
    lp.call_soon(move || a.bump()).expect("call_soon");
    lp.call_soon(stopper(&lp)).expect("call_soon");
    run_forever(&lp);
    assert_eq!(calls.get(), 1, "the handler was not called once");
    assert_eq!(
        after.get(),
        1,
        "the loop did not go on after the handler panicked"
    );
    // A direct call_exception_handler() is contained as well.
    lp.call_exception_handler(&ExceptionContext {
        message: "direct".into(),
        ..ExceptionContext::default()
    });
    lp.set_exception_handler(None);
    assert_eq!(block_on(&lp, async { 9 }), 9);
    close(&lp);
}

/// Debug mode reports a callback slower than `slow_callback_duration` once, with its name and
/// duration; without debug mode nothing is reported.
pub fn debug_mode_reports_slow_callback(factory: Factory) {
    let lp = new_loop(factory);
    assert_eq!(
        lp.slow_callback_duration(),
        Duration::from_millis(100),
        "the default slow_callback_duration is asyncio's 100 ms"
    );
    let reports: Log<ExceptionContext> = Log::new();
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.push(ctx.clone())
    })));
    lp.set_slow_callback_duration(Duration::from_millis(10));
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(10));

    // Not in debug mode: no report. The callback stops the loop itself, so it runs alone.
    lp.set_debug(false);
    assert!(!lp.get_debug());
    let lp2 = lp.clone();
    lp.call_soon(move || {
        std::thread::sleep(Duration::from_millis(30));
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    assert!(
        reports.is_empty(),
        "a slow callback was reported outside debug mode: {:?}",
        reports.get()
    );

    lp.set_debug(true);
    assert!(lp.get_debug());
    let lp2 = lp.clone();
    lp.call_soon(move || {
        std::thread::sleep(Duration::from_millis(30));
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    let reports = reports.get();
    assert_eq!(
        reports.len(),
        1,
        "expected one slow-callback report, got {reports:?}"
    );
    let ctx = &reports[0];
    assert!(!ctx.message.is_empty());
    assert!(
        ctx.duration.is_some_and(|d| d >= Duration::from_millis(30)),
        "the report must carry the callback's duration (at least 30 ms): {ctx:?}"
    );
    assert!(
        ctx.callback
            .as_deref()
            .is_some_and(|c| c.contains("debug_mode_reports_slow_callback")),
        "the report must name the callback: {ctx:?}"
    );
    lp.set_debug(false);
    close(&lp);
}

/// Debug mode reports a task poll slower than `slow_callback_duration` once, with the task's
/// name, where it was made (`created_at`) and the duration; a fast poll, and any poll outside
/// debug mode, is not reported.
pub fn debug_mode_reports_slow_task_poll_with_name_and_site(factory: Factory) {
    let lp = new_loop(factory);
    let reports: Log<ExceptionContext> = Log::new();
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.push(ctx.clone())
    })));
    lp.set_slow_callback_duration(Duration::from_millis(10));
    let slow_poll = || async {
        loop_api::yield_now().await;
        std::thread::sleep(Duration::from_millis(30));
    };
    for debug in [false, true] {
        lp.set_debug(debug);
        let fast = lp.create_task_named("fast-task", async {}).expect("fast");
        let slow = lp
            .create_task_named("slow-task", slow_poll())
            .expect("slow");
        let site = AnyTask::from(&slow).created_at();
        block_on(&lp, async move { (fast.await, slow.await) })
            .1
            .expect("the slow task");
        let got = reports.get();
        if !debug {
            assert!(got.is_empty(), "reported outside debug mode: {got:?}");
            continue;
        }
        assert_eq!(got.len(), 1, "expected one slow-poll report, got {got:?}");
        let ctx = &got[0];
        assert_eq!(ctx.task.as_deref(), Some("slow-task"), "{ctx:?}");
        assert_eq!(
            ctx.created_at,
            Some(site),
            "the task's creation site: {ctx:?}"
        );
        assert!(
            ctx.duration.is_some_and(|d| d >= Duration::from_millis(30)),
            "the report must carry the poll's duration (at least 30 ms): {ctx:?}"
        );
        let text = ctx.to_string();
        assert!(
            text.contains("slow-task") && text.contains(&site.to_string()),
            "the printed report names the task and its site: {text}"
        );
    }
    lp.set_debug(false);
    close(&lp);
}

/// In debug mode, closing a loop reports each task that never ran (asyncio's "Task was
/// destroyed but it is pending!"), once, with its name and where it was made; a task that ran
/// and is still waiting is not reported, nor is anything outside debug mode.
pub fn debug_mode_reports_a_task_that_never_ran_at_close(factory: Factory) {
    for debug in [false, true] {
        let lp = new_loop(factory);
        lp.set_debug(debug);
        let reports: Log<ExceptionContext> = Log::new();
        let r = reports.clone();
        lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
            r.push(ctx.clone())
        })));
        let waiting = lp
            .create_task_named("waiting", pending::<()>())
            .expect("task");
        run_once(&lp);
        assert_eq!(
            AnyTask::from(&waiting).polls(),
            1,
            "the first task ran once"
        );
        let never = lp
            .create_task_named("never-ran", pending::<()>())
            .expect("task");
        let site = AnyTask::from(&never).created_at();
        close(&lp);
        let got = reports.get();
        if !debug {
            assert!(got.is_empty(), "reported outside debug mode: {got:?}");
            continue;
        }
        assert_eq!(got.len(), 1, "expected one report, for never-ran: {got:?}");
        let ctx = &got[0];
        assert_eq!(ctx.task.as_deref(), Some("never-ran"), "{ctx:?}");
        assert_eq!(
            ctx.created_at,
            Some(site),
            "the task's creation site: {ctx:?}"
        );
        assert!(
            ctx.message.contains("was destroyed but it is pending"),
            "{ctx:?}"
        );
        drop(lp);
        assert_eq!(reports.len(), 1, "reported again when the loop was dropped");
    }
}

/// `close()` twice is fine.
pub fn close_twice_is_ok(factory: Factory) {
    let lp = new_loop(factory);
    assert!(!lp.is_closed());
    lp.close().expect("first close");
    assert!(lp.is_closed());
    lp.close()
        .expect("second close must be Ok (close is idempotent)");
    assert!(lp.is_closed());
    // A loop that never ran closes too, and so does one that ran.
    let lp = new_loop(factory);
    run_once(&lp);
    close(&lp);
    close(&lp);
}

/// `close()` while running is `CloseWhileRunning` and leaves the loop working.
pub fn close_while_running_is_refused(factory: Factory) {
    let lp = new_loop(factory);
    let seen: Log<String> = Log::new();
    let (lp2, s) = (lp.clone(), seen.clone());
    lp.call_soon(move || {
        s.push(format!("{:?}", lp2.close()));
        s.push(format!("closed={}", lp2.is_closed()));
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    assert_eq!(seen.get(), ["Err(CloseWhileRunning)", "closed=false"]);
    assert_eq!(
        block_on(&lp, async { 1 }),
        1,
        "the loop stopped working after a refused close"
    );
    close(&lp);
}

/// After `close()` every scheduling, I/O and executor method is `Closed` (the executor's
/// future `Cancelled`), and `remove_reader`/`remove_writer` return false.
pub fn closed_loop_refuses_everything(factory: Factory) {
    let lp = new_loop(factory);
    let (a, _b) = socketpair();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
    lp.add_reader(fd, || {}).expect("add_reader");
    let handle = lp.handle();
    close(&lp);
    let closed = |what: &str, r: Result<(), LoopError>| {
        assert!(
            matches!(r, Err(LoopError::Closed)),
            "{what} on a closed loop gave {r:?}, expected Closed"
        );
    };
    closed("call_soon", lp.call_soon(|| {}).map(drop));
    closed("call_later", lp.call_later(Duration::ZERO, || {}).map(drop));
    closed("call_at", lp.call_at(lp.time(), || {}).map(drop));
    closed("create_task", lp.create_task(async {}).map(drop));
    closed(
        "create_task_named",
        lp.create_task_named("t", async {}).map(drop),
    );
    closed("run_forever", lp.run_forever());
    closed("run_until_complete", lp.run_until_complete(async {}));
    closed("add_reader", lp.add_reader(fd, || {}));
    closed("add_writer", lp.add_writer(fd, || {}));
    closed("call_soon_threadsafe", handle.call_soon_threadsafe(|| {}));
    closed(
        "LoopHandle::call_soon_threadsafe",
        lp.handle().call_soon_threadsafe(|| {}),
    );
    assert!(
        !lp.remove_reader(fd),
        "remove_reader on a closed loop must return false"
    );
    assert!(
        !lp.remove_writer(fd),
        "remove_writer on a closed loop must return false"
    );
    match poll_once(lp.run_in_executor(|| 1)) {
        Poll::Ready(Err(TaskError::Cancelled)) => {}
        other => panic!("run_in_executor on a closed loop gave {other:?}, expected Cancelled"),
    }
    let (l, addr) = listener();
    let (s, _peer) = crate::util::tcp_pair();
    let io_checks: [(&str, Poll<std::io::Error>); 4] = [
        (
            "sock_accept",
            poll_once(lp.sock_accept(&l)).map(|r| r.expect_err("accepted on a closed loop")),
        ),
        (
            "sock_connect",
            poll_once(lp.sock_connect(addr)).map(|r| r.expect_err("connected on a closed loop")),
        ),
        (
            "sock_recv",
            poll_once(lp.sock_recv(&s, Vec::with_capacity(8)))
                .map(|(r, _)| r.expect_err("received on a closed loop")),
        ),
        (
            "sock_sendall",
            poll_once(lp.sock_sendall(&s, vec![1]))
                .map(|(r, _)| r.expect_err("sent on a closed loop")),
        ),
    ];
    for (what, polled) in io_checks {
        match polled {
            Poll::Ready(e) => assert!(
                is_closed_error(&e),
                "{what} on a closed loop failed with {e:?}, not Closed"
            ),
            Poll::Pending => {
                panic!("{what} on a closed loop is pending instead of failing with Closed")
            }
        }
    }
    lp.stop();
    assert!(lp.is_closed() && !lp.is_running());
}

/// Closing drops pending callbacks and timers at once, and ends unfinished tasks `Cancelled`.
pub fn close_drops_pending_callbacks_and_cancels_tasks(factory: Factory) {
    let lp = new_loop(factory);
    let token = Rc::new(());
    let (lp2, t1, t2) = (lp.clone(), token.clone(), token.clone());
    lp.call_soon(move || {
        // Scheduled during the last iteration, so still pending when the loop closes.
        lp2.call_soon(move || drop(t1)).expect("call_soon");
    })
    .expect("call_soon");
    lp.call_later(Duration::from_secs(3600), move || drop(t2))
        .expect("call_later");
    let t3 = token.clone();
    let task = lp
        .create_task(async move {
            let _keep = t3;
            pending::<()>().await;
        })
        .expect("create_task");
    run_once(&lp);
    assert!(!task.done());
    assert_eq!(Rc::strong_count(&token), 4);
    close(&lp);
    assert_eq!(
        Rc::strong_count(&token),
        1,
        "close() must drop pending callbacks, timers and tasks (their captures are still alive)"
    );
    assert!(task.done(), "an unfinished task is not done after close()");
    match poll_once(task) {
        Poll::Ready(Err(TaskError::Cancelled)) => {}
        other => {
            panic!("an unfinished task must end Cancelled when its loop closes, got {other:?}")
        }
    }
}

/// A loop equals its clones and no other loop; it names its backend.
pub fn loop_equality_is_identity(factory: Factory) {
    let lp = new_loop(factory);
    let other = new_loop(factory);
    assert_eq!(lp, lp.clone());
    assert_ne!(lp, other, "two loops compare equal");
    assert!(!lp.backend_name().is_empty(), "backend_name() is empty");
    let lp2 = lp.clone();
    let inside = block_on(&lp, async move {
        loop_api::get_running_loop().expect("running loop") == lp2
    });
    assert!(inside);
    close(&lp);
    close(&other);
}
