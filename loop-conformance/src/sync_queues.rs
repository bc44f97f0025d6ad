//! `loop-sync`'s queues on every loop, after CPython's `test_asyncio/test_queues.py`: order,
//! bounds, first-come-first-served getters and putters, cancellation at every await point
//! without losing an item or a slot, `task_done`/`join`.

use std::time::Duration;

use loop_api::TaskError;
use loop_sync::{LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull};

use crate::Factory;
use crate::sync::{run_sync, settle};
use crate::util::Log;

/// FIFO, LIFO and priority order; `put_nowait` on a full queue gives the item back,
/// `get_nowait` on an empty one is `QueueEmpty`; `qsize`/`empty`/`full` (CPython
/// `test_order`, `test_nonblocking_get`, `test_nonblocking_put`).
pub fn queues_keep_fifo_lifo_and_priority_order(factory: Factory) {
    let _ = run_sync(factory, false, |_lp| async move {
        let fifo = Queue::new(0);
        let lifo = LifoQueue::new(0);
        let prio = PriorityQueue::new(0);
        for i in [3, 1, 4, 1, 5] {
            fifo.put(i).await;
            lifo.put_nowait(i).expect("unbounded");
            prio.put((i, format!("item {i}"))).await;
        }
        let mut got = (Vec::new(), Vec::new(), Vec::new());
        while !fifo.empty() {
            got.0.push(fifo.get().await);
            got.1.push(lifo.get_nowait().expect("an item"));
            got.2.push(prio.get().await.0);
        }
        assert_eq!(got.0, vec![3, 1, 4, 1, 5]);
        assert_eq!(got.1, vec![5, 1, 4, 1, 3]);
        assert_eq!(got.2, vec![1, 1, 3, 4, 5]);
        assert_eq!(fifo.get_nowait(), Err(QueueEmpty));
        let q = Queue::new(2);
        assert_eq!(q.maxsize(), 2);
        assert!(q.empty() && !q.full());
        q.put_nowait("a").expect("room");
        q.put("b").await;
        assert!(q.full());
        assert_eq!(q.qsize(), 2);
        assert_eq!(q.put_nowait("c"), Err(QueueFull("c")));
        assert_eq!(q.get_nowait(), Ok("a"));
        assert!(
            !Queue::<u8>::new(0).full(),
            "an unbounded queue is never full"
        );
    });
}

/// Getters waiting on an empty queue get the items in the order they asked; an item put
/// while a getter waits goes to that getter: a new `get_nowait` or `get` cannot take it
/// ahead of the woken getter (strict FIFO, where CPython lets the newcomer in).
pub fn queue_getters_are_served_first_come_first_served(factory: Factory) {
    let (got, _) = run_sync(factory, false, |lp| async move {
        let q = Queue::new(0);
        let got = Log::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (q, g) = (q.clone(), got.clone());
            tasks.push(
                lp.create_task(async move { g.push((i, q.get().await)) })
                    .expect("create_task"),
            );
        }
        settle().await;
        q.put_nowait(10).expect("unbounded");
        assert_eq!(q.qsize(), 0, "the item goes straight to the waiting getter");
        assert_eq!(
            q.get_nowait(),
            Err(QueueEmpty),
            "get_nowait took a woken getter's item"
        );
        let (q2, g) = (q.clone(), got.clone());
        tasks.push(
            lp.create_task(async move { g.push((99, q2.get().await)) })
                .expect("create_task"),
        );
        q.put(11).await;
        q.put(12).await;
        q.put(13).await;
        loop_sync::gather(tasks).await.expect("getters");
        let mut got = got.get();
        got.sort_unstable(); // by getter (they may run in another order than they were served)
        got
    });
    assert_eq!(got, vec![(0, 10), (1, 11), (2, 12), (99, 13)]);
}

/// Putters waiting on a full queue put their items in the order they asked; each `get` lets
/// exactly one in (CPython `test_blocking_put_wait`, `test_put_with_waiting_getters`).
pub fn bounded_queue_putters_wait_in_order(factory: Factory) {
    let (got, _) = run_sync(factory, false, |lp| async move {
        let q = Queue::new(1);
        q.put(0).await;
        let mut putters = Vec::new();
        for i in 1..=3 {
            let q = q.clone();
            putters.push(
                lp.create_task(async move { q.put(i).await })
                    .expect("create_task"),
            );
        }
        settle().await;
        assert_eq!(q.qsize(), 1);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(q.get().await);
            // A freed slot is kept for the first putter: a newcomer cannot take it.
            if !putters.iter().all(|p| p.done()) {
                assert!(
                    q.put_nowait(100).is_err(),
                    "put_nowait took a woken putter's slot"
                );
            }
            settle().await;
            assert!(q.qsize() <= 1);
        }
        loop_sync::gather(putters).await.expect("putters");
        got
    });
    assert_eq!(got, vec![0, 1, 2, 3]);
}

