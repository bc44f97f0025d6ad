//! `loop-sync` on every loop: gather, shield, as_completed, TaskGroup, Lock, Semaphore, Event,
//! Condition, Barrier. The cases follow CPython's `test_asyncio` (`test_tasks` for gather,
//! `test_taskgroups`, `test_locks`): ordering, strict FIFO fairness, and cancellation (here:
//! dropping the future, which is what cancelling a task does) at every await point without
//! losing a permit or a wake-up.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_core::Stream;
use loop_api::{EventLoop, ExceptionContext, Task, TaskError};
use loop_sync::{Barrier, Condition, Event, Lock, Semaphore, TaskGroup};

use crate::Factory;
use crate::util::{Log, block_on, close, new_loop};

/// Runs `body` on a fresh loop made by `factory` (panics in tasks are recorded, not failures,
/// when `quiet`), closes the loop, gives the output and the panic reports.
pub(crate) fn run_sync<F, Fut>(factory: Factory, quiet: bool, body: F) -> (Fut::Output, Vec<String>)
where
    F: FnOnce(EventLoop) -> Fut,
    Fut: Future + 'static,
    Fut::Output: 'static,
{
    let lp = new_loop(factory);
    let reports: Log<String> = Log::new();
    if quiet {
        let r = reports.clone();
        lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
            r.push(ctx.panic.clone().unwrap_or_else(|| ctx.message.clone()))
        })));
    }
    let out = block_on(&lp, body(lp.clone()));
    close(&lp);
    (out, reports.get())
}

/// Lets every task that is ready run (a few loop iterations).
pub(crate) async fn settle() {
    for _ in 0..8 {
        loop_api::yield_now().await;
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn spawn<F>(lp: &EventLoop, fut: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    lp.create_task(fut).expect("create_task")
}

/// `gather` gives the outputs in the order given, whatever order the tasks finish in
/// (CPython `test_gather`); an empty list gives an empty vector.
pub fn gather_gives_outputs_in_given_order(factory: Factory) {
    let ((outs, empty), _) = run_sync(factory, false, |lp| async move {
        let done = Log::new();
        let tasks = (0..5u64)
            .map(|i| {
                let d = done.clone();
                spawn(&lp, async move {
                    loop_api::sleep(ms(10 - 2 * i)).await;
                    d.push(i);
                    i * 100
                })
            })
            .collect();
        let outs = loop_sync::gather(tasks).await;
        assert_eq!(
            done.get(),
            vec![4, 3, 2, 1, 0],
            "tasks finished out of order"
        );
        (outs, loop_sync::gather(Vec::<Task<u8>>::new()).await)
    });
    assert_eq!(outs, Ok(vec![0, 100, 200, 300, 400]));
    assert_eq!(empty, Ok(vec![]));
}

/// `gather` returns the first failure at once and leaves the other tasks running (asyncio's
/// default, `return_exceptions=False`).
pub fn gather_returns_first_failure_and_others_keep_running(factory: Factory) {
    let ((out, at_failure, later), reports) = run_sync(factory, true, |lp| async move {
        let finished = Log::new();
        let f = finished.clone();
        let slow = spawn(&lp, async move {
            loop_api::sleep(ms(5)).await;
            f.push("slow");
        });
        let failing = spawn(&lp, async {
            loop_api::yield_now().await;
            panic!("gather-boom")
        });
        let out = loop_sync::gather(vec![slow, failing]).await;
        let at_failure = finished.get();
        loop_api::sleep(ms(20)).await;
        (out, at_failure, finished.get())
    });
    assert_eq!(out, Err(TaskError::Panicked("gather-boom".into())));
    assert_eq!(
        at_failure,
        Vec::<&str>::new(),
        "gather waited for the others"
    );
    assert_eq!(later, vec!["slow"], "the other task was cancelled");
    assert_eq!(reports, vec!["gather-boom"]);
}

/// Records its name when dropped: a task's future is dropped when it ends, so a guard held
/// by a sleeping task tells when it was cancelled.
pub(crate) struct OnDrop(pub(crate) Log<&'static str>, pub(crate) &'static str);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.push(self.1);
    }
}

