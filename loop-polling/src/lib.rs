//! The `polling` backend: a [`Selector`] over `polling::Poller`. Everything else (performing
//! operations, queues, timers, tasks) is `loop-core`'s [`ReadinessDriver`] and
//! [`BaseEventLoop`](loop_core::BaseEventLoop).
//!
//! ```
//! let lp = loop_polling::new_event_loop()?;
//! assert_eq!(lp.backend_name(), "polling");
//! let answer = lp.run_until_complete(async { 6 * 7 })?;
//! assert_eq!(answer, 42);
//! lp.close()?;
//! println!("the OS mechanism here: {}", loop_polling::mechanism()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Platforms: Unix. The OS mechanism ([`Mechanism`]) is epoll on Linux and Android, kqueue on
//! macOS and the BSDs, event ports on illumos and Solaris, and poll(2) elsewhere. On Linux the
//! poll(2) fallback can be forced with the `polling` crate's test switch:
//! `RUSTFLAGS="--cfg polling_test_poll_backend" cargo test -p loop-polling` (CI runs that).
//!
//! Registrations are one-shot (poll(2) has no edge-triggered mode), so
//! [`Selector::is_oneshot`] is true and the driver re-arms an fd after each event while
//! operations still wait on it. Registered sockets (`EventLoop::register_socket`, loop-net's
//! types) are registered edge-triggered instead where the OS has that mode (epoll, kqueue):
//! no re-arm per operation.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use loop_api::{EventLoop, LoopError};
use loop_core::{
    DriverWaker, Event, Interest, Readiness, ReadinessDriver, Registration, Selector, WAKER_TOKEN,
};
use polling::{Events, Poller};

/// How many events one `select` can report.
const EVENTS_CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The OS mechanism a `polling::Poller` uses here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// Linux and Android epoll.
    Epoll,
    /// kqueue (macOS, iOS, FreeBSD, NetBSD, OpenBSD, DragonFly).
    Kqueue,
    /// illumos and Solaris event ports.
    EventPorts,
    /// The portable poll(2) fallback.
    Poll,
}

impl Mechanism {
    /// Tells them apart by what each supports: only event ports lack level-triggered mode,
    /// and of the rest only poll(2) lacks edge-triggered mode.
    fn of(poller: &Poller) -> Mechanism {
        if !poller.supports_level() {
            Mechanism::EventPorts
        } else if !poller.supports_edge() {
            Mechanism::Poll
        } else if cfg!(any(
            target_os = "linux",
            target_os = "android",
            target_os = "redox"
        )) {
            Mechanism::Epoll
        } else {
            Mechanism::Kqueue
        }
    }

    /// Its usual name: `"epoll"`, `"kqueue"`, `"event ports"` or `"poll(2)"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Mechanism::Epoll => "epoll",
            Mechanism::Kqueue => "kqueue",
            Mechanism::EventPorts => "event ports",
            Mechanism::Poll => "poll(2)",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static MECHANISM: OnceLock<Mechanism> = OnceLock::new();

/// The OS mechanism this build's loops use (fixed at compile time by the `polling` crate).
///
/// # Errors
/// The OS refusing to create a poller, if no loop was made yet to ask.
pub fn mechanism() -> io::Result<Mechanism> {
    if let Some(m) = MECHANISM.get() {
        return Ok(*m);
    }
    let m = Mechanism::of(&Poller::new()?);
    Ok(*MECHANISM.get_or_init(|| m))
}

/// A readiness [`Selector`] over `polling::Poller`, in one-shot mode.
///
/// # Invariant
/// In poll(2) mode ([`Mechanism::Poll`]) the poller's key of an fd is the fd itself, and
/// `poll_set` maps it to the driver's token; an fd is deleted from the poller as soon as it
/// reports an event (see [`PollingSelector::select`]).
pub struct PollingSelector {
    poller: Arc<Poller>,
    events: Events,
    mechanism: Mechanism,
    poll_set: HashMap<RawFd, usize>,
}

impl fmt::Debug for PollingSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollingSelector")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

fn to_polling(key: usize, interest: Interest) -> polling::Event {
    polling::Event::new(key, interest.is_readable(), interest.is_writable())
}

fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

/// Runs `f` with `fd` borrowed for the length of the call.
fn with_fd<T>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>) -> io::Result<T> {
    check_fd(fd)?;
    // The fd is one the driver's operations name; if its owner closed it meanwhile, polling
    // only hands the number to epoll_ctl/kevent/port_dissociate or looks it up in its poll(2)
    // set (it never reads, writes or closes through it), so the worst outcome is EBADF/ENOENT.
    // SAFETY: `fd` is not -1 (checked above), the borrow ends with the call (see above).
    f(unsafe { BorrowedFd::borrow_raw(fd) })
}

