//! The driver boundary: [`Driver`] (what the core needs from a backend) and [`Selector`] (what
//! a readiness backend provides so [`ReadinessDriver`](crate::ReadinessDriver) can be a Driver).

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::ops::{OpKey, Ops, Owner};
use loop_api::Op;

/// What [`Driver::start`] did with an operation.
#[derive(Debug)]
pub enum Started {
    /// It finished at once: its result, and the op with its buffers (`None` only if a driver
    /// lost it, which the default `start` never does).
    Done(io::Result<usize>, Option<Op>),
    /// It is in flight under this key of [`Ops`]; its completion is reported by `poll`.
    InFlight(OpKey),
}

/// Something any thread can call to end a blocked [`Driver::poll`] early.
pub type DriverWaker = Arc<dyn Fn() + Send + Sync>;

/// The I/O half of a loop: starts operations and reports their completions.
///
/// Completion is the common model. A completion backend (io_uring) turns each [`Op`](crate::Op)
/// into a kernel request; a readiness backend ([`ReadinessDriver`](crate::ReadinessDriver))
/// tries the non-blocking syscall and, on `WouldBlock`, waits for readiness and retries.
///
/// Ownership rule: the op under a key (and every buffer in it) stays in [`Ops`] until the
/// driver calls [`Ops::complete`] for that key. A driver must report exactly one completion for
/// every submitted key, including cancelled ones (with any result; `ECANCELED` is usual).
pub trait Driver: 'static {
    /// The backend's name (`"mio"`, `"polling"`, `"uring"`).
    fn name(&self) -> &'static str;
    /// Starts operation `key` (already in `ops`). A driver may complete it at once.
    ///
    /// # Errors
    /// When the operation cannot be started at all (the key is then not in flight and the core
    /// removes it).
    fn submit(&mut self, ops: &mut Ops, key: OpKey) -> io::Result<()>;
    /// Starts operation `op` for a future that awaits it: finishes it at once when it can
    /// (then it never enters `ops`), else puts it in `ops` and submits it.
    ///
    /// The default inserts and [`submit`](Driver::submit)s; a readiness driver overrides it to
    /// try the syscall first, so an operation that completes at once costs no table entry,
    /// wake-up or second poll.
    fn start(&mut self, ops: &mut Ops, op: Op) -> Started {
        let key = ops.insert(op, Owner::Future(None));
        if let Err(e) = self.submit(ops, key) {
            return Started::Done(Err(e), ops.remove(key));
        }
        match ops.take_completed(key) {
            Some((res, op)) => Started::Done(res, Some(op)),
            None => Started::InFlight(key),
        }
    }
    /// Asks for an in-flight operation to end early. Its completion is still reported (maybe
    /// from inside this call).
    fn cancel(&mut self, ops: &mut Ops, key: OpKey);
    /// Waits at most `timeout` (`None`: until something happens) and reports completions
    /// through [`Ops::complete`]. An interrupted wait (EINTR) returns `Ok` with nothing done.
    ///
    /// # Errors
    /// A failure of the OS wait itself.
    fn poll(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> io::Result<()>;
    /// A thread-safe way to end a blocked `poll` early.
    fn waker(&self) -> DriverWaker;
    /// The caller owns socket `fd` and will call [`release_fd`](Driver::release_fd) before
    /// closing it: a driver may keep it registered for good (no re-arm per operation). The
    /// default does nothing.
    ///
    /// # Errors
    /// The OS refusing to watch the fd.
    fn own_fd(&mut self, fd: RawFd) -> io::Result<()> {
        let _ = fd;
        Ok(())
    }
    /// Makes `fd` non-blocking before an operation that needs it (`accept` on a listener). A
    /// driver that knows `fd` is owned (see [`own_fd`](Driver::own_fd)), and so still the same
    /// socket, may skip the syscall after the first time. The default always makes it.
    ///
    /// # Errors
    /// The OS refusing (a bad fd).
    fn set_nonblocking(&mut self, fd: RawFd) -> io::Result<()> {
        crate::sys::set_nonblocking(fd)
    }
    /// `fd` (given to [`own_fd`](Driver::own_fd)) is about to be closed: forget it, and
    /// complete any operation still waiting on it with an error. The default does nothing.
    fn release_fd(&mut self, ops: &mut Ops, fd: RawFd) {
        let _ = (ops, fd);
    }
    /// The loop is closing: cancel every in-flight operation and wait for all their
    /// completions, so no buffer is freed while the kernel may still use it.
    fn shutdown(&mut self, ops: &mut Ops);
}

/// Readiness a [`Selector`] watches for, or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest(u8);

