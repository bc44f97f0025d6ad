//! The backends built into this binary: the one place that names the backend crates.
//!
//! Adding a backend is one cargo feature (`polling = ["dep:loop-polling"]` in `Cargo.toml`) and
//! one arm in [`entry`]; then take it off [`NOT_YET_IMPLEMENTED`]. Everything else
//! ([`Backend::is_available`], [`Backend::resolve`], the error texts) follows from the table.

use loop_api::{EventLoop, LoopError};
use loop_core::LoopConfig;

use crate::backend::Backend;

/// How to make and probe one concrete backend.
#[derive(Clone, Copy)]
#[cfg_attr(
    not(any(feature = "mio", feature = "polling", feature = "uring")),
    allow(dead_code)
)]
pub(crate) struct Entry {
    /// Makes a new loop on this backend, set up by the config (clock, debug).
    pub(crate) open: fn(LoopConfig) -> Result<EventLoop, LoopError>,
    /// `Ok` if the backend can run here, else why not (and what to do).
    pub(crate) probe: fn() -> Result<(), Refusal>,
}

/// Why a backend cannot run here.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    /// What happened and what to do.
    pub(crate) reason: String,
    /// The cause may pass by itself (no fd or memory left now): trying again later may work.
    pub(crate) transient: bool,
}

impl Refusal {
    /// A lasting refusal for `reason`.
    fn lasting(reason: String) -> Refusal {
        Refusal {
            reason,
            transient: false,
        }
    }
}

/// Backends planned for later issues: asking for one says so instead of "enable the feature".
const NOT_YET_IMPLEMENTED: &[Backend] = &[];

/// The preference order of [`Backend::Auto`]: the first available one wins.
pub(crate) const AUTO_ORDER: &[Backend] = &[Backend::Uring, Backend::Mio, Backend::Polling];

/// What `Auto` falls back to when nothing in [`AUTO_ORDER`] is available (its error then
/// says why).
pub(crate) const AUTO_FALLBACK: Backend = Backend::Mio;

/// The table entry of a concrete backend, or `None` if it is not built into this binary.
pub(crate) fn entry(b: Backend) -> Option<Entry> {
    match b {
        #[cfg(feature = "mio")]
        Backend::Mio => Some(Entry {
            open: loop_mio::new_event_loop_with,
            probe: always_available,
        }),
        #[cfg(feature = "polling")]
        Backend::Polling => Some(Entry {
            open: loop_polling::new_event_loop_with,
            probe: always_available,
        }),
        #[cfg(feature = "uring")]
        Backend::Uring => Some(Entry {
            open: loop_uring::new_event_loop_with,
            probe: || {
                loop_uring::probe().map(drop).map_err(|u| Refusal {
                    transient: u.is_transient(),
                    reason: u.reason,
                })
            },
        }),
        _ => None,
    }
}

/// Why `b` (a concrete backend) cannot be used in this binary, when [`entry`] has none.
pub(crate) fn missing_reason(b: Backend) -> String {
    if NOT_YET_IMPLEMENTED.contains(&b) {
        "not implemented yet (it comes in a later release)".to_string()
    } else {
        format!("not built into this binary: enable the `{b}` feature of loop-policy")
    }
}

/// `Ok` if `b` (a concrete backend) is built in and its probe passes, else why not.
pub(crate) fn probe(b: Backend) -> Result<(), Refusal> {
    match entry(b) {
        Some(e) => (e.probe)(),
        None => Err(Refusal::lasting(missing_reason(b))),
    }
}

/// Makes a loop set up by `config` on `b` (a concrete backend), or says why it cannot (an
/// `Unavailable` error gives the reason alone; [`open`] adds what to use instead).
pub(crate) fn try_open(b: Backend, config: &LoopConfig) -> Result<EventLoop, LoopError> {
    let unavailable = |reason: String| LoopError::Unavailable {
        backend: b.name().to_string(),
        reason,
    };
    let e = entry(b).ok_or_else(|| unavailable(missing_reason(b)))?;
    (e.probe)().map_err(|r| unavailable(r.reason))?;
    (e.open)(config.clone())
}

/// Makes a loop set up by `config` on `b` (a concrete backend), or says why it cannot; an
/// `Unavailable` error also names the backends that work here instead.
pub(crate) fn open(b: Backend, config: &LoopConfig) -> Result<EventLoop, LoopError> {
    try_open(b, config).map_err(|e| with_alternatives(b, e))
}

/// `e`, a failure to make a loop on `b`; if it is `Unavailable`, its reason now also names the
/// backends that work here instead.
pub(crate) fn with_alternatives(b: Backend, e: LoopError) -> LoopError {
    match e {
        LoopError::Unavailable { backend, reason } => LoopError::Unavailable {
            backend,
            reason: format!("{reason}; {}", alternatives(b)),
        },
        other => other,
    }
}

/// What to do instead of `b`: the backends that work here.
fn alternatives(b: Backend) -> String {
    let usable: Vec<&str> = Backend::ALL
        .iter()
        .filter(|&&other| other != b && other != Backend::Auto && probe(other).is_ok())
        .map(Backend::name)
        .collect();
    if usable.is_empty() {
        "no backend is available in this binary".to_string()
    } else {
        format!("use LOOP_BACKEND=auto or {}", usable.join(" or "))
    }
}

#[cfg(any(feature = "mio", feature = "polling"))]
fn always_available() -> Result<(), Refusal> {
    Ok(())
}
