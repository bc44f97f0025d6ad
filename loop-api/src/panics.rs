//! Panics a loop catches are printed once: by the loop's report, not also by Rust's panic hook.
//!
//! A panic in a callback or a task is caught by the loop and sent to its exception handler
//! ("Exception in callback ...", "Task Task-3 panicked", with the panic's message and
//! location); a panic in an executor job becomes the `Panicked` outcome of the job's future.
//! Rust's panic hook would print each first ("thread ... panicked at ..."). So the first
//! region run through [`catch_reported`] installs, once per process, a panic hook that stays
//! silent for a panic raised while its thread is inside such a region (recording where it
//! happened, for the report) and hands every other panic to the hook installed before it
//! (Rust's default one, or the program's own).
//!
//! The future given to `run_until_complete` is not such a region: the loop does not report
//! its panic but returns it (`LoopError::Panicked`), so the hook prints it once, as before.
//! A panic a destructor raises while the loop drops a finished future is contained and
//! printed by the hook, too.
//!
//! A hook the program installs later with `std::panic::set_hook` replaces this one: loop-caught
//! panics are then printed by that hook as well, and reports carry no location. A hook
//! installed before the first loop runs is kept (chained).

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::panic_message;

thread_local! {
    /// How many regions whose panics a loop reports this thread is inside (0: none).
    static REPORTED_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic the hook kept silent on this thread happened.
    static LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Installs the silencing hook (once per process), chained to the hook in place.
fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let reported = REPORTED_DEPTH.try_with(Cell::get).unwrap_or(0) > 0;
            if !reported {
                return previous(info);
            }
            let location = info.location().map(ToString::to_string);
            // During thread teardown the slot may be gone: the location is then unknown.
            let _ = LOCATION.try_with(|l| l.set(location));
        }));
    });
}

/// A panic caught by [`catch_reported`]: what it said and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtPanic {
    /// The panic's message (see [`panic_message`]).
    pub message: String,
    /// Where it was raised (`file:line:column`), if the panic hook could tell.
    pub location: Option<String>,
}

/// Runs `f`, catching a panic that the caller reports (to the exception handler, or as a
/// `Panicked` outcome): Rust's panic hook stays silent for it, so it is printed once, by that
/// report. For loop implementations; see the [module docs](self).
///
/// # Errors
/// The panic `f` raised, with its message and location.
pub fn catch_reported<R>(f: impl FnOnce() -> R) -> Result<R, CaughtPanic> {
    install_hook();
    REPORTED_DEPTH.with(|d| d.set(d.get() + 1));
    let caught = panic::catch_unwind(AssertUnwindSafe(f));
    REPORTED_DEPTH.with(|d| d.set(d.get() - 1));
    caught.map_err(|payload| {
        let message = panic_message(&*payload);
        drop(payload);
        CaughtPanic {
            message,
            location: LOCATION.with(Cell::take),
        }
    })
}

/// Runs `f`, catching a panic that nobody reports: Rust's panic hook prints it, even inside a
/// region of [`catch_reported`].
pub(crate) fn catch_printed<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    let outer = REPORTED_DEPTH.with(|d| d.replace(0));
    let caught = panic::catch_unwind(AssertUnwindSafe(f));
    REPORTED_DEPTH.with(|d| d.set(outer));
    caught
}
