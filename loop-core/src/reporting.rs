//! The loop's reporting part: the exception handler and debug mode (asyncio's
//! `call_exception_handler`, `set_debug`, `slow_callback_duration`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use loop_api::ExceptionContext;
use loop_api::ExceptionHandler;
use loop_api::panics::{CaughtPanic, catch_reported};

/// The exception handler, shared so it can be called while it replaces itself.
type SharedHandler = Rc<dyn Fn(&ExceptionContext)>;

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

    /// Calls the exception handler (or the default one); a handler's panic is contained.
    pub(crate) fn call(&self, context: &ExceptionContext) {
        let handler = self.handler.borrow().clone();
        match handler {
            Some(h) => {
                if let Err(p) = catch_reported(|| h(context)) {
                    let at = p.location.map(|l| format!(" (at {l})")).unwrap_or_default();
                    eprintln!(
                        "Unhandled panic in the exception handler: {}{at}\nwhile handling: {context}",
                        p.message
                    );
                }
            }
            None => eprintln!("{context}"),
        }
    }

    /// Reports a callback that panicked.
    pub(crate) fn callback_panicked(&self, name: &str, caught: CaughtPanic) {
        self.call(&ExceptionContext {
            message: format!("Exception in callback {name}"),
            panic: Some(caught.message),
            location: caught.location,
            callback: Some(name.to_string()),
            ..ExceptionContext::default()
        });
    }

    /// In debug mode, reports a callback that ran for `took` if that is slow.
    pub(crate) fn maybe_slow(&self, name: String, took: Duration) {
        if took >= self.slow_callback.get() {
            self.slow_reported.set(self.slow_reported.get() + 1);
            self.call(&ExceptionContext {
                message: format!("Executing {name} took {:.3} seconds", took.as_secs_f64()),
                callback: Some(name),
                duration: Some(took),
                ..ExceptionContext::default()
            });
        }
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