/// A task that sleeps an hour and logs `name` when its future is dropped (cancelled).
fn sleeper(lp: &EventLoop, log: &Log<&'static str>, name: &'static str) -> Task<()> {
    let guard = OnDrop(log.clone(), name);
    spawn(lp, async move {
        let _guard = guard;
        loop_api::sleep(Duration::from_secs(3600)).await;
    })
}

/// Dropping a `gather` that has not finished (a timeout gave up on it, or the task awaiting
/// it was cancelled) cancels the tasks that are not done; finished ones keep their output
/// (CPython `test_gather_cancel`-style).
pub fn dropping_gather_cancels_unfinished_tasks(factory: Factory) {
    let ((timed_out, after_timeout, after_cancel), _) = run_sync(factory, false, |lp| async move {
        let log = Log::new();
        let quick = spawn(&lp, async {});
        let slow = sleeper(&lp, &log, "slow");
        let timed_out = loop_api::wait_for(ms(5), loop_sync::gather(vec![quick, slow]))
            .await
            .is_err();
        settle().await;
        let after_timeout = log.get();
        let child = sleeper(&lp, &log, "child");
        let gathering = spawn(&lp, loop_sync::gather(vec![child]));
        settle().await;
        gathering.cancel();
        settle().await;
        (timed_out, after_timeout, log.get())
    });
    assert!(timed_out, "the gather should have been timed out");
    assert_eq!(after_timeout, vec!["slow"]);
    assert_eq!(after_cancel, vec!["slow", "child"]);
}

/// `gather_settled` gives every outcome in the order given: outputs, panics, cancellations.
pub fn gather_settled_gives_every_outcome(factory: Factory) {
    let (outs, reports) = run_sync(factory, true, |lp| async move {
        let ok = spawn(&lp, async { 1 });
        let bad = spawn(&lp, async {
            loop_api::yield_now().await;
            if true {
                panic!("settled-boom");
            }
            2
        });
        let cancelled = spawn(&lp, async {
            loop_api::sleep(Duration::from_secs(3600)).await;
            3
        });
        cancelled.cancel();
        loop_sync::gather_settled(vec![ok, bad, cancelled]).await
    });
    assert_eq!(
        outs,
        vec![
            Ok(1),
            Err(TaskError::Panicked("settled-boom".into())),
            Err(TaskError::Cancelled)
        ]
    );
    assert_eq!(reports, vec!["settled-boom"]);
}

/// `as_completed` yields outcomes in the order the tasks finish.
pub fn as_completed_yields_in_completion_order(factory: Factory) {
    let (order, _) = run_sync(factory, false, |lp| async move {
        let tasks = [30u64, 10, 20]
            .into_iter()
            .map(|d| {
                spawn(&lp, async move {
                    loop_api::sleep(ms(d)).await;
                    d
                })
            })
            .collect();
        let mut stream = loop_sync::as_completed(tasks);
        assert_eq!(stream.size_hint(), (3, Some(3)));
        let mut order = Vec::new();
        while let Some(out) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            order.push(out.expect("no task fails"));
        }
        order
    });
    assert_eq!(order, vec![10, 20, 30]);
}

/// A `shield`ed task keeps running when the future awaiting it is dropped: by a timeout, or
/// by a `gather` that gave up while the task's shield was one of its tasks.
pub fn shield_keeps_task_running_when_dropped(factory: Factory) {
    let (finished, _) = run_sync(factory, false, |lp| async move {
        let finished = Log::new();
        let slow = |name: &'static str| {
            let f = finished.clone();
            spawn(&lp, async move {
                loop_api::sleep(ms(20)).await;
                f.push(name);
            })
        };
        let a = slow("a");
        let timed_out = loop_api::wait_for(ms(1), loop_sync::shield(a)).await;
        assert!(timed_out.is_err());
        let b = slow("b");
        let gathered = loop_api::wait_for(
            ms(1),
            loop_sync::gather(vec![spawn(&lp, loop_sync::shield(b))]),
        )
        .await;
        assert!(gathered.is_err());
        loop_api::sleep(ms(40)).await;
        finished.get()
    });
    assert_eq!(finished, vec!["a", "b"]);
}

