//! The loop's tasks part: the unfinished tasks (asyncio's `all_tasks`), which the loop keeps
//! alive (dropping a `Task` does not cancel it) and aborts when it closes.

use std::cell::RefCell;
use std::sync::Arc;

use loop_api::{Schedule, TaskRef};
use slab::Slab;

/// The unfinished tasks; each knows its key here (`TaskRef::loop_slot`). A slab: removing one
/// touches no other task (tasks are big and many; their cells are cold).
#[derive(Default)]
pub(crate) struct Tasks {
    slab: RefCell<Slab<TaskRef>>,
}

impl Tasks {
    /// Binds `task` to `scheduler` and keeps it until it finishes.
    pub(crate) fn insert(&self, task: &TaskRef, scheduler: Arc<dyn Schedule>) {
        task.bind(scheduler);
        let mut slab = self.slab.borrow_mut();
        let entry = slab.vacant_entry();
        task.set_loop_slot(entry.key());
        entry.insert(task.clone());
    }

    /// Forgets a finished task.
    pub(crate) fn forget(&self, task: &TaskRef) {
        let i = task.loop_slot();
        let removed = {
            let mut slab = self.slab.borrow_mut();
            if slab.get(i).is_none_or(|t| !t.ptr_eq(task)) {
                return;
            }
            slab.remove(i)
        };
        removed.set_loop_slot(usize::MAX);
        // Not the last local handle (the caller holds one): dropping it runs no user code.
        drop(removed);
    }

    /// The unfinished tasks.
    pub(crate) fn all(&self) -> Vec<TaskRef> {
        self.slab.borrow().iter().map(|(_, t)| t.clone()).collect()
    }

    /// The unfinished tasks that were never polled (debug mode reports them at close).
    pub(crate) fn never_ran(&self) -> impl Iterator<Item = TaskRef> {
        let mut tasks = self.all();
        tasks.retain(|t| t.polls() == 0);
        tasks.into_iter()
    }

    /// How many tasks are unfinished.
    pub(crate) fn len(&self) -> usize {
        self.slab.borrow().len()
    }

    /// Aborts every unfinished task (the loop is closing); their futures are dropped outside
    /// the borrow, since destructors may call back into the loop.
    pub(crate) fn abort_all(&self) {
        let tasks: Vec<TaskRef> = std::mem::take(&mut *self.slab.borrow_mut())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        for t in &tasks {
            t.abort();
        }
        drop(tasks);
    }
}
