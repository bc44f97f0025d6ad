//! The io_uring backend: a completion-based [`Driver`](loop_core::Driver) for `loop-core`.
//!
//! Linux only (5.11+, with `IORING_FEAT_NODROP` and `IORING_FEAT_EXT_ARG`); elsewhere, or where
//! io_uring is blocked, [`probe`] says why and [`new_event_loop`] returns
//! `LoopError::Unavailable` with that reason.
//!
//! ```
//! match loop_uring::new_event_loop() {
//!     Ok(lp) => {
//!         assert_eq!(lp.backend_name(), "uring");
//!         assert_eq!(lp.run_until_complete(async { 1 + 1 })?, 2);
//!         lp.close()?;
//!     }
//!     Err(e) => println!("no io_uring here: {e}"),
//! }
//! # Ok::<(), loop_api::LoopError>(())
//! ```
#![deny(missing_docs)]

#[cfg(target_os = "linux")]
mod driver;
#[cfg(target_os = "linux")]
mod files;
#[cfg(target_os = "linux")]
mod lending;
#[cfg(target_os = "linux")]
mod order;
mod probe;

#[cfg(target_os = "linux")]
pub use driver::UringDriver;
pub use probe::{
    Capabilities, DISABLE_VAR, Unavailable, disabled_by_env, is_supported, probe, probe_uncached,
};

use loop_api::{EventLoop, LoopError};
pub use loop_core::LoopConfig;

/// Makes a new loop on io_uring (not set as any thread's current loop), on the system's
/// clock: [`new_event_loop_with`] with the default [`LoopConfig`].
///
/// # Errors
/// `LoopError::Unavailable` with the probe's reason when io_uring cannot run here.
pub fn new_event_loop() -> Result<EventLoop, LoopError> {
    new_event_loop_with(LoopConfig::default())
}

/// Makes a new loop on io_uring set up by `config` (a test loop on virtual time with
/// [`LoopConfig::virtual_time`]).
///
/// # Errors
/// `LoopError::Unavailable` with the probe's reason when io_uring cannot run here.
pub fn new_event_loop_with(config: LoopConfig) -> Result<EventLoop, LoopError> {
    #[cfg(target_os = "linux")]
    {
        Ok(loop_core::event_loop_with(UringDriver::new()?, config))
    }
    #[cfg(not(target_os = "linux"))]
    {
        drop(config);
        Err(probe()
            .err()
            .map(Into::into)
            .unwrap_or(LoopError::NotSupported("io_uring".into())))
    }
}

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