impl Interest {
    /// Nothing.
    pub const NONE: Interest = Interest(0);
    /// Readable (or hung up / in error).
    pub const READABLE: Interest = Interest(1);
    /// Writable (or in error).
    pub const WRITABLE: Interest = Interest(2);
    /// Both.
    pub const BOTH: Interest = Interest(3);
    /// Reported only: the fd's read side is closed (hang-up, peer's FIN) or it is in error.
    /// A final state: a readiness driver then never waits for another edge on it (a receive
    /// that found the last bytes must not wait for an edge that the FIN already gave).
    pub const CLOSED: Interest = Interest(4);

    /// True if readable is included.
    #[must_use]
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// True if writable is included.
    #[must_use]
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// True if [`Interest::CLOSED`] is included.
    #[must_use]
    pub const fn is_closed(self) -> bool {
        self.0 & 4 != 0
    }

    /// True if nothing is included.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

/// One readiness event: the token given at registration and what became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token the fd was registered with.
    pub token: usize,
    /// What is ready. Errors and hang-ups count as both (the retried syscall reports them);
    /// a selector adds [`Interest::CLOSED`] for them where it can tell.
    pub ready: Interest,
}

/// The token a selector reserves for its own waker; never used for an fd.
pub const WAKER_TOKEN: usize = usize::MAX;

/// An OS readiness multiplexer (epoll, kqueue, poll(2), ...): what a backend crate implements
/// to get a complete loop through [`ReadinessDriver`](crate::ReadinessDriver).
///
/// Registrations are edge-triggered, or one-shot (then say so with [`Selector::is_oneshot`]):
/// an event is reported when readiness appears. `reregister` must re-evaluate the fd's current readiness and report it again if it
/// is ready now (epoll_ctl MOD, kqueue EV_ADD and poll(2) all do), which is how the core
/// re-arms a watch and survives an fd number being closed and reused.
pub trait Selector: 'static {
    /// The backend's name.
    fn name(&self) -> &'static str;
    /// Starts watching `fd` for `interest`, reporting events with `token`.
    ///
    /// # Errors
    /// The OS refusing (`EEXIST` if already registered, `EPERM` for regular files, `EBADF`).
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()>;
    /// Changes what `fd` is watched for and re-arms it.
    ///
    /// # Errors
    /// `ENOENT` when `fd` is not registered (e.g. it was closed and its number reused).
    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()>;
    /// Stops watching `fd`.
    ///
    /// # Errors
    /// The OS refusing (e.g. `fd` is not registered).
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Waits at most `timeout` (rounded up, never down) and appends the events to `events`,
    /// leaving out the waker's own.
    ///
    /// # Errors
    /// The OS wait failing; `Interrupted` for EINTR (the driver retries).
    fn select(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
    /// A thread-safe way to end a blocked `select`.
    fn waker(&self) -> DriverWaker;
    /// True if a registration is disarmed once it reports an event (one-shot mode, e.g. the
    /// `polling` crate, or poll(2)); the driver then re-arms an fd after each event while ops
    /// still wait on it. False (the default) for edge-triggered registrations.
    fn is_oneshot(&self) -> bool {
        false
    }
    /// Registers `fd` for good: both directions, edge-triggered, never disarmed by an event.
    /// Used for fds whose owner says when they go away ([`Driver::own_fd`]), so waiting on them
    /// costs no re-arm. `Ok(false)`: this selector has no such mode (poll(2)); the fd is then
    /// handled like any other.
    ///
    /// The default registers as usual on an edge-triggered selector and declines on a one-shot
    /// one. A one-shot selector whose OS mechanism also has an edge mode overrides it.
    ///
    /// # Errors
    /// The OS refusing to watch the fd.
    fn register_for_good(&mut self, fd: RawFd, token: usize) -> io::Result<bool> {
        if self.is_oneshot() {
            return Ok(false);
        }
        match self.register(fd, token, Interest::BOTH) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.reregister(fd, token, Interest::BOTH)
            }
            other => other,
        }
        .map(|()| true)
    }
    /// Re-arms an fd registered with [`register_for_good`](Selector::register_for_good), in
    /// the same mode (re-evaluating its readiness, as `reregister` does).
    ///
    /// # Errors
    /// As `reregister`.
    fn reregister_for_good(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        self.reregister(fd, token, Interest::BOTH)
    }
    /// True if events carry [`Interest::CLOSED`] when the peer closed its side (epoll's
    /// `EPOLLRDHUP`, kqueue's `EV_EOF`). Only then may the driver trust a short read on a stream
    /// socket to mean "drained": without it, the FIN that came with the last bytes would give
    /// no later edge. The default, false, is always safe.
    fn reports_read_closed(&self) -> bool {
        false
    }
}
