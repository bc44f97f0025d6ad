//! Tasks: start order, outcomes, cancellation, wakers from other threads, the running loop
//! (CONFORMANCE 11, 15, 16).

use std::cell::{Cell, RefCell};
use std::future::{Future, pending};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loop_api::{AnyTask, ExceptionContext, LoopError, Task, TaskError, TaskState};

use crate::Factory;
use crate::util::{Log, block_on, close, new_loop, run_forever, run_once, thread_sleep};

/// Tasks start in the order they were created.
pub fn tasks_start_in_creation_order(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let l = log.clone();
        tasks.push(
            lp.create_task(async move {
                l.push(i);
                loop_api::yield_now().await;
                i
            })
            .expect("create_task"),
        );
    }
    let outs = block_on(&lp, async move {
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(t.await.expect("task outcome"));
        }
        outs
    });
    assert_eq!(
        log.get(),
        (0..20).collect::<Vec<_>>(),
        "tasks did not start in creation order"
    );
    assert_eq!(outs, (0..20).collect::<Vec<_>>());
    close(&lp);
}

/// Awaiting a task gives its output, from `run_until_complete` and from another task.
pub fn awaiting_task_gives_output(factory: Factory) {
    let lp = new_loop(factory);
    let t = lp
        .create_task(async {
            loop_api::sleep(Duration::from_millis(1)).await;
            42
        })
        .expect("create_task");
    assert!(!t.done());
    assert_eq!(block_on(&lp, t), Ok(42));
    let lp2 = lp.clone();
    let out = block_on(&lp, async move {
        let inner = lp2.create_task(async { "inner" }).expect("create_task");
        let outer = lp2.create_task(inner).expect("create_task");
        outer.await
    });
    assert_eq!(out, Ok(Ok("inner")));
    close(&lp);
}

/// A cancelled task ends `Cancelled`: one cancelled while waiting, and one cancelled before it
/// started (whose body never runs). `cancel()` on a finished task is false.
pub fn cancelled_task_gives_cancelled(factory: Factory) {
    let lp = new_loop(factory);
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let never = lp
        .create_task(async move {
            s.set(true);
        })
        .expect("create_task");
    assert!(
        never.cancel(),
        "cancel() of a pending task must return true"
    );
    assert!(never.cancelling());
    let mut waiting = lp.create_task(pending::<()>()).expect("create_task");
    let (outcome, cancel_again) = block_on(&lp, async move {
        loop_api::yield_now().await;
        assert!(!waiting.done());
        assert!(waiting.cancel());
        let outcome = (&mut waiting).await;
        assert!(waiting.done());
        (outcome, waiting.cancel())
    });
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert!(
        !cancel_again,
        "cancel() of a finished task must return false"
    );
    assert_eq!(block_on(&lp, never), Err(TaskError::Cancelled));
    assert!(
        !started.get(),
        "a task cancelled before it started ran its body"
    );
    close(&lp);
}

