//! The process-wide policy (asyncio's `get_event_loop_policy()`) and the functions that use it.

use std::sync::{Arc, RwLock};

use loop_api::{EventLoop, LoopError, LoopPolicy};
use once_cell::sync::Lazy;

use crate::backend::Backend;
use crate::policy::DefaultLoopPolicy;

/// The global policy; `None` until first asked for (then a [`DefaultLoopPolicy::new`]).
static POLICY: Lazy<RwLock<Option<Arc<dyn LoopPolicy>>>> = Lazy::new(|| RwLock::new(None));

/// The process-wide policy. The first call makes a [`DefaultLoopPolicy::new`] (backend from
/// `LOOP_BACKEND`) unless [`set_event_loop_policy`] or [`install`] set one.
pub fn get_event_loop_policy() -> Arc<dyn LoopPolicy> {
    if let Some(p) = POLICY.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POLICY.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| Arc::new(DefaultLoopPolicy::new()))
        .clone()
}

/// Replaces the process-wide policy; `None` goes back to the default (a fresh
/// [`DefaultLoopPolicy::new`] is made when next asked for, reading `LOOP_BACKEND` again).
///
/// Loops the old policy stored stay with it: they are released when it is dropped.
pub fn set_event_loop_policy(policy: Option<Arc<dyn LoopPolicy>>) {
    let old = {
        let mut slot = POLICY.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *slot, policy)
    };
    // Dropped outside the lock: dropping a policy drops loops, which runs user code.
    drop(old);
}

/// The current thread's loop from the global policy (asyncio's `get_event_loop()`).
///
/// With the default policy, the main thread gets a loop made on first use; other threads get
/// [`LoopError::NoCurrentLoop`] until [`set_event_loop`] is called there. Code that runs on
/// worker threads (as `cargo test` does) can use [`run`](crate::run),
/// [`Runner`](crate::Runner) or [`new_event_loop`] instead.
///
/// # Errors
/// [`LoopError::NoCurrentLoop`] naming the thread; the error of making the loop.
pub fn get_event_loop() -> Result<EventLoop, LoopError> {
    get_event_loop_policy().get_event_loop()
}

/// Sets (or with `None`, clears) the current thread's loop in the global policy.
pub fn set_event_loop(lp: Option<EventLoop>) {
    get_event_loop_policy().set_event_loop(lp);
}

/// A new loop from the global policy (not made current).
///
/// # Errors
/// [`LoopError::InvalidArgument`] for a bad `LOOP_BACKEND`; [`LoopError::Unavailable`] when the
/// backend cannot run here; an I/O error.
pub fn new_event_loop() -> Result<EventLoop, LoopError> {
    get_event_loop_policy().new_event_loop()
}

/// Makes every loop of the process use `backend`, whatever `LOOP_BACKEND` says: sets a
/// [`DefaultLoopPolicy::with_backend`] as the global policy (like `uvloop.install()`).
///
/// An unavailable backend is reported when a loop is made, as [`LoopError::Unavailable`].
///
/// ```rust,standalone_crate
/// use loop_policy::Backend;
///
/// loop_policy::install(Backend::Mio);
/// let lp = loop_policy::new_event_loop().unwrap();
/// assert_eq!(lp.backend_name(), "mio");
/// lp.close().unwrap();
/// loop_policy::set_event_loop_policy(None);
/// ```
pub fn install(backend: Backend) {
    set_event_loop_policy(Some(Arc::new(DefaultLoopPolicy::with_backend(backend))));
}
