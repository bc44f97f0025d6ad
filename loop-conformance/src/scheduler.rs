//! The scheduler's tasks, wakers and timers: wakers that outlive their task or their loop,
//! cancellation of a task parked on another thread's waker, timer order after cancellations,
//! panicking callbacks in a batch.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use loop_api::TaskError;

use crate::Factory;
use crate::util::new_loop;

type SharedWaker = Arc<Mutex<Option<Waker>>>;

/// Parks once, leaving its waker in `slot`; finishes when polled again.
async fn park_once(slot: SharedWaker) {
    let mut parked = false;
    poll_fn(|cx| {
        if parked {
            Poll::Ready(())
        } else {
            parked = true;
            *slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    })
    .await;
}

/// A task's waker woken from another thread after the task finished does nothing; the loop
/// goes on.
pub fn a_waker_woken_from_another_thread_after_its_task_finished_does_nothing(factory: Factory) {
    let lp = new_loop(factory);
    let slot: SharedWaker = Arc::default();
    let task = lp.create_task(park_once(slot.clone())).unwrap();
    let (lp2, slot2) = (lp.clone(), slot.clone());
    lp.run_until_complete(async move {
        loop_api::yield_now().await;
        let w = slot2.lock().unwrap().clone().expect("parked");
        // Woken from another thread: the task finishes.
        std::thread::spawn(move || w.wake()).join().unwrap();
        task.await.unwrap();
        assert!(lp2.all_tasks().len() <= 1, "the finished task is forgotten");
    })
    .unwrap();
    let w = slot.lock().unwrap().take().expect("the kept waker");
    std::thread::spawn(move || {
        w.wake_by_ref();
        w.wake();
    })
    .join()
    .unwrap();
    // Nothing was queued for the finished task; the loop still runs.
    assert_eq!(lp.run_until_complete(async { 5 }).unwrap(), 5);
    lp.close().unwrap();
}

/// Wakers kept past the loop's close and drop wake nothing and free nothing twice; the tasks
/// ended `Cancelled`.
pub fn a_waker_outliving_its_loop_is_harmless(factory: Factory) {
    let slot: SharedWaker = Arc::default();
    {
        let lp = new_loop(factory);
        let pending = lp.create_task(std::future::pending::<()>()).unwrap();
        let parked = lp.create_task(park_once(slot.clone())).unwrap();
        lp.run_until_complete(loop_api::sleep(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(lp.all_tasks().len(), 2);
        lp.close().unwrap();
        assert!(pending.done() && parked.done());
        drop(lp);
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let mut parked = std::pin::pin!(parked);
        assert_eq!(
            parked.as_mut().poll(&mut cx),
            Poll::Ready(Err(TaskError::Cancelled))
        );
    }
    let w = slot.lock().unwrap().take().expect("a waker");
    let w2 = w.clone();
    std::thread::spawn(move || w.wake()).join().unwrap();
    w2.wake();
}

/// Cancelling a task whose waker sits on another thread ends it `Cancelled` at once.
pub fn cancel_of_a_task_waiting_on_a_cross_thread_waker_is_prompt(factory: Factory) {
    let lp = new_loop(factory);
    let slot: SharedWaker = Arc::default();
    let task = lp.create_task(park_once(slot.clone())).unwrap();
    let outcome = lp
        .run_until_complete(async move {
            loop_api::yield_now().await;
            let w = slot.lock().unwrap().take().expect("parked");
            // The waker lives on another thread, which never wakes it before the cancel.
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let far = std::thread::spawn(move || {
                let _ = rx.recv();
                w.wake();
            });
            assert!(task.cancel());
            let out = task.await;
            drop(tx);
            far.join().unwrap();
            out
        })
        .unwrap();
    assert_eq!(outcome, Err(TaskError::Cancelled));
    lp.close().unwrap();
}

/// Timers fire by deadline, then insertion order, across cancellations and a heap purge.
pub fn timers_cancelled_then_firing_keep_deadline_then_insertion_order(factory: Factory) {
    let lp = new_loop(factory);
    let order = Rc::new(RefCell::new(Vec::new()));
    let t0 = lp.time();
    let mut handles = Vec::new();
    for (i, ms) in [3u64, 1, 2, 1, 3, 2, 1, 3].into_iter().enumerate() {
        let o = order.clone();
        let h = lp
            .call_at(t0 + Duration::from_millis(ms), move || {
                o.borrow_mut().push(i)
            })
            .unwrap();
        handles.push(h);
    }
    // Many cancelled timers force a purge of the heap in between.
    let churn: Vec<_> = (0..500)
        .map(|_| {
            lp.call_later(Duration::from_secs(60), || unreachable!())
                .unwrap()
        })
        .collect();
    for i in [1, 4] {
        handles[i].cancel();
    }
    for h in &churn {
        h.cancel();
    }
    let stop = lp.clone();
    lp.call_at(t0 + Duration::from_millis(4), move || stop.stop())
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), [3, 6, 2, 5, 0, 7]);
    assert!(handles[1].cancelled() && !handles[0].cancelled());
    lp.close().unwrap();
}

/// Panicking callbacks are reported once each and the rest of the batch runs in order.
pub fn a_panicking_callback_is_reported_and_the_batch_goes_on_in_order(factory: Factory) {
    let lp = new_loop(factory);
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |cx| {
        r.borrow_mut().push(cx.message.clone());
    })));
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..6 {
        let o = order.clone();
        lp.call_soon(move || {
            o.borrow_mut().push(i);
            if i % 2 == 1 {
                panic!("callback {i}");
            }
        })
        .unwrap();
    }
    let stop = lp.clone();
    lp.call_soon(move || stop.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(reports.borrow().len(), 3);
    assert!(reports.borrow()[0].contains("Exception in callback"));
    lp.close().unwrap();
}
