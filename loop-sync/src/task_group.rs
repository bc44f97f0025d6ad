//! [`TaskGroup`]: asyncio's structured concurrency (`async with asyncio.TaskGroup() as tg:`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use loop_api::{AnyTask, EventLoop, LoopError, Task, TaskError};
use slab::Slab;

/// What [`TaskGroup::join`] gives when children failed: their failures, in the order they
/// happened (the cancellations the group made because of them are not listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskGroupError {
    /// The failures (each a [`TaskError::Panicked`]).
    pub errors: Vec<TaskError>,
}

impl fmt::Display for TaskGroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} task(s) of the group failed", self.errors.len())?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskGroupError {}

/// What the group and its children share.
#[derive(Default)]
struct GroupState {
    /// The children that have not ended (`None` for a moment while one is being created).
    children: RefCell<Slab<Option<AnyTask>>>,
    errors: RefCell<Vec<TaskError>>,
    /// A child failed: the others were cancelled and no new child is accepted.
    aborting: Cell<bool>,
    joiner: RefCell<Option<Waker>>,
}

impl GroupState {
    /// Cancels every child that has not ended (but `except`).
    fn cancel_children(&self, except: Option<usize>) {
        let children: Vec<AnyTask> = self
            .children
            .borrow()
            .iter()
            .filter(|(key, _)| Some(*key) != except)
            .filter_map(|(_, t)| t.clone())
            .collect();
        for t in children {
            t.cancel();
        }
    }

    /// Child `key` failed: record it and, the first time, cancel the others.
    fn child_failed(&self, key: usize, error: TaskError) {
        self.errors.borrow_mut().push(error);
        if !self.aborting.replace(true) {
            self.cancel_children(Some(key));
        }
    }

    /// Child `key` ended (however): forget it; wake `join` when it was the last.
    fn child_ended(&self, key: usize) {
        let last = {
            let mut children = self.children.borrow_mut();
            children.try_remove(key);
            children.is_empty()
        };
        if last {
            let joiner = self.joiner.borrow_mut().take();
            if let Some(w) = joiner {
                w.wake();
            }
        }
    }
}

/// asyncio's `TaskGroup`: tasks that end together.
///
/// [`create_task`](Self::create_task) starts a child on the loop; [`join`](Self::join) waits
/// until every child has ended. When a child fails (panics), the group cancels every other
/// child, refuses new ones, and `join` returns a [`TaskGroupError`] holding the failures
/// (not the cancellations it caused). A child cancelled by the user does not fail the group.
/// Dropping a group that was not joined (or dropping the `join` future, as cancelling the
/// task in `async with` does in asyncio) cancels its children.
///
/// Not provided (it needs the current task): asyncio also cancels the task that runs
/// `async with` when a child fails; here, check the group's failure at `join`.
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # lp.run_until_complete(async {
/// let group = loop_sync::TaskGroup::new();
/// let a = group.create_task(async { 1 }).unwrap();
/// let b = group.create_task(async { 2 }).unwrap();
/// group.join().await.unwrap();
/// assert_eq!((a.await, b.await), (Ok(1), Ok(2)));
///
/// let group = loop_sync::TaskGroup::new();
/// let sleeper = group.create_task(loop_api::sleep(std::time::Duration::from_secs(3600))).unwrap();
/// group.create_task(async { panic!("boom") }).unwrap();
/// let err = group.join().await.unwrap_err();
/// assert_eq!(err.errors, vec![loop_api::TaskError::Panicked("boom".into())]);
/// assert_eq!(sleeper.await, Err(loop_api::TaskError::Cancelled));
/// # }).unwrap();
/// ```
///
/// (The panic is also reported to the loop's exception handler, as every task's panic is.)
pub struct TaskGroup {
    state: Rc<GroupState>,
    lp: Option<EventLoop>,
}

impl TaskGroup {
    /// A group whose children go on the running loop.
    pub fn new() -> Self {
        TaskGroup {
            state: Rc::default(),
            lp: None,
        }
    }

    /// A group whose children go on `lp` (so it can be filled before `lp` runs).
    pub fn with_loop(lp: EventLoop) -> Self {
        TaskGroup {
            state: Rc::default(),
            lp: Some(lp),
        }
    }

    /// Starts `fut` as a child task of the group.
    ///
    /// # Errors
    /// [`LoopError::NoRunningLoop`] outside a running loop (for a group made by
    /// [`new`](Self::new)); [`LoopError::InvalidArgument`] once a child has failed (the group
    /// is shutting down, as asyncio's `RuntimeError`); the loop's error (`Closed`).
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Result<Task<F::Output>, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.state.aborting.get() {
            return Err(LoopError::InvalidArgument(
                "this TaskGroup is shutting down (a child task failed): it takes no new task; \
                 join it and start a new group"
                    .into(),
            ));
        }
        let lp = match &self.lp {
            Some(lp) => lp.clone(),
            None => loop_api::get_running_loop()?,
        };
        let key = self.state.children.borrow_mut().insert(None);
        let child = Child {
            fut,
            guard: ChildGuard {
                state: self.state.clone(),
                key,
            },
        };
        match lp.create_task(child) {
            Ok(task) => {
                if let Some(slot) = self.state.children.borrow_mut().get_mut(key) {
                    *slot = Some(AnyTask::from(&task));
                }
                Ok(task)
            }
            Err(e) => {
                // The child was dropped unstarted, which removed it already; to be sure:
                self.state.children.borrow_mut().try_remove(key);
                Err(e)
            }
        }
    }

    /// How many children have not ended.
    pub fn len(&self) -> usize {
        self.state.children.borrow().len()
    }

    /// True if no child is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every child has ended.
    ///
    /// # Errors
    /// [`TaskGroupError`] with the failures, if any child failed.
    pub async fn join(self) -> Result<(), TaskGroupError> {
        let state = self.state.clone();
        poll_fn(|cx| {
            if state.children.borrow().is_empty() {
                return Poll::Ready(());
            }
            let mut joiner = state.joiner.borrow_mut();
            match &*joiner {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *joiner = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await;
        let errors = std::mem::take(&mut *state.errors.borrow_mut());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TaskGroupError { errors })
        }
    }
}

impl Default for TaskGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        // Not joined (or its join was dropped): the children go with it. After a finished
        // join there are none left.
        self.state.cancel_children(None);
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("children", &self.len())
            .field("failed", &self.state.errors.borrow().len())
            .field("aborting", &self.state.aborting.get())
            .finish()
    }
}

/// A child's future, with the guard that tells the group how it ended. The guard is dropped
/// after the future (field order), when the task drops its future: finished, panicked or
/// cancelled.
struct Child<F> {
    fut: F,
    guard: ChildGuard,
}

struct ChildGuard {
    state: Rc<GroupState>,
    key: usize,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Finished, failed (recorded when it panicked), or cancelled (by the user or by the
        // group) or never started: cancellations do not fail the group.
        self.state.child_ended(self.key);
    }
}

impl<F: Future> Future for Child<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `Child` (which has no
        // `Drop` of its own and is only reached through this pin), and `guard` is not pinned.
        let (fut, guard) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.fut), &mut this.guard)
        };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                let message = loop_api::panic_message(&*payload);
                guard
                    .state
                    .child_failed(guard.key, TaskError::Panicked(message));
                // The task itself still ends `Panicked`.
                resume_unwind(payload)
            }
        }
    }
}
