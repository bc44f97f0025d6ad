//! The mio backend (placeholder until loop-core lands).
use loop_api::{EventLoop, LoopError};

/// Makes a new loop on the mio backend.
///
/// # Errors
/// An I/O error if the OS selector cannot be created.
pub fn new_event_loop() -> Result<EventLoop, LoopError> {
    Err(LoopError::NotSupported("loop-mio is being built".into()))
}