/// A `TaskGroup`'s `join` waits for every child, however long each takes.
pub fn task_group_join_waits_for_every_child(factory: Factory) {
    let (ended, _) = run_sync(factory, false, |_lp| async move {
        let ended = Log::new();
        let group = TaskGroup::new();
        for i in 0..4u64 {
            let e = ended.clone();
            group
                .create_task(async move {
                    loop_api::sleep(ms(i * 3)).await;
                    e.push(i);
                })
                .expect("create_task");
        }
        assert_eq!(group.len(), 4);
        group.join().await.expect("no child failed");
        ended.get()
    });
    assert_eq!(ended, vec![0, 1, 2, 3]);
}

/// A failing child cancels its siblings (also one that was about to fail in the same
/// iteration: cancellation is prompt); `join` waits until they have ended and gives only the
/// failure, not the cancellations; the group refuses new children once shutting down
/// (CPython `test_taskgroup_02`, `_03`).
pub fn task_group_failure_cancels_siblings(factory: Factory) {
    let ((err, sibling, cleanup_ran, refused), reports) =
        run_sync(factory, true, |lp| async move {
            let group = TaskGroup::new();
            let cleanup = Log::new();
            let guard = OnDrop(cleanup.clone(), "sibling cleaned up");
            let sibling = group
                .create_task(async move {
                    let _g = guard;
                    loop_api::sleep(Duration::from_secs(3600)).await;
                })
                .expect("create_task");
            for name in ["first", "second"] {
                group
                    .create_task(async move {
                        loop_api::yield_now().await;
                        if !name.is_empty() {
                            panic!("{name}");
                        }
                    })
                    .expect("create_task");
            }
            settle().await;
            let refused = group.create_task(async {}).is_err();
            let err = group.join().await;
            let _ = lp;
            (err, sibling.await, cleanup.get(), refused)
        });
    let err = err.expect_err("the group failed");
    assert_eq!(err.errors, vec![TaskError::Panicked("first".into())]);
    assert_eq!(sibling, Err(TaskError::Cancelled));
    assert_eq!(cleanup_ran, vec!["sibling cleaned up"]);
    assert!(refused, "a shutting-down group took a new task");
    assert_eq!(reports, vec!["first"]);
}

/// A child cancelled by the user does not fail the group; the others run to their end.
pub fn task_group_user_cancelled_child_does_not_fail_group(factory: Factory) {
    let ((joined, other), _) = run_sync(factory, false, |_lp| async move {
        let group = TaskGroup::new();
        let victim = group
            .create_task(loop_api::sleep(Duration::from_secs(3600)))
            .expect("create_task");
        let other = group
            .create_task(async {
                loop_api::sleep(ms(5)).await;
                "other"
            })
            .expect("create_task");
        settle().await;
        victim.cancel();
        let joined = group.join().await;
        assert_eq!(victim.await, Err(TaskError::Cancelled));
        (joined, other.await)
    });
    assert_eq!(joined, Ok(()));
    assert_eq!(other, Ok("other"));
}

/// Dropping a group that was not joined cancels its children, and so does dropping (timing
/// out) its `join`.
pub fn dropping_unjoined_task_group_cancels_children(factory: Factory) {
    let ((a, b, timed_out), _) = run_sync(factory, false, |_lp| async move {
        let group = TaskGroup::new();
        let a = group
            .create_task(loop_api::sleep(Duration::from_secs(3600)))
            .expect("create_task");
        drop(group);
        let group = TaskGroup::new();
        let b = group
            .create_task(loop_api::sleep(Duration::from_secs(3600)))
            .expect("create_task");
        let timed_out = loop_api::wait_for(ms(2), group.join()).await.is_err();
        (a.await, b.await, timed_out)
    });
    assert_eq!(a, Err(TaskError::Cancelled));
    assert_eq!(b, Err(TaskError::Cancelled));
    assert!(timed_out);
}

