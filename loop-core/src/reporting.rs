//! The loop's reporting part: the exception handler and debug mode (asyncio's
//! `call_exception_handler`, `set_debug`, `slow_callback_duration`).
//!
//! Without a handler set, a report goes to the default one: stderr or, with the `tracing`
//! feature and a `tracing` subscriber in place, a `tracing` event (see `trace.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use loop_api::panics::{CaughtPanic, catch_reported};
use loop_api::{ExceptionContext, ExceptionHandler, TaskRef};

/// The exception handler, shared so it can be called while it replaces itself.
type SharedHandler = Rc<dyn Fn(&ExceptionContext)>;

/// What a report is about: the `report` field (and the level) of its `tracing` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// A callback or a task panicked (also: the exception handler itself).
    Panic,
    /// Debug mode: a callback or a task poll ran for `slow_callback_duration` or longer.
    Slow,
    /// Debug mode: a loop was dropped without `close()`.
    UnclosedLoop,
    /// Debug mode: a task that never ran was still pending when its loop closed.
    NeverRan,
    /// Anything else: an fd that can no longer be watched, a user's `call_exception_handler`.
    Error,
}

impl Report {
    /// Reported at level ERROR (else WARN): a panic or an error.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn is_error(self) -> bool {
        matches!(self, Report::Panic | Report::Error)
    }

    /// The `report` field of the event.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Report::Panic => "panic",
            Report::Slow => "slow_callback",
            Report::UnclosedLoop => "unclosed_loop",
            Report::NeverRan => "task_never_ran",
            Report::Error => "error",
        }
    }
}

/// Where a loop's errors go, and whether it is in debug mode.
pub(crate) struct Reporting {
    handler: RefCell<Option<SharedHandler>>,
    debug: Cell<bool>,
    slow_callback: Cell<Duration>,
    /// Slow callbacks reported so far.
    slow_reported: Cell<u64>,
}

impl Reporting {
    pub(crate) fn new(debug: bool, slow_callback: Duration) -> Self {
        Reporting {
            handler: RefCell::new(None),
            debug: Cell::new(debug),
            slow_callback: Cell::new(slow_callback),
            slow_reported: Cell::new(0),
        }
    }

    /// Sets (or with `None`, resets to the default: print to stderr) the handler.
    pub(crate) fn set_handler(&self, handler: Option<ExceptionHandler>) {
        *self.handler.borrow_mut() = handler.map(Rc::from);
    }

    /// Calls the exception handler (or the default one) with a report of any kind (a user's
    /// `call_exception_handler`, an I/O error).
    pub(crate) fn call(&self, context: &ExceptionContext) {
        self.report(Report::Error, context);
    }

    /// Calls the exception handler (or the default one) with a report of kind `kind`; a
    /// handler's panic is contained.
    pub(crate) fn report(&self, kind: Report, context: &ExceptionContext) {
        let handler = self.handler.borrow().clone();
        let Some(h) = handler else {
            return default_handler(kind, context);
        };
        if let Err(p) = catch_reported(|| h(context)) {
            let at = p.location.map(|l| format!(" (at {l})")).unwrap_or_default();
            let message = format!(
                "Unhandled panic in the exception handler: {}{at}\nwhile handling: {context}",
                p.message
            );
            default_handler(
                Report::Panic,
                &ExceptionContext {
                    message,
                    ..ExceptionContext::default()
                },
            );
        }
    }

    /// Reports a callback that panicked.
    pub(crate) fn callback_panicked(&self, name: &str, caught: CaughtPanic) {
        self.report(
            Report::Panic,
            &ExceptionContext {
                message: format!("Exception in callback {name}"),
                panic: Some(caught.message),
                location: caught.location,
                callback: Some(name.to_string()),
                ..ExceptionContext::default()
            },
        );
    }

    /// In debug mode, reports a callback that ran for `took` if that is slow.
    pub(crate) fn maybe_slow(&self, name: String, took: Duration) {
        if took >= self.slow_callback.get() {
            self.slow(ExceptionContext {
                message: format!("Executing {name} took {:.3} seconds", took.as_secs_f64()),
                callback: Some(name),
                duration: Some(took),
                ..ExceptionContext::default()
            });
        }
    }

    /// In debug mode, reports a poll of `task` that ran for `took` if that is slow: with the
    /// task's name and where it was made.
    pub(crate) fn maybe_slow_task(&self, task: &TaskRef, took: Duration) {
        if took >= self.slow_callback.get() {
            let (name, site) = (task.name(), task.created_at());
            self.slow(ExceptionContext {
                message: format!(
                    "Executing task {name} (created at {site}) took {:.3} seconds",
                    took.as_secs_f64()
                ),
                task: Some(name),
                created_at: Some(site),
                duration: Some(took),
                ..ExceptionContext::default()
            });
        }
    }

    fn slow(&self, context: ExceptionContext) {
        self.slow_reported.set(self.slow_reported.get() + 1);
        self.report(Report::Slow, &context);
    }

    /// In debug mode, reports `task`, which never ran and is pending while its loop closes
    /// (asyncio's "Task was destroyed but it is pending!").
    pub(crate) fn never_ran(&self, task: &TaskRef) {
        let (name, site) = (task.name(), task.created_at());
        self.report(
            Report::NeverRan,
            &ExceptionContext {
                message: format!(
                    "Task {name} (created at {site}) was destroyed but it is pending: it never ran before its loop closed"
                ),
                task: Some(name),
                created_at: Some(site),
                ..ExceptionContext::default()
            },
        );
    }

    /// Slow callbacks reported so far.
    pub(crate) fn slow_callbacks(&self) -> u64 {
        self.slow_reported.get()
    }

    pub(crate) fn debug(&self) -> bool {
        self.debug.get()
    }

    pub(crate) fn set_debug(&self, on: bool) {
        self.debug.set(on);
    }

    pub(crate) fn slow_callback(&self) -> Duration {
        self.slow_callback.get()
    }

    pub(crate) fn set_slow_callback(&self, threshold: Duration) {
        self.slow_callback.set(threshold);
    }
}

/// The default exception handler: a `tracing` event when the `tracing` feature is on and a
/// subscriber is in place, else the report printed on stderr.
fn default_handler(kind: Report, context: &ExceptionContext) {
    #[cfg(feature = "tracing")]
    if crate::trace::report(kind.name(), kind.is_error(), context) {
        return;
    }
    #[cfg(not(feature = "tracing"))]
    let _ = kind;
    eprintln!("{context}");
}
