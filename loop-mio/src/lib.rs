//! The mio backend: a [`Selector`] over `mio::Poll` (epoll on Linux, kqueue on macOS and the
//! BSDs). Everything else (performing operations, queues, timers, tasks) is `loop-core`'s
//! [`ReadinessDriver`] and [`BaseEventLoop`](loop_core::BaseEventLoop).
//!
//! ```
//! let lp = loop_mio::new_event_loop()?;
//! let answer = lp.run_until_complete(async { 6 * 7 })?;
//! assert_eq!(answer, 42);
//! lp.close()?;
//! # Ok::<(), loop_api::LoopError>(())
//! ```
#![deny(missing_docs)]

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use loop_api::{EventLoop, LoopError};
use loop_core::{
    DriverWaker, Event, Interest, Readiness, ReadinessDriver, Registration, Selector, WAKER_TOKEN,
};
use mio::unix::SourceFd;
use mio::{Events, Poll, Token, Waker};

/// How many events one `select` can report.
const EVENTS_CAPACITY: usize = 1024;

/// A readiness [`Selector`] over `mio::Poll`.
pub struct MioSelector {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
}

impl std::fmt::Debug for MioSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MioSelector").finish_non_exhaustive()
    }
}

impl MioSelector {
    /// Creates the OS selector (an epoll or kqueue fd, close-on-exec) and its waker.
    ///
    /// # Errors
    /// The OS refusing to create them (e.g. the fd limit is reached).
    pub fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), Token(WAKER_TOKEN))?);
        Ok(MioSelector {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            waker,
        })
    }
}

fn to_mio(interest: Interest) -> mio::Interest {
    match (interest.is_readable(), interest.is_writable()) {
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (false, true) => mio::Interest::WRITABLE,
        _ => mio::Interest::READABLE,
    }
}

impl Selector for MioSelector {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration {
        Registration::from_result(self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(token),
            to_mio(interest),
        ))
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration {
        Registration::from_result(self.poll.registry().reregister(
            &mut SourceFd(&fd),
            Token(token),
            to_mio(interest),
        ))
    }

    fn deregister(&mut self, fd: RawFd) -> Registration {
        Registration::from_result(self.poll.registry().deregister(&mut SourceFd(&fd)))
    }

    fn select_each<F: FnMut(Event)>(
        &mut self,
        timeout: Option<Duration>,
        mut on_event: F,
    ) -> io::Result<()> {
        self.poll.poll(&mut self.events, timeout)?;
        for ev in self.events.iter() {
            if ev.token() == Token(WAKER_TOKEN) {
                continue;
            }
            let mut ready = Readiness::NONE;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                ready = ready.union(Readiness::READABLE);
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                ready = ready.union(Readiness::WRITABLE);
            }
            if ev.is_read_closed() || ev.is_error() {
                ready = ready.union(Readiness::CLOSED);
            }
            on_event(Event {
                token: ev.token().0,
                ready,
            });
        }
        Ok(())
    }

    fn reports_read_closed(&self) -> bool {
        // mio registers with EPOLLRDHUP (kqueue: EV_EOF) and reports it as read-closed.
        true
    }

    fn waker(&self) -> DriverWaker {
        let waker = self.waker.clone();
        Arc::new(move || {
            // A failed wake-up can only mean the eventfd counter is saturated, which already
            // guarantees a pending wake-up.
            let _ = waker.wake();
        })
    }
}

pub use loop_core::LoopConfig;

/// The loop's driver on this backend.
pub type MioDriver = ReadinessDriver<MioSelector>;

/// Makes a new loop on the mio backend (not set as any thread's current loop), on the
/// system's clock: [`new_event_loop_with`] with the default [`LoopConfig`].
///
/// # Errors
/// An I/O error if the OS selector cannot be created.
pub fn new_event_loop() -> Result<EventLoop, LoopError> {
    new_event_loop_with(LoopConfig::default())
}

/// Makes a new loop on the mio backend set up by `config` (a test loop on virtual time with
/// [`LoopConfig::virtual_time`]).
///
/// # Errors
/// An I/O error if the OS selector cannot be created.
pub fn new_event_loop_with(config: LoopConfig) -> Result<EventLoop, LoopError> {
    let selector = MioSelector::new()?;
    Ok(loop_core::event_loop_with(
        ReadinessDriver::new(selector),
        config,
    ))
}

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
