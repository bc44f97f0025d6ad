//! [`DefaultLoopPolicy`]: one loop per thread, made on first use on the main thread only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use loop_api::{EventLoop, LoopError, LoopPolicy};

use crate::backend::Backend;
use crate::thread::{current_thread_name, is_main_thread};
use loop_core::LoopConfig;

/// A function that makes loops (asyncio's `loop_factory`).
type LoopFactory = dyn Fn() -> Result<EventLoop, LoopError> + Send + Sync;

/// Where a policy's new loops come from.
enum LoopSource {
    /// A backend (`Auto` is resolved each time a loop is made).
    Backend(Backend),
    /// `LOOP_BACKEND` held a bad value: making a loop reports it (the message).
    InvalidEnv(String),
    /// A user-supplied factory.
    Factory(Arc<LoopFactory>),
}

/// asyncio's default policy: each thread has its own loop; only the main thread gets one made
/// on first use, other threads have one only after [`set_event_loop`](LoopPolicy::set_event_loop).
///
/// - [`get_event_loop`](LoopPolicy::get_event_loop) on the main thread makes a loop the first
///   time, and makes a new one if the stored loop was closed (so code that runs
///   `get_event_loop()`, closes the loop, and starts again works, instead of handing back a
///   loop that fails every call with `Closed`). Other threads get their stored loop as it is,
///   closed or not. After `set_event_loop(None)` the main thread gets `NoCurrentLoop`, too.
/// - On other threads, without `set_event_loop`, it is [`LoopError::NoCurrentLoop`] naming the
///   thread (its name, or `Thread-N`).
/// - Loops are kept per (policy object, thread): two policies never share loops, and a loop
///   never leaves the thread it was stored on (an [`EventLoop`] is `!Send`). The loops a dropped
///   policy stored are released on the thread that drops it at once, and on other threads the
///   next time a loop is stored there in any `DefaultLoopPolicy` (or when they exit).
///
/// ```
/// use loop_api::{LoopError, LoopPolicy};
/// use loop_policy::{Backend, DefaultLoopPolicy};
///
/// let policy = DefaultLoopPolicy::with_backend(Backend::Mio);
/// std::thread::Builder::new()
///     .name("worker".into())
///     .spawn(move || {
///         let err = policy.get_event_loop().unwrap_err();
///         assert_eq!(err.to_string(), "There is no current event loop in thread 'worker'.");
///     })
///     .unwrap()
///     .join()
///     .unwrap();
/// ```
pub struct DefaultLoopPolicy {
    /// The key of this policy's loops in every thread's store; never reused.
    id: u64,
    /// Alive as long as the policy: stores see through it which entries are stale.
    alive: Arc<()>,
    source: LoopSource,
    /// Debug mode for the loops made on a backend (`LOOP_DEBUG`, read when the policy is made).
    debug: bool,
    /// Make a loop on first use on every thread, not only the main one (the test policy).
    any_thread: bool,
}

static NEXT_POLICY_ID: AtomicU64 = AtomicU64::new(1);

/// One thread's state in one policy (asyncio's `_Local`).
struct Slot {
    /// The policy it belongs to (dead once the policy is dropped).
    owner: Weak<()>,
    lp: Option<EventLoop>,
    /// `set_event_loop` was called here (then `None` means "no loop", not "make one").
    set_called: bool,
}

thread_local! {
    /// This thread's loops, keyed by policy id.
    static SLOTS: RefCell<HashMap<u64, Slot>> = RefCell::new(HashMap::new());
}

impl DefaultLoopPolicy {
    /// A policy whose loops run on the backend `LOOP_BACKEND` names ([`Backend::from_env`]),
    /// in debug mode if `LOOP_DEBUG` says so ([`DEBUG_ENV_VAR`](crate::DEBUG_ENV_VAR)).
    ///
    /// A bad `LOOP_BACKEND` value does not panic here: `new_event_loop` and `get_event_loop`
    /// report it as [`LoopError::InvalidArgument`].
    pub fn new() -> Self {
        let source = match Backend::from_env() {
            Ok(b) => LoopSource::Backend(b),
            Err(e) => LoopSource::InvalidEnv(e.to_string()),
        };
        Self::from_source(source).with_debug_from_env()
    }

    /// A policy whose loops run on `backend`, whatever `LOOP_BACKEND` says; in debug mode if
    /// `LOOP_DEBUG` says so ([`DEBUG_ENV_VAR`](crate::DEBUG_ENV_VAR)).
    pub fn with_backend(backend: Backend) -> Self {
        Self::from_source(LoopSource::Backend(backend)).with_debug_from_env()
    }

    /// The same policy, its loops in debug mode if `LOOP_DEBUG` says so.
    fn with_debug_from_env(mut self) -> Self {
        self.debug = crate::debug_env::debug_from_env();
        self
    }