/// `Lock` is strictly FIFO: waiters get it in the order they asked, and a new `lock()` (or
/// `try_lock`) queues behind a waiter that was already woken but has not run yet (CPython's
/// Lock keeps that order; `async-lock` would let the newcomer in).
pub fn lock_is_fifo_and_newcomers_queue_behind_woken_waiter(factory: Factory) {
    let (order, _) = run_sync(factory, false, |lp| async move {
        let lock = Rc::new(Lock::new());
        let order = Log::new();
        let guard = lock.lock().await;
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (l, o) = (lock.clone(), order.clone());
            tasks.push(spawn(&lp, async move {
                let _g = l.lock().await;
                o.push(i);
                loop_api::yield_now().await;
            }));
        }
        settle().await;
        assert_eq!(lock.waiting(), 3);
        // Release: waiter 0 is woken but has not run. A newcomer may not take the lock now.
        drop(guard);
        assert!(
            lock.try_lock().is_none(),
            "try_lock barged in ahead of a woken waiter"
        );
        assert!(lock.locked());
        let (l, o) = (lock.clone(), order.clone());
        tasks.push(spawn(&lp, async move {
            let _g = l.lock().await;
            o.push(99);
        }));
        loop_sync::gather(tasks).await.expect("tasks");
        assert!(!lock.locked());
        order.get()
    });
    assert_eq!(order, vec![0, 1, 2, 99]);
}

/// A `lock()` cancelled while waiting, or after it was handed the lock but before it ran,
/// leaks nothing: the lock goes to the next waiter (CPython `test_cancel_race`,
/// `test_cancel_release_race`, `test_finished_waiter_cancelled`).
pub fn cancelled_lock_waiters_leak_nothing(factory: Factory) {
    let (order, _) = run_sync(factory, false, |lp| async move {
        let lock = Rc::new(Lock::new());
        let order = Log::new();
        let guard = lock.lock().await;
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (l, o) = (lock.clone(), order.clone());
            tasks.push(spawn(&lp, async move {
                let _g = l.lock().await;
                o.push(i);
            }));
        }
        settle().await;
        tasks[1].cancel(); // cancelled while waiting
        settle().await;
        drop(guard); // hands the lock to waiter 0 ...
        tasks[0].cancel(); // ... which is cancelled before it runs: it must pass it on
        let outs = loop_sync::gather_settled(tasks).await;
        assert_eq!(outs[0], Err(TaskError::Cancelled));
        assert_eq!(outs[1], Err(TaskError::Cancelled));
        assert!(!lock.locked(), "the lock leaked");
        assert!(lock.try_lock().is_some());
        order.get()
    });
    assert_eq!(order, vec![2, 3]);
}

/// `Semaphore` is FIFO, counts permits, and a cancelled `acquire` (waiting, or handed a
/// permit it never took) leaks none (CPython `test_acquire_cancel_before_awoken`,
/// `test_acquire_fifo_order`).
pub fn semaphore_is_fifo_and_cancelled_acquires_leak_no_permit(factory: Factory) {
    let (order, _) = run_sync(factory, false, |lp| async move {
        let sem = Rc::new(Semaphore::new(2));
        let order = Log::new();
        let a = sem.acquire().await;
        let b = sem.acquire().await;
        assert_eq!(sem.available_permits(), 0);
        assert!(sem.locked());
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (s, o) = (sem.clone(), order.clone());
            tasks.push(spawn(&lp, async move {
                let _p = s.acquire().await;
                o.push(i);
                loop_api::yield_now().await;
            }));
        }
        settle().await;
        tasks[2].cancel();
        settle().await;
        drop(a); // to waiter 0
        drop(b); // to waiter 1
        tasks[0].cancel(); // woken, cancelled before it ran: passes its permit to waiter 3
        assert!(sem.try_acquire().is_none(), "try_acquire barged in");
        let outs = loop_sync::gather_settled(tasks).await;
        assert_eq!(outs.iter().filter(|o| o.is_err()).count(), 2);
        assert_eq!(sem.available_permits(), 2, "a permit leaked");
        let p = sem.try_acquire().expect("a permit");
        p.forget();
        assert_eq!(sem.available_permits(), 1);
        sem.release();
        assert_eq!(sem.available_permits(), 2);
        order.get()
    });
    assert_eq!(order, vec![1, 3, 4]);
}

