//! The task's counting and waking rules, with a scheduler that only collects woken tasks.

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use super::*;

/// Collects woken tasks, as a loop's remote queue would.
#[derive(Default)]
struct Collect(Mutex<Vec<Notified>>);

impl Schedule for Collect {
    fn schedule(&self, task: Notified) {
        self.0.lock().unwrap().push(task);
    }
}

impl Collect {
    fn take(&self) -> Vec<TaskRef> {
        let woken = std::mem::take(&mut *self.0.lock().unwrap());
        // SAFETY: the tests run their tasks on the test's thread, where they were made.
        woken
            .into_iter()
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