impl PollingSelector {
    /// Creates the OS poller (an epoll, kqueue or event-port fd, close-on-exec, with its
    /// notification fd; or a poll(2) set and a pipe).
    ///
    /// # Errors
    /// The OS refusing to create them (e.g. the fd limit is reached).
    pub fn new() -> io::Result<Self> {
        let poller = Poller::new()?;
        let mechanism = *MECHANISM.get_or_init(|| Mechanism::of(&poller));
        Ok(PollingSelector {
            poller: Arc::new(poller),
            events: Events::with_capacity(EVENTS_CAPACITY),
            mechanism,
            poll_set: HashMap::new(),
        })
    }

    /// The OS mechanism under this selector.
    #[must_use]
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// True where registered sockets can be edge-triggered (epoll, kqueue).
    fn has_edge_mode(&self) -> bool {
        matches!(self.mechanism, Mechanism::Epoll | Mechanism::Kqueue)
    }

    /// The poller's key for `fd` with the driver's `token`.
    fn key(&mut self, fd: RawFd, token: usize) -> usize {
        if self.mechanism == Mechanism::Poll {
            self.poll_set.insert(fd, token);
            fd as usize
        } else {
            token
        }
    }

    /// `Poller::wait` into `self.events`, made safe from a lost wake-up in polling's poll(2)
    /// mode (polling 3.11). There, a wait that finds a notification flagged but its byte not
    /// yet in the pipe (the notifying thread is between the two) fails with `WouldBlock`, and
    /// `Poller::wait` then returns without clearing its own `notified` flag: every later
    /// `notify()` sees the flag set and does nothing, so a loop that goes on to block in its
    /// next wait is never woken. Waits that do not block follow until one returns `Ok`,
    /// which clears the flag; their events are kept.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut timeout = timeout;
        loop {
            match self.poller.wait(&mut self.events, timeout) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => timeout = Some(Duration::ZERO),
                other => return other.map(drop),
            }
        }
    }
}

