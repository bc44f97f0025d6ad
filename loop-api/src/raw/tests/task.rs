//! The task's counting and waking rules, with a scheduler that only collects woken tasks.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::TaskError;
use crate::task::{Notified, Schedule, Task, TaskRef, new_task};

/// Collects woken tasks, as a loop's remote queue would; once closed, drops them (as a closed
/// loop does) on the waking thread.
#[derive(Default)]
struct Collect {
    woken: Mutex<Vec<Notified>>,
    closed: AtomicBool,
}

impl Schedule for Collect {
    fn schedule(&self, task: Notified) {
        if self.closed.load(Ordering::SeqCst) {
            drop(task);
            return;
        }
        self.woken.lock().unwrap().push(task);
    }
}

impl Collect {
    /// The woken tasks as they came (still `Notified`).
    fn take_notified(&self) -> Vec<Notified> {
        std::mem::take(&mut *self.woken.lock().unwrap())
    }

    fn take(&self) -> Vec<TaskRef> {
        let woken = self.take_notified();
        woken
            .into_iter()
            // SAFETY: the tests run their tasks on the test's thread, where they were made.
            .map(|n| unsafe { n.into_local() })
            .collect()
    }
}

/// A future that stores its waker and finishes once `ready` is set.
fn parked(slot: Rc<Cell<Option<Waker>>>, ready: Rc<Cell<bool>>) -> impl Future<Output = u32> {
    poll_fn(move |cx| {
        if ready.get() {
            Poll::Ready(7)
        } else {
            slot.set(Some(cx.waker().clone()));
            Poll::Pending
        }
    })
}

fn spawn<F: Future + 'static>(fut: F, sched: &Arc<Collect>) -> (TaskRef, Task<F::Output>)
where
    F::Output: 'static,
{
    let (task, user) = new_task(fut, None);
    task.bind(sched.clone());
    (task, user)
}

#[test]
fn waker_from_another_thread_after_the_task_finished_is_harmless() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    ready.set(true);
    assert!(task.run().is_ready());
    assert!(user.done());
    drop(task);
    drop(user);
    // Only the waker is left: waking and dropping it on another thread frees the task there.
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    let woken = sched.take();
    assert_eq!(woken.len(), 1, "one wake queues once");
    assert!(woken[0].done());
    assert!(woken[0].run().is_ready(), "a finished task runs nothing");
}

#[test]
fn dropping_every_local_handle_drops_the_future_on_its_thread() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    assert_eq!(Rc::strong_count(&ready), 2);
    drop(user);
    drop(task);
    // The future (which holds `ready`, an `Rc`) was dropped here, not by the waker's thread.
    assert_eq!(Rc::strong_count(&ready), 1);
    std::thread::spawn(move || waker.wake()).join().unwrap();
    let woken = sched.take();
    assert_eq!(woken.len(), 1);
    assert!(woken[0].done());
}

#[test]
fn cancel_of_a_task_parked_on_a_cross_thread_waker_is_prompt() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let (task, user) = spawn(parked(slot.clone(), Rc::new(Cell::new(false))), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    let far = std::thread::spawn(move || waker);
    assert!(user.cancel());
    assert!(user.cancelling());
    let woken = sched.take();
    assert_eq!(woken.len(), 1, "cancel queues the task at once");
    assert!(woken[0].run().is_ready());
    assert_eq!(user.take_outcome(), Some(Err(TaskError::Cancelled)));
    // The far waker still works (and does nothing harmful).
    far.join().unwrap().wake();
    assert_eq!(sched.take().len(), 1);
}

#[test]
fn a_wake_while_queued_queues_once_and_output_reaches_the_task() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, mut user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    // Bound means queued: a wake before the first run queues nothing more.
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    waker.wake_by_ref();
    waker.wake_by_ref();
    let woken = sched.take();
    assert_eq!(woken.len(), 1);
    // Run it (as a loop does): from then on a wake queues it again.
    assert!(woken[0].run().is_pending());
    ready.set(true);
    waker.wake();
    let woken = sched.take();
    assert_eq!(woken.len(), 1);
    assert!(woken[0].run().is_ready());
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(Pin::new(&mut user).poll(&mut cx), Poll::Ready(Ok(7)));
}