/// A `get` cancelled while waiting, or after an item was put for it but before it ran, loses
/// no item: the next getter receives it, or it stays in the queue (CPython
/// `test_cancelled_getters_not_being_held_in_self_getters`, `test_get_cancelled_race`).
pub fn cancelled_get_loses_no_item(factory: Factory) {
    let (got, _) = run_sync(factory, false, |lp| async move {
        let q = Queue::new(0);
        let got = Log::new();
        let mut getters = Vec::new();
        for i in 0..4 {
            let (q, g) = (q.clone(), got.clone());
            getters.push(
                lp.create_task(async move { g.push((i, q.get().await)) })
                    .expect("create_task"),
            );
        }
        settle().await;
        getters[1].cancel(); // cancelled while waiting
        settle().await;
        q.put_nowait("a").expect("unbounded"); // for getter 0 ...
        getters[0].cancel(); // ... cancelled before it ran: getter 2 gets "a"
        q.put_nowait("b").expect("unbounded"); // for getter 3
        let outs = loop_sync::gather_settled(getters).await;
        assert_eq!(outs[0], Err(TaskError::Cancelled));
        assert_eq!(outs[1], Err(TaskError::Cancelled));
        // No getter left: a cancelled woken getter leaves its item in the queue.
        let q2 = q.clone();
        let last = lp
            .create_task(async move { q2.get().await })
            .expect("create_task");
        settle().await;
        q.put_nowait("c").expect("unbounded");
        last.cancel();
        settle().await;
        assert_eq!(q.qsize(), 1, "the cancelled getter took the item with it");
        assert_eq!(q.get_nowait(), Ok("c"));
        let mut got = got.get();
        got.sort_unstable();
        got
    });
    // Both items reached the two getters left. (Which got which: "b" was handed to getter 2
    // before getter 0's cancellation gave "a" back, to getter 3.)
    assert_eq!(got.len(), 2);
    let mut items: Vec<&str> = got.iter().map(|g| g.1).collect();
    items.sort_unstable();
    assert_eq!(items, vec!["a", "b"]);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![2, 3]);
}

/// A `put` cancelled while waiting on a full queue adds nothing, and one cancelled after a
/// slot was freed for it but before it ran passes the slot on (CPython
/// `test_cancelled_puts_not_being_held_in_self_putters`, `test_put_cancelled_race`).
pub fn cancelled_put_loses_no_slot_and_adds_no_item(factory: Factory) {
    let (items, _) = run_sync(factory, false, |lp| async move {
        let q = Queue::new(1);
        q.put("first").await;
        let mut putters = Vec::new();
        for name in ["p0", "p1", "p2"] {
            let q = q.clone();
            putters.push(
                lp.create_task(async move { q.put(name).await })
                    .expect("create_task"),
            );
        }
        settle().await;
        putters[1].cancel(); // cancelled while waiting: "p1" is never added
        settle().await;
        assert_eq!(q.get_nowait(), Ok("first")); // frees the slot for p0 ...
        putters[0].cancel(); // ... cancelled before it ran: p2 gets the slot
        let outs = loop_sync::gather_settled(putters).await;
        assert_eq!(outs[0], Err(TaskError::Cancelled));
        assert_eq!(outs[1], Err(TaskError::Cancelled));
        assert_eq!(outs[2], Ok(()));
        let mut items = Vec::new();
        while let Ok(item) = q.get_nowait() {
            items.push(item);
        }
        assert!(q.put_nowait("again").is_ok(), "a slot leaked");
        items
    });
    assert_eq!(items, vec!["p2"]);
}

/// `join` waits until every item put was marked with `task_done`; a `task_done` too many is
/// reported to the loop's exception handler and changes nothing (CPython `test_task_done`,
/// `test_join_empty_queue`, `test_task_done_underflow`).
pub fn queue_join_waits_for_every_task_done(factory: Factory) {
    let ((order, unfinished), reports) = run_sync(factory, true, |lp| async move {
        let q = Queue::new(0);
        q.join().await; // nothing unfinished: at once
        let order = Log::new();
        for i in 0..5 {
            q.put(i).await;
        }
        assert_eq!(q.unfinished_tasks(), 5);
        let mut workers = Vec::new();
        for _ in 0..2 {
            let (q, o) = (q.clone(), order.clone());
            workers.push(
                lp.create_task(async move {
                    loop {
                        let item = q.get().await;
                        loop_api::sleep(Duration::from_millis(1)).await;
                        o.push(item);
                        q.task_done();
                    }
                })
                .expect("create_task"),
            );
        }
        q.join().await;
        let seen = order.len();
        for w in &workers {
            w.cancel();
        }
        q.task_done(); // one too many
        (seen, q.unfinished_tasks())
    });
    assert_eq!(order, 5, "join returned before every item was done");
    assert_eq!(unfinished, 0);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("task_done"), "{reports:?}");
}