impl Selector for PollingSelector {
    fn name(&self) -> &'static str {
        "polling"
    }

    fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration {
        if let Err(e) = check_fd(fd) {
            return Registration::Refused(e);
        }
        let ev = to_polling(self.key(fd, token), interest);
        // `add` asks that the fd be deleted before it is closed. ReadinessDriver does
        // not promise that (a socket's owner closes it whenever it likes, and the driver never
        // deregisters), but what a stale registration does is bounded and handled: polling
        // only passes the number to the OS or its own fd set, never reads, writes or closes
        // through it; epoll, kqueue and event ports drop a closed file's registration
        // themselves, and polling's leftover bookkeeping answers AlreadyExists/NotFound
        // (`Registration::AlreadyRegistered`/`NotRegistered`), which the driver's `arm` handles; in poll(2) mode a closed fd reports POLLNVAL once and
        // `select` deletes it. A reused number can at worst see a spurious event, which the
        // driver absorbs by retrying the syscall.
        // SAFETY: as explained above, a registration that outlives its fd is harmless here.
        let res = unsafe { self.poller.add(fd, ev) };
        if res.is_err() {
            self.poll_set.remove(&fd);
        }
        Registration::from_result(res)
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration {
        if let Err(e) = check_fd(fd) {
            return Registration::Refused(e);
        }
        let ev = to_polling(self.key(fd, token), interest);
        Registration::from_result(with_fd(fd, |fd| self.poller.modify(fd, ev)))
    }

    fn deregister(&mut self, fd: RawFd) -> Registration {
        self.poll_set.remove(&fd);
        Registration::from_result(with_fd(fd, |fd| self.poller.delete(fd)))
    }

    /// Waits, then reports each event; an error or hang-up counts as both directions. In
    /// poll(2) mode every fd that reported is deleted from the poll set: poll(2) reports
    /// `POLLHUP`/`POLLERR`/`POLLNVAL` even with no events asked for, so a disarmed or closed
    /// fd left in the set would wake every wait. The driver re-adds it (`reregister` answers
    /// [`Registration::NotRegistered`], then `register`) when operations still wait on it.
    fn select_each<F: FnMut(Event)>(
        &mut self,
        timeout: Option<Duration>,
        mut on_event: F,
    ) -> io::Result<()> {
        self.events.clear();
        self.wait(timeout)?;
        for ev in self.events.iter() {
            if ev.key == WAKER_TOKEN {
                continue;
            }
            let failed = ev.is_err() == Some(true) || ev.is_interrupt();
            // Neither direction: poll(2)'s POLLNVAL, the fd was closed. Waiting ops retry
            // and get EBADF.
            let invalid = !ev.readable && !ev.writable && !failed;
            let mut ready = Readiness::NONE;
            if ev.readable || failed || invalid {
                ready = ready.union(Readiness::READABLE);
            }
            if ev.writable || failed || invalid {
                ready = ready.union(Readiness::WRITABLE);
            }
            let token = if self.mechanism == Mechanism::Poll {
                let fd = ev.key as RawFd;
                let _ = with_fd(fd, |fd| self.poller.delete(fd));
                match self.poll_set.remove(&fd) {
                    Some(token) => token,
                    None => continue,
                }
            } else {
                ev.key
            };
            on_event(Event { token, ready });
        }
        Ok(())
    }

    fn waker(&self) -> DriverWaker {
        let poller = self.poller.clone();
        Arc::new(move || {
            // A failed notification can only mean the notification fd is already full, which
            // already guarantees a pending wake-up.
            let _ = poller.notify();
        })
    }

    fn is_oneshot(&self) -> bool {
        true
    }

    /// Edge-triggered where the OS has it (epoll, kqueue), so a registered socket is never
    /// re-armed; poll(2) and event ports answer `Unsupported` and stay one-shot.
    fn register_socket(&mut self, fd: RawFd, token: usize) -> Registration {
        if !self.has_edge_mode() {
            return Registration::Unsupported;
        }
        if let Err(e) = check_fd(fd) {
            return Registration::Refused(e);
        }
        let ev = to_polling(token, Interest::BOTH);
        // SAFETY: as in `register`: a registration that outlives its fd is harmless here, and
        // a registered socket is deregistered (`release_socket`) before its owner closes it.
        let res = unsafe { self.poller.add_with_mode(fd, ev, polling::PollMode::Edge) };
        Registration::from_result(res)
    }

    fn reregister_socket(&mut self, fd: RawFd, token: usize) -> Registration {
        if !self.has_edge_mode() {
            return Registration::Unsupported;
        }
        if let Err(e) = check_fd(fd) {
            return Registration::Refused(e);
        }
        let ev = to_polling(token, Interest::BOTH);
        Registration::from_result(with_fd(fd, |fd| {
            self.poller
                .modify_with_mode(fd, ev, polling::PollMode::Edge)
        }))
    }
}

pub use loop_core::LoopConfig;

/// The loop's driver on this backend.
pub type PollingDriver = ReadinessDriver<PollingSelector>;

/// Makes a new loop on the polling backend (not set as any thread's current loop), on the
/// system's clock: [`new_event_loop_with`] with the default [`LoopConfig`].
///
/// # Errors
/// An I/O error if the OS poller cannot be created.
pub fn new_event_loop() -> Result<EventLoop, LoopError> {
    new_event_loop_with(LoopConfig::default())
}

/// Makes a new loop on the polling backend set up by `config` (a test loop on virtual time
/// with [`LoopConfig::virtual_time`]).
///
/// # Errors
/// An I/O error if the OS poller cannot be created.
pub fn new_event_loop_with(config: LoopConfig) -> Result<EventLoop, LoopError> {
    let selector = PollingSelector::new()?;
    Ok(loop_core::event_loop_with(
        ReadinessDriver::new(selector),
        config,
    ))
}

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The Rust examples of the repository's docs/writing-a-backend.md (which walks through this
/// crate), compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/writing-a-backend.md")]
struct WritingABackendDoctests;
