//! [`ExceptionContext`]: what a loop tells its exception handler.

use std::fmt;
use std::time::Duration;

use crate::panics::CaughtPanic;

/// What went wrong, handed to the loop's exception handler (asyncio's `context` dict).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExceptionContext {
    /// A sentence saying what happened ("Exception in callback ...", "Task Task-3 panicked").
    pub message: String,
    /// The panic message, when a callback or task panicked.
    pub panic: Option<String>,
    /// The name of the callback involved (its type name), if any.
    pub callback: Option<String>,
    /// The name of the task involved, if any.
    pub task: Option<String>,
    /// The text of an I/O error involved, if any.
    pub error: Option<String>,
    /// How long the callback ran (debug mode's slow-callback report).
    pub duration: Option<Duration>,
    /// Where the panic was raised (`file:line:column`), when the loop caught one and Rust's
    /// panic hook told it (see [`panics`](crate::panics)).
    pub location: Option<String>,
    /// Where the task involved was made ([`AnyTask::created_at`](crate::AnyTask::created_at)),
    /// in the reports of debug mode about a task (asyncio's `source_traceback`).
    pub created_at: Option<&'static std::panic::Location<'static>>,
}

impl ExceptionContext {
    /// The report of a task whose future panicked ("Task NAME panicked", with the panic's
    /// message and location and the task's name): what a loop gives its exception handler for
    /// the panic [`TaskRef::take_panic`](crate::TaskRef::take_panic) hands it.
    pub fn task_panicked(task: String, caught: CaughtPanic) -> Self {
        ExceptionContext {
            message: format!("Task {task} panicked"),
            panic: Some(caught.message),
            location: caught.location,
            task: Some(task),
            ..ExceptionContext::default()
        }
    }
}

impl fmt::Display for ExceptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(cb) = &self.callback {
            write!(f, "\ncallback: {cb}")?;
        }
        if let Some(task) = &self.task {
            write!(f, "\ntask: {task}")?;
        }
        if let Some(site) = &self.created_at {
            write!(f, "\ncreated at: {site}")?;
        }
        if let Some(p) = &self.panic {
            write!(f, "\npanic: {p}")?;
        }
        if let Some(at) = &self.location {
            write!(f, "\nlocation: {at}")?;
        }
        if let Some(e) = &self.error {
            write!(f, "\nerror: {e}")?;
        }
        if let Some(d) = &self.duration {
            write!(f, "\nduration: {:.3} seconds", d.as_secs_f64())?;
        }
        Ok(())
    }
}

/// A loop's exception handler (asyncio's `set_exception_handler`).
pub type ExceptionHandler = Box<dyn Fn(&ExceptionContext) + 'static>;