/// A panicking task ends `Panicked(message)` and is reported to the exception handler with its
/// name; the loop goes on.
pub fn panicking_task_gives_panicked(factory: Factory) {
    let lp = new_loop(factory);
    let reports: Log<ExceptionContext> = Log::new();
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.push(ctx.clone())
    })));
    let t = lp
        .create_task_named("exploding-task", async {
            loop_api::yield_now().await;
            if loop_api::get_running_loop().is_ok() {
                panic!("task-boom");
            }
        })
        .expect("create_task_named");
    assert_eq!(t.name(), "exploding-task");
    let outcome = block_on(&lp, t);
    match outcome {
        Err(TaskError::Panicked(m)) => assert!(m.contains("task-boom"), "message: {m}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    let reports = reports.get();
    assert_eq!(reports.len(), 1, "expected one report, got {reports:?}");
    assert_eq!(reports[0].task.as_deref(), Some("exploding-task"));
    assert!(
        reports[0]
            .panic
            .as_deref()
            .is_some_and(|p| p.contains("task-boom"))
    );
    assert_eq!(block_on(&lp, async { 1 }), 1);
    close(&lp);
}

/// Dropping a `Task` does not cancel it: it runs to its end.
pub fn dropping_task_does_not_cancel_it(factory: Factory) {
    let lp = new_loop(factory);
    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let t = lp
        .create_task(async move {
            loop_api::sleep(Duration::from_millis(1)).await;
            f.set(true);
        })
        .expect("create_task");
    drop(t);
    let f = finished.clone();
    let dropped_before_start = lp
        .create_task(async move {
            loop_api::sleep(Duration::from_millis(2)).await;
            f.get()
        })
        .expect("create_task");
    let lp2 = lp.clone();
    let saw = Rc::new(Cell::new(None));
    let s = saw.clone();
    // Drop the handle of a task that already started, too.
    let watcher = lp2
        .create_task(async move {
            let v = dropped_before_start.await.expect("task");
            s.set(Some(v));
        })
        .expect("create_task");
    drop(watcher);
    // Wait (without a deadline: a cancelled task would make the watchdog fail the test).
    let (f, s) = (finished.clone(), saw.clone());
    block_on(&lp, async move {
        while !f.get() || s.get().is_none() {
            loop_api::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(
        finished.get(),
        "a task whose Task handle was dropped did not finish"
    );
    assert_eq!(
        saw.get(),
        Some(true),
        "a dropped task's awaiter did not finish"
    );
    close(&lp);
}

/// Cancellation is prompt: a task sleeping for an hour ends at once when cancelled.
pub fn cancel_is_prompt(factory: Factory) {
    let lp = new_loop(factory);
    let sleeper = lp
        .create_task(async {
            loop_api::sleep(Duration::from_secs(3600)).await;
            "woke up"
        })
        .expect("create_task");
    let outcome = block_on(&lp, async move {
        loop_api::sleep(Duration::from_millis(1)).await;
        assert!(sleeper.cancel());
        sleeper.await
    });
    assert_eq!(outcome, Err(TaskError::Cancelled));
    // Cancelled from a plain callback, the loop otherwise idle.
    let sleeper = lp
        .create_task(loop_api::sleep(Duration::from_secs(3600)))
        .expect("create_task");
    let shared = Rc::new(sleeper);
    let s2 = shared.clone();
    lp.call_later(Duration::from_millis(1), move || {
        s2.cancel();
    })
    .expect("call_later");
    let lp2 = lp.clone();
    let s3 = shared.clone();
    lp.call_soon(move || {
        fn poll_done(lp: crate::EventLoop, t: Rc<loop_api::Task<()>>) {
            if t.done() {
                lp.stop();
            } else {
                let lp2 = lp.clone();
                lp.call_later(Duration::from_millis(1), move || poll_done(lp2, t))
                    .expect("call_later");
            }
        }
        poll_done(lp2, s3);
    })
    .expect("call_soon");
    run_forever(&lp);
    assert!(shared.done());
    close(&lp);
}

/// What a [`ThreadWoken`] future shares with the thread that wakes it.
#[derive(Default)]
struct WakeSlot {
    ready: bool,
    waker: Option<Waker>,
}

/// A future completed by another thread through a stored `Waker`.
struct ThreadWoken(Arc<Mutex<WakeSlot>>);

impl Future for ThreadWoken {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.ready {
            return Poll::Ready(());
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A waker woken from another thread (a std thread that sleeps, then wakes it) resumes the
/// task; waking it again after the task finished is harmless.
pub fn waker_from_other_thread_resumes_task(factory: Factory) {
    let lp = new_loop(factory);
    for round in 0..3 {
        let slot = Arc::new(Mutex::new(WakeSlot::default()));
        let s = slot.clone();
        let waker_thread = std::thread::spawn(move || {
            // Wait for the task to store its waker, then wake it after a pause.
            let waker = loop {
                if let Some(w) = s.lock().unwrap_or_else(|p| p.into_inner()).waker.clone() {
                    break w;
                }
                thread_sleep(1);
            };
            thread_sleep(20);
            s.lock().unwrap_or_else(|p| p.into_inner()).ready = true;
            waker.wake_by_ref();
            waker.wake_by_ref();
            thread_sleep(5);
            waker.wake();
        });
        let out = block_on(&lp, async move {
            ThreadWoken(slot).await;
            round
        });
        assert_eq!(out, round);
        waker_thread.join().expect("waker thread");
    }
    // Stale wakes of finished tasks did no harm.
    assert_eq!(block_on(&lp, async { 1 }), 1);
    close(&lp);
}

/// Tasks that `yield_now()` take turns (FIFO rescheduling, like asyncio's `sleep(0)`).
pub fn yield_now_interleaves_tasks(factory: Factory) {
    let lp = new_loop(factory);
    let log = Log::new();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        let l = log.clone();
        tasks.push(
            lp.create_task(async move {
                for i in 0..3 {
                    l.push(format!("{name}{i}"));
                    loop_api::yield_now().await;
                }
            })
            .expect("create_task"),
        );
    }
    block_on(&lp, async move {
        for t in tasks {
            t.await.expect("task");
        }
    });
    assert_eq!(
        log.get(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
    close(&lp);
}

/// `get_running_loop()` inside a callback or task is the loop itself; outside a running loop
/// (before, after, or on another thread) it is `NoRunningLoop`.
pub fn get_running_loop_inside_and_outside(factory: Factory) {
    let lp = new_loop(factory);
    assert!(matches!(
        loop_api::get_running_loop(),
        Err(LoopError::NoRunningLoop)
    ));
    let same = Rc::new(Cell::new(false));
    let (lp2, s) = (lp.clone(), same.clone());
    lp.call_soon(move || {
        s.set(loop_api::get_running_loop().is_ok_and(|r| r == lp2));
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    assert!(
        same.get(),
        "get_running_loop() in a callback is not the loop"
    );
    let lp2 = lp.clone();
    let (in_task, elsewhere) = block_on(&lp, async move {
        let in_task = loop_api::get_running_loop().is_ok_and(|r| r == lp2);
        let elsewhere = std::thread::spawn(|| {
            matches!(loop_api::get_running_loop(), Err(LoopError::NoRunningLoop))
        })
        .join()
        .expect("thread");
        (in_task, elsewhere)
    });
    assert!(in_task, "get_running_loop() in a task is not the loop");
    assert!(
        elsewhere,
        "get_running_loop() on another thread must be NoRunningLoop"
    );
    assert!(
        matches!(loop_api::get_running_loop(), Err(LoopError::NoRunningLoop)),
        "get_running_loop() after the loop stopped must be NoRunningLoop"
    );
    close(&lp);
}

/// A task awaiting its own `Task` fails at once with a panic "Task cannot await on itself"
/// (asyncio's `RuntimeError`), reported like any task panic, instead of waiting forever.
pub fn a_task_awaiting_itself_panics(factory: Factory) {
    let lp = new_loop(factory);
    let reports: Log<ExceptionContext> = Log::new();
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.push(ctx.clone())
    })));
    let me: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let m = me.clone();
    let t = lp
        .create_task(async move {
            // Awaits its own handle (borrowed only while polled).
            std::future::poll_fn(|cx| match m.borrow_mut().as_mut() {
                Some(own) => Pin::new(own).poll(cx).map(drop),
                None => Poll::Ready(()),
            })
            .await;
        })
        .expect("create_task");
    *me.borrow_mut() = Some(t);
    run_once(&lp); // polls the task once
    let own = me.borrow_mut().take().expect("the task's handle");
    assert!(
        own.done(),
        "a task awaiting itself is still pending after its first poll: it waits for itself forever"
    );
    match block_on(&lp, own) {
        Err(TaskError::Panicked(m)) => {
            assert!(m.contains("cannot await on itself"), "message: {m}")
        }
        other => panic!("expected Panicked(\"Task cannot await on itself\"), got {other:?}"),
    }
    let reports = reports.get();
    assert_eq!(reports.len(), 1, "expected one report, got {reports:?}");
    assert!(
        reports[0]
            .panic
            .as_deref()
            .is_some_and(|p| p.contains("cannot await on itself"))
    );
    close(&lp);
}

/// `current_task()` is the task whose future is running, `None` in a plain callback and
/// outside the loop (asyncio's `current_task()`).
pub fn current_task_is_the_task_being_run(factory: Factory) {
    let lp = new_loop(factory);
    assert!(loop_api::current_task().is_none());
    let in_callback = Rc::new(Cell::new(true));
    let (lp2, c) = (lp.clone(), in_callback.clone());
    lp.call_soon(move || {
        c.set(loop_api::current_task().is_some());
        lp2.stop();
    })
    .expect("call_soon");
    run_forever(&lp);
    assert!(!in_callback.get(), "current_task() in a callback is Some");
    let lp2 = lp.clone();
    let t = lp
        .create_task_named("the-current-one", async move {
            loop_api::yield_now().await;
            let inner = lp2
                .create_task(async { loop_api::current_task().map(|t| t.name()) })
                .expect("create_task");
            let mine = loop_api::current_task().map(|t| t.name());
            (mine, inner.await)
        })
        .expect("create_task_named");
    let (mine, inner) = block_on(&lp, t).expect("task outcome");
    assert_eq!(mine.as_deref(), Some("the-current-one"));
    let inner = inner.expect("inner task outcome");
    assert!(
        inner.as_deref().is_some_and(|n| n != "the-current-one"),
        "current_task() in a second task gave {inner:?}"
    );
    assert!(loop_api::current_task().is_none());
    close(&lp);
}

/// Every task has an id unique in the process, the same through every handle to it (the
/// `Task`, `all_tasks()`, `current_task()` inside it) and after it finished.
pub fn task_ids_are_unique_and_stable(factory: Factory) {
    let lp = new_loop(factory);
    let tasks: Vec<Task<Option<u64>>> = (0..5)
        .map(|_| {
            lp.create_task(async { loop_api::current_task().map(|t| t.id()) })
                .expect("create_task")
        })
        .collect();
    let ids: Vec<u64> = tasks.iter().map(|t| AnyTask::from(t).id()).collect();
    let distinct: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "task ids repeat: {ids:?}");
    let mut listed: Vec<u64> = lp.all_tasks().iter().map(AnyTask::id).collect();
    listed.sort_unstable();
    assert_eq!(listed, distinct.iter().copied().collect::<Vec<_>>());
    for (t, id) in tasks.into_iter().zip(ids) {
        let anyt = AnyTask::from(&t);
        assert_eq!(block_on(&lp, t), Ok(Some(id)), "current_task().id() inside");
        assert_eq!(anyt.id(), id, "the id changed once the task finished");
    }
    close(&lp);
}

/// A task is `Pending` until it runs, `Running` while polled (seen from inside it), `Pending`
/// while it waits, then `Done`, `Cancelled` or `Failed` as it ended.
pub fn task_state_follows_its_life(factory: Factory) {
    let lp = new_loop(factory);
    lp.set_exception_handler(Some(Box::new(|_: &ExceptionContext| {})));
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let t = lp
        .create_task(async move {
            s.set(loop_api::current_task().map(|t| t.state()));
            loop_api::yield_now().await;
        })
        .expect("create_task");
    let handle = AnyTask::from(&t);
    assert_eq!(handle.state(), TaskState::Pending, "before it ran");
    run_once(&lp);
    assert_eq!(seen.get(), Some(TaskState::Running), "from inside its poll");
    assert_eq!(handle.state(), TaskState::Pending, "between its polls");
    assert_eq!(block_on(&lp, t), Ok(()));
    assert_eq!(handle.state(), TaskState::Done);

    let waiting = lp.create_task(pending::<()>()).expect("create_task");
    run_once(&lp);
    let w = AnyTask::from(&waiting);
    assert!(waiting.cancel());
    assert_eq!(block_on(&lp, waiting), Err(TaskError::Cancelled));
    assert_eq!(w.state(), TaskState::Cancelled);

    let failing = lp
        .create_task(async {
            loop_api::yield_now().await;
            if loop_api::get_running_loop().is_ok() {
                panic!("state-boom");
            }
        })
        .expect("create_task");
    let f = AnyTask::from(&failing);
    assert!(matches!(
        block_on(&lp, failing),
        Err(TaskError::Panicked(_))
    ));
    assert_eq!(f.state(), TaskState::Failed);
    close(&lp);
}

/// `created_at()` is the user's own call of `create_task`, `create_task_named` or
/// `run_until_complete` (file and line), not a line inside the loop.
pub fn task_created_at_is_the_callers_line(factory: Factory) {
    let lp = new_loop(factory);
    let (t, line) = (lp.create_task(async {}).expect("create_task"), line!());
    let at = AnyTask::from(&t).created_at();
    assert_eq!((at.file(), at.line()), (file!(), line));
    let (n, line) = (lp.create_task_named("n", async {}).expect("named"), line!());
    let at = AnyTask::from(&n).created_at();
    assert_eq!((at.file(), at.line()), (file!(), line));
    let inner = async { loop_api::current_task().map(|t| t.created_at()) };
    let (at, line) = (lp.run_until_complete(inner).expect("run"), line!());
    let at = at.expect("current_task() inside run_until_complete");
    assert_eq!((at.file(), at.line()), (file!(), line));
    block_on(&lp, async move {
        let group = loop_sync::TaskGroup::new();
        let (c, line) = (group.create_task(async {}).expect("child"), line!());
        let at = AnyTask::from(&c).created_at();
        assert_eq!((at.file(), at.line()), (file!(), line));
        group.join().await.expect("join");
    });
    block_on(&lp, async move { (t.await, n.await) })
        .0
        .expect("task");
    close(&lp);
}

/// `polls()` counts the polls of the task's future: one per run, so a task that yields three
/// times then finishes was polled four times.
pub fn task_polls_are_counted(factory: Factory) {
    let lp = new_loop(factory);
    let t = lp
        .create_task(async {
            for _ in 0..3 {
                loop_api::yield_now().await;
            }
        })
        .expect("create_task");
    let handle = AnyTask::from(&t);
    assert_eq!(handle.polls(), 0, "before it ran");
    run_once(&lp);
    assert_eq!(handle.polls(), 1, "after one iteration");
    block_on(&lp, t).expect("task");
    assert_eq!(handle.polls(), 4);
    close(&lp);
}

/// With task timing on, `busy()` grows by the time spent in the task's polls and `idle()` by
/// the time since its last poll ended (or since it was made); lower bounds only.
pub fn task_busy_and_idle_are_timed(factory: Factory) {
    loop_api::set_task_timing(true);
    let lp = new_loop(factory);
    let t = lp
        .create_task(async {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(5) {
                std::hint::spin_loop();
            }
            loop_api::yield_now().await;
            pending::<()>().await;
        })
        .expect("create_task");
    let handle = AnyTask::from(&t);
    thread_sleep(10);
    assert!(
        handle.idle() >= Duration::from_millis(10),
        "idle since creation"
    );
    assert_eq!(handle.busy(), Duration::ZERO, "busy before it ran");
    run_once(&lp);
    run_once(&lp);
    assert_eq!(handle.polls(), 2);
    let busy = handle.busy();
    assert!(
        busy >= Duration::from_millis(5),
        "busy after a 5 ms poll: {busy:?}"
    );
    thread_sleep(20);
    let idle = handle.idle();
    assert!(
        idle >= Duration::from_millis(20),
        "idle while it waits: {idle:?}"
    );
    assert_eq!(handle.busy(), busy, "busy grew while it was not polled");
    t.cancel();
    assert_eq!(block_on(&lp, t), Err(TaskError::Cancelled));
    close(&lp);
}
