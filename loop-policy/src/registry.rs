//! The backends built into this binary: the one place that names the backend crates.
//!
//! Adding a backend is one cargo feature (`polling = ["dep:loop-polling"]` in `Cargo.toml`) and
//! one arm in [`entry`]; then take it off [`NOT_YET_IMPLEMENTED`]. Everything else
//! ([`Backend::is_available`], [`Backend::resolve`], the error texts) follows from the table.

use loop_api::{EventLoop, LoopError};

use crate::backend::Backend;

/// How to make and probe one concrete backend.
#[derive(Clone, Copy)]
#[cfg_attr(
    not(any(feature = "mio", feature = "polling", feature = "uring")),
    allow(dead_code)
)]
pub(crate) struct Entry {
    /// Makes a new loop on this backend.
    pub(crate) open: fn() -> Result<EventLoop, LoopError>,
    /// Makes a new test loop (virtual time) on this backend.
    pub(crate) open_virtual: fn() -> Result<EventLoop, LoopError>,
    /// `Ok` if the backend can run here, else why not (and what to do).
    pub(crate) probe: fn() -> Result<(), String>,
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
            open: loop_mio::new_event_loop,
            open_virtual: loop_mio::new_virtual_event_loop,
            probe: always_available,
        }),
        #[cfg(feature = "polling")]
        Backend::Polling => Some(Entry {
            open: loop_polling::new_event_loop,
            open_virtual: loop_polling::new_virtual_event_loop,
            probe: always_available,
        }),
        #[cfg(feature = "uring")]
        Backend::Uring => Some(Entry {
            open: loop_uring::new_event_loop,
            open_virtual: loop_uring::new_virtual_event_loop,
            probe: || loop_uring::probe().map(drop).map_err(|u| u.reason),
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

/// `Ok` if `b` (a concrete backend) is built in and its probe passes, else the reason.
pub(crate) fn probe(b: Backend) -> Result<(), String> {
    match entry(b) {
        Some(e) => (e.probe)(),
        None => Err(missing_reason(b)),
    }
}

/// Makes a loop on `b` (a concrete backend), or says why it cannot.
pub(crate) fn open(b: Backend) -> Result<EventLoop, LoopError> {
    (checked_entry(b)?.open)()
}

/// Makes a test loop (virtual time) on `b` (a concrete backend), or says why it cannot.
pub(crate) fn open_virtual(b: Backend) -> Result<EventLoop, LoopError> {
    (checked_entry(b)?.open_virtual)()
}

/// The entry of `b` if it is built in and its probe passes, else `Unavailable` saying why.
fn checked_entry(b: Backend) -> Result<Entry, LoopError> {
    let unavailable = |reason: String| LoopError::Unavailable {
        backend: b.name().to_string(),
        reason: format!("{reason}; {}", alternatives(b)),
    };
    let e = entry(b).ok_or_else(|| unavailable(missing_reason(b)))?;
    (e.probe)().map_err(unavailable)?;
    Ok(e)
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
fn always_available() -> Result<(), String> {
    Ok(())
}