/// `Event::set` wakes every waiter, even if `clear` follows before they run; a set event
/// lets `wait` through at once; a cancelled wait leaves nothing behind (CPython `test_wait`,
/// `test_clear_with_waiters`).
pub fn event_set_wakes_every_waiter(factory: Factory) {
    let (woken, _) = run_sync(factory, false, |lp| async move {
        let ev = Rc::new(Event::new());
        let woken = Log::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (e, w) = (ev.clone(), woken.clone());
            tasks.push(spawn(&lp, async move {
                e.wait().await;
                w.push(i);
            }));
        }
        let e = ev.clone();
        let cancelled = spawn(&lp, async move { e.wait().await });
        settle().await;
        assert!(woken.is_empty());
        cancelled.cancel();
        settle().await;
        ev.set();
        assert!(ev.is_set());
        ev.clear();
        assert!(!ev.is_set());
        loop_sync::gather(tasks).await.expect("waiters");
        // Cleared: a new wait waits; set: it passes at once.
        let e = ev.clone();
        let late = spawn(&lp, async move { e.wait().await });
        settle().await;
        assert!(!late.done());
        ev.set();
        ev.wait().await;
        late.await.expect("late waiter");
        woken.get()
    });
    assert_eq!(woken, vec![0, 1, 2]);
}

/// `Condition`: `notify(n)` wakes n waiters in FIFO order, each holding the lock again when
/// it returns; `notify_all` wakes the rest; a waiter notified then cancelled passes the
/// notification on (CPython `test_notify`, `test_cancelled_wakeup`); `wait_for` checks its
/// predicate under the lock.
pub fn condition_notifies_in_order_and_passes_on_cancelled_wakeups(factory: Factory) {
    let (order, _) = run_sync(factory, false, |lp| async move {
        let cond = Rc::new(Condition::new());
        let order = Log::new();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (c, o) = (cond.clone(), order.clone());
            tasks.push(spawn(&lp, async move {
                let g = c.lock().await;
                let _g = c.wait(g).await;
                assert!(c.locked(), "wait returned without the lock");
                o.push(i);
            }));
        }
        settle().await;
        cond.notify(1);
        settle().await;
        assert_eq!(order.get(), vec![0]);
        cond.notify(1); // to waiter 1 ...
        tasks[1].cancel(); // ... cancelled before it runs: waiter 2 gets it
        settle().await;
        assert_eq!(order.get(), vec![0, 2]);
        cond.notify_all();
        let outs = loop_sync::gather_settled(tasks).await;
        assert_eq!(outs[1], Err(TaskError::Cancelled));
        let flag = Rc::new(std::cell::Cell::new(0));
        let (c, f, o) = (cond.clone(), flag.clone(), order.clone());
        let waiter = spawn(&lp, async move {
            let g = c.lock().await;
            let _g = c.wait_for(g, || f.get() == 2).await;
            o.push(10);
        });
        for v in 1..=2 {
            settle().await;
            let g = cond.lock().await;
            flag.set(v);
            cond.notify_all();
            drop(g);
        }
        waiter.await.expect("wait_for");
        order.get()
    });
    assert_eq!(order, vec![0, 2, 3, 10]);
}

/// `Barrier` lets `parties` tasks through together with arrival indices 0..parties, round
/// after round; a waiter cancelled before the round filled leaves it (CPython
/// `test_barrier`, `test_barrier_parties`).
pub fn barrier_lets_parties_through_with_arrival_indices(factory: Factory) {
    let (rounds, _) = run_sync(factory, false, |lp| async move {
        let barrier = Rc::new(Barrier::new(3));
        let leaver = {
            let b = barrier.clone();
            spawn(&lp, async move { b.wait().await })
        };
        settle().await;
        assert_eq!(barrier.n_waiting(), 1);
        leaver.cancel();
        settle().await;
        assert_eq!(
            barrier.n_waiting(),
            0,
            "a cancelled waiter stayed in the round"
        );
        let mut rounds = Vec::new();
        for _ in 0..2 {
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let b = barrier.clone();
                    spawn(&lp, async move { b.wait().await })
                })
                .collect();
            let mut idx = loop_sync::gather(tasks).await.expect("parties");
            idx.sort_unstable();
            rounds.push(idx);
        }
        assert_eq!(Barrier::new(0).wait().await, 0);
        rounds
    });
    assert_eq!(rounds, vec![vec![0, 1, 2], vec![0, 1, 2]]);
}