#[test]
fn abort_ends_cancelled_and_wakes_the_awaiter() {
    let sched = Arc::new(Collect::default());
    let (task, mut user) = spawn(std::future::pending::<()>(), &sched);
    let woke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    struct Flag(Arc<std::sync::atomic::AtomicBool>);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let w = Waker::from(Arc::new(Flag(woke.clone())));
    let mut cx = Context::from_waker(&w);
    assert!(Pin::new(&mut user).poll(&mut cx).is_pending());
    task.abort();
    assert!(woke.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(
        Pin::new(&mut user).poll(&mut cx),
        Poll::Ready(Err(TaskError::Cancelled))
    );
    assert!(!user.cancel(), "cancel after the end is false");
}

#[test]
fn a_panicking_future_ends_panicked() {
    let sched = Arc::new(Collect::default());
    let (task, user) = spawn(async { panic!("boom") }, &sched);
    task.set_report_panics(false);
    assert!(task.run().is_ready());
    assert!(
        task.take_panic().is_none(),
        "returned to the caller, not reported"
    );
    assert_eq!(
        user.take_outcome(),
        Some(Err(TaskError::Panicked("boom".into())))
    );
}

#[test]
#[should_panic(expected = "spawned twice")]
fn binding_twice_panics() {
    let sched = Arc::new(Collect::default());
    let (task, _user) = spawn(async {}, &sched);
    task.bind(sched.clone());
}

/// A future that stays pending, holding `held` (to see where and when it is dropped).
fn holding<T: 'static>(held: T) -> impl Future<Output = ()> {
    poll_fn(move |cx| {
        let _ = &held;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Panics when dropped (unless the thread is already panicking).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

#[test]
fn a_waker_woken_from_another_thread_after_the_loop_closed_frees_the_task_there() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    assert!(task.run().is_pending());
    let waker: Waker = slot.take().expect("a waker");
    // The loop closes: it aborts its tasks and forgets them; its queue drops what comes.
    task.abort();
    assert_eq!(user.take_outcome(), Some(Err(TaskError::Cancelled)));
    drop((task, user));
    sched.closed.store(true, Ordering::SeqCst);
    assert_eq!(
        Rc::strong_count(&ready),
        1,
        "the future went with the last local handle"
    );
    assert_eq!(
        Arc::strong_count(&sched),
        2,
        "the cell (holding the scheduler) is alive"
    );
    std::thread::spawn(move || {
        // Queued into a closed loop: the `Notified` is dropped here; then the waker's unit,
        // the last one, frees the cell on this thread.
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    assert_eq!(
        Arc::strong_count(&sched),
        1,
        "the last waker freed the cell"
    );
}

#[test]
fn a_waker_dropped_last_on_another_thread_frees_only_send_data_there() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, user) = new_task(parked(slot.clone(), ready.clone()), Some("far".into()));
    task.bind(sched.clone());
    assert!(task.run().is_pending());
    let wakers: Vec<Waker> = vec![slot.take().expect("a waker"); 3];
    ready.set(true);
    assert!(task.run().is_ready());
    // The output (an `Rc`-free u32 here) and the future are dropped with the locals, here.
    drop(user);
    drop(task);
    assert_eq!(Rc::strong_count(&ready), 1);
    let threads: Vec<_> = wakers
        .into_iter()
        .map(|w| std::thread::spawn(move || drop(w)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        Arc::strong_count(&sched),
        1,
        "the last waker freed the cell"
    );
    assert!(sched.take().is_empty(), "dropping a waker wakes nothing");
}

#[test]
fn cancel_while_notified_queues_once_and_ends_cancelled() {
    let sched = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let (task, user) = spawn(parked(slot.clone(), Rc::new(Cell::new(false))), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    std::thread::spawn(move || waker.wake()).join().unwrap();
    // Woken (a `Notified` on its way): cancel must not queue it a second time.
    assert!(user.cancel());
    assert!(!user.done());
    let woken = sched.take();
    assert_eq!(woken.len(), 1, "cancel while queued queues nothing more");
    assert!(woken[0].run().is_ready());
    assert_eq!(user.take_outcome(), Some(Err(TaskError::Cancelled)));
    assert!(woken[0].take_panic().is_none());
}

#[test]
fn a_notified_dropped_on_another_thread_after_the_loop_closed_is_harmless() {
    let sched = Arc::new(Collect::default());
    let ready = Rc::new(Cell::new(false));
    let (task, user) = spawn(holding(ready.clone()), &sched);
    // The future wakes itself: a `Notified` is queued by the poll.
    assert!(task.run().is_pending());
    let mut notified = sched.take_notified();
    assert_eq!(notified.len(), 1);
    assert!(user.cancel(), "cancel while notified");
    // The loop closes before it gets to the task: it aborts it and forgets it; the
    // `Notified` in flight is dropped on another thread, last.
    task.abort();
    drop((task, user));
    assert_eq!(Rc::strong_count(&ready), 1);
    let far = notified.pop().expect("notified");
    std::thread::spawn(move || drop(far)).join().unwrap();
    assert_eq!(
        Arc::strong_count(&sched),
        1,
        "the last `Notified` freed the cell"
    );
}

#[test]
fn a_panicking_future_hands_its_panic_to_the_loop_that_ran_it() {
    let sched = Arc::new(Collect::default());
    let (task, user) = spawn(async { panic!("task-boom") }, &sched);
    assert!(task.run().is_ready());
    let caught = task
        .take_panic()
        .expect("the panic, for the loop to report");
    assert_eq!(caught.message, "task-boom");
    let at = caught.location.expect("the panic's location");
    assert!(at.contains("tests/task.rs"), "location: {at}");
    assert!(task.take_panic().is_none(), "taken once");
    assert_eq!(
        user.take_outcome(),
        Some(Err(TaskError::Panicked("task-boom".into())))
    );
    assert!(task.run().is_ready(), "a panicked task runs nothing");
    assert!(task.take_panic().is_none());
}

#[test]
fn a_panic_no_loop_takes_goes_with_the_last_handle() {
    let sched = Arc::new(Collect::default());
    let held = Rc::new(());
    let h = held.clone();
    let (task, user) = new_task(
        async move {
            let _h = h;
            panic!("never-taken")
        },
        Some("untaken".into()),
    );
    task.bind(sched.clone());
    assert!(task.run().is_ready());
    assert_eq!(
        Rc::strong_count(&held),
        1,
        "the future went when it panicked"
    );
    // Printed to stderr (as the default exception handler would) when the task goes.
    drop((task, user));
    assert_eq!(Arc::strong_count(&sched), 1, "the cell was freed");
}

#[test]
fn a_panicking_destructor_of_a_finished_future_keeps_its_output() {
    let sched = Arc::new(Collect::default());
    /// Ready at once; its destructor (run by the task after it finished) panics.
    struct ReadyThenBoom {
        _bomb: PanicOnDrop,
    }
    impl Future for ReadyThenBoom {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            Poll::Ready(5)
        }
    }
    let (task, user) = spawn(
        ReadyThenBoom {
            _bomb: PanicOnDrop("drop-boom-after-ready"),
        },
        &sched,
    );
    assert!(task.run().is_ready());
    assert!(
        task.take_panic().is_none(),
        "a destructor's panic is printed, not reported"
    );
    assert_eq!(user.take_outcome(), Some(Ok(5)));
}

#[test]
fn a_panicking_destructor_while_aborted_or_dropped_unfinished_is_contained() {
    let sched = Arc::new(Collect::default());
    // Aborted (the loop closes): the future's destructor panics, its fields still go.
    let held = Rc::new(());
    let (task, user) = spawn(
        holding((PanicOnDrop("drop-boom-abort"), held.clone())),
        &sched,
    );
    assert!(task.run().is_pending());
    task.abort();
    assert_eq!(user.take_outcome(), Some(Err(TaskError::Cancelled)));
    assert_eq!(Rc::strong_count(&held), 1);
    drop((task, user));
    // Dropped unfinished (every local handle gone, never aborted).
    let (task, user) = spawn(
        holding((PanicOnDrop("drop-boom-last"), held.clone())),
        &sched,
    );
    assert!(task.run().is_pending());
    drop((task, user));
    assert_eq!(Rc::strong_count(&held), 1);
    drop(sched.take_notified());
    assert_eq!(Arc::strong_count(&sched), 1, "both cells were freed");
}

#[test]
fn a_poll_panic_unwinding_through_destructors_is_handed_back_once() {
    let sched = Arc::new(Collect::default());
    let (task, user) = spawn(
        async {
            let _bomb = PanicOnDrop("drop-boom-in-unwind");
            std::future::ready(()).await;
            panic!("poll-boom")
        },
        &sched,
    );
    assert!(task.run().is_ready());
    assert_eq!(
        task.take_panic().map(|p| p.message).as_deref(),
        Some("poll-boom")
    );
    assert_eq!(
        user.take_outcome(),
        Some(Err(TaskError::Panicked("poll-boom".into())))
    );
}

#[test]
fn a_panicking_destructor_of_the_output_is_contained() {
    let sched = Arc::new(Collect::default());
    let (task, user) = spawn(async { PanicOnDrop("output-drop-boom") }, &sched);
    assert!(task.run().is_ready());
    // Nobody takes the output: it is dropped with the last local handle.
    drop((task, user));
    assert_eq!(Arc::strong_count(&sched), 1);
}

#[test]
fn a_future_that_drops_its_own_handles_and_aborts_itself_while_polled() {
    let sched = Arc::new(Collect::default());
    /// The task's own handles, given to its future.
    type Own = Rc<Cell<Option<(TaskRef, Task<()>)>>>;
    let own: Own = Rc::new(Cell::new(None));
    let o = own.clone();
    let (task, user) = spawn(
        poll_fn(move |_| {
            if let Some((t, u)) = o.take() {
                // Abort from inside the poll only records the request; the handles go.
                t.abort();
                drop((t, u));
            }
            Poll::<()>::Pending
        }),
        &sched,
    );
    own.set(Some((task.clone(), user)));
    assert!(task.run().is_pending());
    assert!(task.cancelling());
    assert!(
        task.run().is_ready(),
        "the abort takes effect at the next run"
    );
    drop(task);
    assert_eq!(Arc::strong_count(&sched), 1);
}

#[test]
fn loop_slot_keeps_every_value_even_beyond_32_bits() {
    let sched = Arc::new(Collect::default());
    let (task, _user) = spawn(async {}, &sched);
    assert_eq!(task.loop_slot(), usize::MAX, "unset");
    let far = usize::try_from(u64::from(u32::MAX) + 7).expect("64-bit");
    for slot in [
        0,
        1,
        12345,
        far - 8,
        far - 7,
        far,
        usize::MAX - 1,
        3,
        usize::MAX,
    ] {
        task.set_loop_slot(slot);
        assert_eq!(task.loop_slot(), slot);
    }
    drop(task);
}

#[test]
fn a_task_waker_is_known_for_one_and_others_are_not() {
    let sched = Arc::new(Collect::default());
    let (slot, ready) = (Rc::new(Cell::new(None)), Rc::new(Cell::new(false)));
    let (task, _user) = spawn(parked(slot.clone(), ready), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("the task's waker");
    assert!(crate::is_loop_task_waker(&waker), "a task's own waker");
    assert!(!crate::is_loop_task_waker(Waker::noop()), "a foreign waker");
    // Woken by value (the waker's count goes with the task to its scheduler), then freed.
    waker.wake();
    let woken = sched.take();
    assert_eq!(woken.len(), 1, "the task was queued once");
}

#[test]
fn wake_into_hands_back_a_task_of_its_scheduler_and_leaves_others_alone() {
    let sched = Arc::new(Collect::default());
    let other = Arc::new(Collect::default());
    let slot = Rc::new(Cell::new(None));
    let ready = Rc::new(Cell::new(false));
    let (task, mut user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    assert!(task.run().is_pending());
    let ours: *const () = Arc::as_ptr(&sched).cast();
    // A waker that is not a task's, and a task's of another scheduler, come back unused.
    assert!(crate::raw::wake_into(Waker::noop().clone(), ours).is_err());
    let waker = slot.take().expect("a waker");
    let back = crate::raw::wake_into(waker.clone(), Arc::as_ptr(&other).cast());
    let back = back.expect_err("not bound to `other`");
    assert!(back.will_wake(&waker));
    drop(back);
    // Its own scheduler's: handed back once (not queued yet), then queued already; the
    // scheduler is never called.
    let woken = crate::raw::wake_into(waker.clone(), ours).expect("bound to `sched`");
    let woken = woken.expect("not queued yet");
    assert!(matches!(
        crate::raw::wake_into(waker.clone(), ours),
        Ok(None)
    ));
    assert!(sched.take_notified().is_empty() && other.take_notified().is_empty());
    // SAFETY: the test's thread made the task.
    let woken = unsafe { woken.into_local() };
    ready.set(true);
    assert!(woken.run().is_ready());
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(Pin::new(&mut user).poll(&mut cx), Poll::Ready(Ok(7)));
    // Every unit given back: once the handles and wakers are gone, the task is freed, and
    // with it its scheduler (a unit kept by a wake that found it queued would keep both).
    let sched = Arc::new(Collect::default());
    let ours: *const () = Arc::as_ptr(&sched).cast();
    let (slot, ready) = (Rc::new(Cell::new(None)), Rc::new(Cell::new(false)));
    let (task, user) = spawn(parked(slot.clone(), ready.clone()), &sched);
    assert!(task.run().is_pending());
    let waker = slot.take().expect("a waker");
    let woken = crate::raw::wake_into(waker.clone(), ours).expect("bound to `sched`");
    assert!(woken.is_some(), "not queued yet");
    assert!(matches!(
        crate::raw::wake_into(waker.clone(), ours),
        Ok(None)
    ));
    drop((woken, waker, task, user));
    assert_eq!(Arc::strong_count(&sched), 1, "the task was freed");
}
