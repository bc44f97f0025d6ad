//! The `tracing` feature: the loop's reports as `tracing` events, and a span around each
//! task poll.
//!
//! - Each report of the default exception handler (no handler set) becomes one event of
//!   target `loop_core` when a subscriber is in place (else it is printed on stderr, as
//!   without the feature): level ERROR for panics and errors, WARN for debug mode's reports.
//!   Its message is the report's; its fields: `report` (`panic`, `slow_callback`,
//!   `unclosed_loop`, `task_never_ran`, `error`) and, when known, `callback`, `task`,
//!   `created_at`, `panic`, `location`, `error`, `duration_secs`.
//! - Each task poll runs in a TRACE span `poll` (target `loop_core`) with the fields
//!   `task.id` and `task.name`: a report made during the poll (the task's panic) is inside it.
//!   While no subscriber wants TRACE events, the span costs a relaxed load and a branch per
//!   poll (tracing's global maximum level); its fields are not computed.

use loop_api::{ExceptionContext, TaskRef};
use tracing::Level;
use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};

/// True when a subscriber may want the TRACE span of a task poll: what `trace_span!` checks
/// first (one relaxed load), without making a disabled span, whose drop is out of line.
#[inline(always)]
pub(crate) fn wants_poll_spans() -> bool {
    Level::TRACE <= STATIC_MAX_LEVEL && Level::TRACE <= LevelFilter::current()
}

/// Runs `poll` (a poll of `task`) in the span `poll` naming the task.
#[inline(never)]
pub(crate) fn in_poll_span(task: &TaskRef, poll: impl FnOnce()) {
    let span = tracing::trace_span!(
        target: "loop_core",
        "poll",
        task.id = task.id(),
        task.name = %task.name()
    );
    let _entered = span.entered();
    poll();
}

/// True when a subscriber other than the "none" one is in place for this thread.
fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

/// Sends the report as an event, if a subscriber is in place; false if there is none (then
/// the caller prints it). `name` is its `report` field; `error`: level ERROR, else WARN.
pub(crate) fn report(name: &'static str, error: bool, ctx: &ExceptionContext) -> bool {
    if !has_subscriber() {
        return false;
    }
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "loop_core",
                $level,
                report = name,
                callback = ctx.callback.as_deref(),
                task = ctx.task.as_deref(),
                created_at = ctx.created_at.map(tracing::field::display),
                panic = ctx.panic.as_deref(),
                location = ctx.location.as_deref(),
                error = ctx.error.as_deref(),
                duration_secs = ctx.duration.map(|d| d.as_secs_f64()),
                "{}",
                ctx.message
            )
        };
    }
    if error {
        emit!(Level::ERROR);
    } else {
        emit!(Level::WARN);
    }
    true
}