    /// A policy whose loops come from `factory` (asyncio's `loop_factory`): a custom backend,
    /// a loop set up with debug mode on, ... (`LOOP_DEBUG` is the factory's business: see
    /// [`debug_from_env`](crate::debug_from_env)).
    ///
    /// ```
    /// use loop_api::LoopPolicy;
    /// use loop_policy::{Backend, DefaultLoopPolicy};
    ///
    /// let policy = DefaultLoopPolicy::with_factory(|| {
    ///     let lp = Backend::Mio.new_event_loop()?;
    ///     lp.set_debug(true);
    ///     Ok(lp)
    /// });
    /// let lp = policy.new_event_loop().unwrap();
    /// assert!(lp.get_debug());
    /// lp.close().unwrap();
    /// ```
    pub fn with_factory(
        factory: impl Fn() -> Result<EventLoop, LoopError> + Send + Sync + 'static,
    ) -> Self {
        Self::from_source(LoopSource::Factory(Arc::new(factory)))
    }

    fn from_source(source: LoopSource) -> Self {
        DefaultLoopPolicy {
            id: NEXT_POLICY_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            source,
            debug: false,
            any_thread: false,
        }
    }

    /// The same policy, but making a loop on first use on any thread (for tests, which
    /// `cargo test` runs on worker threads).
    pub(crate) fn on_any_thread(mut self) -> Self {
        self.any_thread = true;
        self
    }

    /// The backend this policy makes loops on; `None` for a factory or a bad `LOOP_BACKEND`.
    #[must_use]
    pub fn backend(&self) -> Option<Backend> {
        match self.source {
            LoopSource::Backend(b) => Some(b),
            LoopSource::InvalidEnv(_) | LoopSource::Factory(_) => None,
        }
    }

    /// The current thread's `(loop, set_called)` in this policy.
    fn current(&self) -> Option<(Option<EventLoop>, bool)> {
        SLOTS
            .try_with(|slots| {
                let slots = slots.borrow();
                let slot = slots.get(&self.id)?;
                Some((slot.lp.clone(), slot.set_called))
            })
            .unwrap_or(None)
    }

    /// Stores `lp` as the current thread's loop. The replaced loop, and those of dropped
    /// policies, are dropped after the store is released (dropping a loop runs user code that
    /// may come back here).
    fn store(&self, lp: Option<EventLoop>, set_called: bool) {
        let mut released: Vec<EventLoop> = Vec::new();
        let stored = SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            slots.retain(|_, slot| {
                let live = slot.owner.strong_count() > 0;
                if !live {
                    released.extend(slot.lp.take());
                }
                live
            });
            let slot = slots.entry(self.id).or_insert_with(|| Slot {
                owner: Arc::downgrade(&self.alive),
                lp: None,
                set_called: false,
            });
            slot.set_called |= set_called;
            std::mem::replace(&mut slot.lp, lp)
        });
        // On a thread that is exiting the store is gone: `lp` was dropped with the closure.
        if let Ok(Some(old)) = stored {
            released.push(old);
        }
        drop(released);
    }
}

impl Default for DefaultLoopPolicy {
    /// The same as [`DefaultLoopPolicy::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl LoopPolicy for DefaultLoopPolicy {
    /// The current thread's loop (see the type's documentation for the rules).
    ///
    /// # Errors
    /// [`LoopError::NoCurrentLoop`] naming the thread; on the main thread, the error of making
    /// the loop (a bad `LOOP_BACKEND`, an unavailable backend, ...).
    fn get_event_loop(&self) -> Result<EventLoop, LoopError> {
        let (stored, set_called) = self.current().unwrap_or((None, false));
        let main = self.any_thread || is_main_thread();
        match stored {
            Some(lp) if !(main && lp.is_closed()) => Ok(lp),
            Some(_) => self.make_current(),
            None if main && !set_called => self.make_current(),
            None => Err(LoopError::NoCurrentLoop {
                thread: current_thread_name(),
            }),
        }
    }

    fn set_event_loop(&self, lp: Option<EventLoop>) {
        self.store(lp, true);
    }

    /// A new loop from this policy's backend or factory (not made current).
    ///
    /// # Errors
    /// [`LoopError::InvalidArgument`] for a bad `LOOP_BACKEND`; [`LoopError::Unavailable`] when
    /// the backend cannot run here; the factory's error.
    fn new_event_loop(&self) -> Result<EventLoop, LoopError> {
        match &self.source {
            LoopSource::Backend(b) => b.new_event_loop_with(LoopConfig {
                debug: self.debug,
                ..LoopConfig::default()
            }),
            LoopSource::InvalidEnv(msg) => Err(LoopError::InvalidArgument(msg.clone())),
            LoopSource::Factory(f) => f(),
        }
    }
}

impl DefaultLoopPolicy {
    /// Makes a loop and stores it as the current thread's (the main thread's first use).
    fn make_current(&self) -> Result<EventLoop, LoopError> {
        let lp = self.new_event_loop()?;
        self.store(Some(lp.clone()), false);
        Ok(lp)
    }
}

impl Drop for DefaultLoopPolicy {
    fn drop(&mut self) {
        let mine = SLOTS
            .try_with(|slots| slots.borrow_mut().remove(&self.id))
            .ok()
            .flatten();
        drop(mine);
    }
}

impl fmt::Debug for DefaultLoopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DefaultLoopPolicy");
        d.field("id", &self.id);
        d.field("debug", &self.debug);
        match &self.source {
            LoopSource::Backend(b) => d.field("backend", b),
            LoopSource::InvalidEnv(msg) => d.field("invalid_env", msg),
            LoopSource::Factory(_) => d.field("factory", &"<fn>"),
        };
        d.finish()
    }
}
