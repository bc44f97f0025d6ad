//! The driver boundary: [`Driver`] (what the core needs from every backend) and [`Selector`]
//! (what a readiness backend provides so [`ReadinessDriver`](crate::ReadinessDriver) can be a
//! Driver).

use std::io;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::ops::{OpKey, Ops};
use loop_api::{Direction, Op};

/// What [`Driver::start`] did with an operation.
#[derive(Debug)]
pub enum Started {
    /// It finished at once with this result; the op (with its buffers) is back in the
    /// caller's slot.
    Done(io::Result<usize>),
    /// It is in flight under this key of [`Ops`] (which took it from the caller's slot), with
    /// the waker given to `start` as its future's ([`Ops::set_waker`], or inserted with it);
    /// its completion is reported by `poll`.
    InFlight(OpKey),
    /// It waits for readiness with the op left in the caller's slot (a readiness driver's
    /// path for a registered socket, as tokio's and async-io's sockets wait): the driver
    /// wakes the waker given to `start` when the fd may be ready, and the core then calls
    /// [`Driver::poll_parked`] with the op to try it again, or [`Driver::unpark`] when its
    /// future was dropped. Nothing was performed: a dropped parked op leaves nothing behind.
    Parked(ParkKey),
}

/// A driver's name for an op parked in its caller's slot ([`Started::Parked`]); below 2^63.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParkKey(pub u64);

pub use crate::shared::DriverWaker;

/// The I/O half of a loop: starts operations and reports their completions. What a backend
/// implements, directly (a completion backend: io_uring, IOCP) or through
/// [`ReadinessDriver`](crate::ReadinessDriver) and a [`Selector`] (epoll, kqueue, poll(2)).
///
/// Completion is the common model. A completion backend turns each [`Op`](crate::Op) into a
/// kernel request; a readiness backend tries the non-blocking syscall and, on `WouldBlock`,
/// waits for readiness and retries.
///
/// # The contract
///
/// The core calls a driver from the loop's thread only, never re-entrantly, and a driver calls
/// nothing of the core but [`Ops`].
///
/// - **Ownership of ops.** An op is plain owned data (fd, buffer, address). Once the core has
///   put it in [`Ops`] under a key and handed the key to [`submit`](Driver::submit) (or
///   [`start`](Driver::start) put it there and answered [`Started::InFlight`]), the op and every
///   buffer in it stay in the table until the driver calls [`Ops::complete`] for that key.
///   Until then the driver may let the kernel read and write those buffers (they are heap
///   memory that does not move); after it, never again.
/// - **Exactly one completion per key.** Every key in flight gets exactly one
///   [`Ops::complete`], from `submit`, `cancel`, `poll`, `release_socket` or `shutdown`,
///   whatever happened to its future: the result of a cancelled op is any result
///   (`ECANCELED` is usual; bytes it did receive are kept by the core for the next receive on
///   that socket). A key that `submit` refused (`Err`) is not in
///   flight and gets no completion. The receives (and the sends) of one socket complete in
///   the order they were submitted, the order of the bytes: a kernel that may run two
///   waiting ones out of order (io_uring wakes a socket's waiters in no set order) is given
///   one at a time.
/// - **Watches.** [`Op::PollReadable`]/[`Op::PollWritable`] (`add_reader`/`add_writer`)
///   complete with `Ok(_)` when the fd is ready in that direction, performing nothing; the
///   core submits a new one for the next readiness.
/// - **Cancel.** [`cancel`](Driver::cancel) asks for an in-flight op to end early: its future
///   was dropped, or a watch was removed. The op's completion is still reported, maybe from
///   inside `cancel`, maybe by a later `poll`; until then its buffers stay in the table. Hand
///   the cancellation to the OS at once: an op in flight holds its file open (a listener whose
///   accept was cancelled and which was then closed must not stay bound).
/// - **Poll.** [`poll`](Driver::poll) submits whatever was queued, waits at most `timeout`
///   (`Some(ZERO)`: do not block; `None`: until something happens; never return early for a
///   timeout that has not passed unless something happened or the waker was called), and
///   reports through [`Ops::complete`] every completion that is ready. An interrupted wait
///   (EINTR) returns `Ok` with nothing done. The core computes the timeout (0 when work is
///   ready, else until the next timer) and skips `poll` when work is ready and [`Ops`] is
///   empty.
/// - **Waker.** [`waker`](Driver::waker) is taken once, when the loop is made: calling it from
///   any thread, any number of times, ends a `poll` that is blocked or makes the next one
///   return at once. It is cheap and cannot fail in a way that loses a wake-up (a full
///   eventfd already holds one). The loop drops it at close, so it must not keep the driver's
///   OS resources alive beyond what the wake-up needs.
/// - **Registered sockets.** [`register_socket`](Driver::register_socket) and
///   [`release_socket`](Driver::release_socket) are a hint with defaults that do nothing: the
///   caller promises `fd` names the same socket until it releases it, and closes it only after.
///   A driver may use that to set the fd up once (a readiness driver keeps it armed, io_uring
///   could make it a fixed file, IOCP associates a handle with its port once).
/// - **Shutdown.** [`shutdown`](Driver::shutdown) is called once, when the loop closes: cancel
///   every op in flight and wait for their completions, so no buffer is freed while the kernel
///   may still use it and no file the user closed stays open. A completion that never comes
///   (a kernel that ignores the cancel past a grace period) is the one case where the driver
///   calls [`Ops::forget_pending`] instead: the buffers leak rather than being freed under the
///   kernel. No method is called after `shutdown`.
/// - **Errors.** An operation's own failure is its result, never a panic; `submit` and `poll`
///   return `Err` only when the driver itself cannot go on (the OS refusing a request or the
///   wait).
/// - **File operations.** Only a driver whose [`runs_file_ops`](Driver::runs_file_ops) is
///   true is given them (regular files are always "ready": a readiness driver has nothing to
///   wait for, so they run on the executor). An `Open` result is a new fd the core takes into
///   the op; a `Close` completion (other than `ECANCELED`) means the fd is closed.
/// - **Writes never raise `SIGPIPE`** (`MSG_NOSIGNAL` on sends; no kernel path that raises it
///   for a pipe).
pub trait Driver: 'static {
    /// The backend's name (`"mio"`, `"polling"`, `"uring"`): what
    /// `EventLoop::backend_name` answers.
    fn name(&self) -> &'static str;
    /// Starts operation `key` (already in `ops`). A driver may complete it at once (from
    /// inside this call).
    ///
    /// # Errors
    /// When the operation cannot be started at all; the key is then not in flight (no
    /// completion follows) and the core removes it.
    fn submit(&mut self, ops: &mut Ops, key: OpKey) -> io::Result<()>;
    /// Starts the operation in `slot` (`Some`) for a future that awaits it (`waker` is its
    /// task's): finishes it at once when it can (the op stays in the slot and never enters
    /// `ops`), else takes it into `ops` and submits it, or parks it ([`Started::Parked`]).
    /// The op moves at most once.
    ///
    /// The default inserts and [`submit`](Driver::submit)s; a readiness driver overrides it to
    /// try the syscall first, so an operation that completes at once costs no table entry,
    /// wake-up or second poll, and to park one that waits on a registered socket.
    fn start(&mut self, ops: &mut Ops, slot: &mut Option<Op>, waker: &Waker) -> Started {
        ops.start_in_table(slot, waker, |ops, key| self.submit(ops, key))
    }
    /// Tries parked op `key` (in `slot`, see [`Started::Parked`]) again: its result, or
    /// `Pending` with `waker` kept for the next readiness. The default (a driver that never
    /// parks) answers an error.
    fn poll_parked(
        &mut self,
        ops: &mut Ops,
        key: ParkKey,
        slot: &mut Option<Op>,
        waker: &Waker,
    ) -> Poll<io::Result<usize>> {
        let _ = (ops, slot, waker);
        Poll::Ready(Err(io::Error::other(format!(
            "poll_parked: no parked operation {} on this loop",
            key.0
        ))))
    }
    /// The future of parked op `key` was dropped: forget it (what waits behind it on its fd
    /// goes next). The default does nothing.
    fn unpark(&mut self, ops: &mut Ops, key: ParkKey) {
        let _ = (ops, key);
    }
    /// What a dropped op left on `fd` (bytes, a connection) is waiting for the next op there:
    /// wake the op parked on `fd` in direction `dir`, if any, so it takes it. The default (a
    /// driver that never parks) does nothing.
    fn wake_parked(&mut self, ops: &mut Ops, fd: RawFd, dir: Direction) {
        let _ = (ops, fd, dir);
    }
    /// Asks for in-flight operation `key` to end early. Its completion is still reported
    /// (maybe from inside this call); a key that already completed is ignored.
    fn cancel(&mut self, ops: &mut Ops, key: OpKey);
    /// Submits what is queued, waits at most `timeout` (`None`: until something happens or
    /// the waker is called) and reports completions through [`Ops::complete`]. An interrupted
    /// wait (EINTR) returns `Ok` with nothing done.
    ///
    /// # Errors
    /// A failure of the OS wait itself.
    fn poll(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> io::Result<()>;
    /// A thread-safe way to end a blocked `poll` early.
    fn waker(&self) -> DriverWaker;
    /// The caller owns socket `fd` and calls [`release_socket`](Driver::release_socket) before
    /// closing it: `fd` names the same socket until then, so a driver may set it up once
    /// instead of per operation. A hint; the default does nothing.
    ///
    /// # Errors
    /// The OS refusing to watch the fd (the caller then does not register it).
    fn register_socket(&mut self, fd: RawFd) -> io::Result<()> {
        let _ = fd;
        Ok(())
    }
    /// `fd`, given to [`register_socket`](Driver::register_socket), is about to be closed:
    /// forget it, and complete with an error any operation still waiting on it that the driver
    /// could no longer finish. The default does nothing.
    fn release_socket(&mut self, ops: &mut Ops, fd: RawFd) {
        let _ = (ops, fd);
    }
    /// True if the driver performs the file operations of [`Op`] (`Open`, `Read`, `Write`,
    /// ..., [`Op::is_file_op`]). The default, false: the core answers them `Unsupported`
    /// without calling the driver, and loop-fs runs file I/O on the executor instead.
    fn runs_file_ops(&self) -> bool {
        false
    }
    /// Bytes of receive buffers that ops the driver parked in their futures' slots
    /// ([`Started::Parked`]) keep, for the loop's statistics (the table's are counted by
    /// [`Ops::receive_buffer_bytes`]). The default, 0: the driver parks none.
    fn kept_receive_bytes(&self) -> usize {
        0
    }
    /// Sends from `src` on registered socket `fd` at once, from the caller's slice, if the
    /// driver can without an op: `Some` with what the kernel took or its error (a would-block
    /// is `None`), `None` when the send must be an `Op::Send` (it would wait, or an op of the
    /// socket's writing side goes first: sends complete in order). The default, `None`: every
    /// send is an op (a completion driver cannot lend the kernel a borrowed slice).
    fn try_send(&mut self, fd: RawFd, src: &[u8]) -> Option<io::Result<usize>> {
        let _ = (fd, src);
        None
    }
    /// The loop is closing: cancel every in-flight operation and wait for all their
    /// completions, so no buffer is freed while the kernel may still use it.
    fn shutdown(&mut self, ops: &mut Ops);
}

/// What a [`Selector`] is asked to watch an fd for (mio's `Interest`). What it reports is a
/// [`Readiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest(u8);

impl Interest {
    /// Nothing (the driver then does not arm the fd).
    pub const NONE: Interest = Interest(0);
    /// Readable (or hung up / in error).
    pub const READABLE: Interest = Interest(1);
    /// Writable (or in error).
    pub const WRITABLE: Interest = Interest(2);
    /// Both.
    pub const BOTH: Interest = Interest(3);

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

/// What a [`Selector`] reports an fd ready for, in an [`Event`] (mio's `Event::is_readable()`
/// and friends). What it is asked to watch for is an [`Interest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness(u8);

impl Readiness {
    /// Nothing.
    pub const NONE: Readiness = Readiness(0);
    /// A read would not block (data, or the fd hung up or is in error).
    pub const READABLE: Readiness = Readiness(1);
    /// A write would not block (room, or the fd is in error).
    pub const WRITABLE: Readiness = Readiness(2);
    /// The fd's read side is closed (hang-up, peer's FIN) or it is in error. A final state: a
    /// readiness driver then never waits for another edge on it (a receive that found the last
    /// bytes must not wait for an edge that the FIN already gave). Only a selector whose
    /// [`reports_read_closed`](Selector::reports_read_closed) is true need report it.
    pub const CLOSED: Readiness = Readiness(4);

    /// True if a read would not block.
    #[must_use]
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// True if a write would not block.
    #[must_use]
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// True if [`Readiness::CLOSED`] is included.
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
    pub const fn union(self, other: Readiness) -> Readiness {
        Readiness(self.0 | other.0)
    }
}

/// One readiness event: the token given at registration and what became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token the fd was registered with.
    pub token: usize,
    /// What is ready. Errors and hang-ups count as both directions (the retried syscall
    /// reports them); a selector adds [`Readiness::CLOSED`] for them where it can tell.
    pub ready: Readiness,
}

/// The token a selector reserves for its own waker; never used for an fd.
pub const WAKER_TOKEN: usize = usize::MAX;

/// What a [`Selector`] did with a registration request. The driver acts on the variant (a
/// `register` of a known fd becomes a `reregister`, and the other way round), so a selector
/// says what happened in its own terms and never has to fabricate an errno value.
#[derive(Debug)]
#[must_use]
pub enum Registration {
    /// Done: the fd is watched as asked (from `deregister`: no longer watched).
    Done,
    /// From `register` and `register_socket`: the selector already watches this fd (epoll's
    /// `EEXIST`). The driver calls the matching `reregister`.
    AlreadyRegistered,
    /// From `reregister`, `reregister_socket` and `deregister`: the selector does not watch
    /// this fd (epoll's `ENOENT`: it was closed and its number reused, or a one-shot selector
    /// dropped it). The driver calls the matching `register`.
    NotRegistered,
    /// From `register_socket` and `reregister_socket`: this selector has no mode that keeps
    /// an fd armed for good (poll(2)). The driver handles the socket like any other fd.
    Unsupported,
    /// The OS refused (`EPERM` for a regular file, `EBADF`, `ENOMEM`, ...): the operations
    /// waiting on the fd fail with this error.
    Refused(io::Error),
}

impl Registration {
    /// The answer an OS call's result gives: `AlreadyExists` (`EEXIST`) is
    /// [`AlreadyRegistered`](Registration::AlreadyRegistered), `NotFound` (`ENOENT`) is
    /// [`NotRegistered`](Registration::NotRegistered) (whether the OS gave the errno or a
    /// library its bare `ErrorKind`), any other error is
    /// [`Refused`](Registration::Refused).
    pub fn from_result(res: io::Result<()>) -> Registration {
        match res {
            Ok(()) => Registration::Done,
            Err(e) => match e.kind() {
                io::ErrorKind::AlreadyExists => Registration::AlreadyRegistered,
                io::ErrorKind::NotFound => Registration::NotRegistered,
                _ => Registration::Refused(e),
            },
        }
    }

    /// `Ok` for [`Done`](Registration::Done), else an error saying what happened.
    ///
    /// # Errors
    /// Every other answer: `Refused`'s own error, or one of kind `AlreadyExists`, `NotFound`
    /// or `Unsupported` naming the selector's answer.
    pub fn into_result(self) -> io::Result<()> {
        let (kind, what) = match self {
            Registration::Done => return Ok(()),
            Registration::Refused(e) => return Err(e),
            Registration::AlreadyRegistered => (
                io::ErrorKind::AlreadyExists,
                "the selector already watches this fd",
            ),
            Registration::NotRegistered => (
                io::ErrorKind::NotFound,
                "the selector does not watch this fd",
            ),
            Registration::Unsupported => (
                io::ErrorKind::Unsupported,
                "the selector cannot keep an fd armed for good",
            ),
        };
        Err(io::Error::new(kind, what))
    }
}

/// An OS readiness multiplexer (epoll, kqueue, poll(2), ...): what a backend crate implements
/// to get a complete loop through [`ReadinessDriver`](crate::ReadinessDriver).
///
/// Registrations are edge-triggered, or one-shot (then say so with [`Selector::is_oneshot`]):
/// an event is reported when readiness appears. `reregister` must re-evaluate the fd's current
/// readiness and report it again if it is ready now (epoll_ctl MOD, kqueue EV_ADD and poll(2)
/// all do), which is how the driver re-arms a watch and survives an fd number being closed and
/// reused. Registration answers are typed ([`Registration`]); the driver recovers from
/// `AlreadyRegistered` and `NotRegistered` itself.
pub trait Selector: 'static {
    /// The backend's name: what `EventLoop::backend_name` answers.
    fn name(&self) -> &'static str;
    /// Starts watching `fd` for `interest`, reporting events with `token`.
    /// [`AlreadyRegistered`](Registration::AlreadyRegistered) if the selector watches it
    /// already.
    fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration;
    /// Changes what `fd` is watched for and re-arms it.
    /// [`NotRegistered`](Registration::NotRegistered) if the selector does not watch it (it
    /// was closed and its number reused, or a one-shot selector dropped it).
    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) -> Registration;
    /// Stops watching `fd`. [`NotRegistered`](Registration::NotRegistered) if the selector
    /// does not watch it.
    fn deregister(&mut self, fd: RawFd) -> Registration;
    /// Waits at most `timeout` (rounded up, never down) and hands each event to `on_event` as
    /// it reads it, leaving out the waker's own: what the driver calls.
    ///
    /// # Errors
    /// The OS wait failing; `Interrupted` for EINTR (the driver retries).
    fn select_each<F: FnMut(Event)>(
        &mut self,
        timeout: Option<Duration>,
        on_event: F,
    ) -> io::Result<()>;
    /// [`select_each`](Selector::select_each), appending the events to `events`.
    ///
    /// # Errors
    /// As [`select_each`](Selector::select_each)'s.
    fn select(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.select_each(timeout, |ev| events.push(ev))
    }
    /// A thread-safe way to end a blocked `select_each`.
    fn waker(&self) -> DriverWaker;
    /// True if a registration is disarmed once it reports an event (one-shot mode, e.g. the
    /// `polling` crate, or poll(2)); the driver then re-arms an fd after each event while ops
    /// still wait on it. False (the default) for edge-triggered registrations.
    fn is_oneshot(&self) -> bool {
        false
    }
    /// Registers a registered socket ([`Driver::register_socket`]): both directions,
    /// edge-triggered, never disarmed by an event, so waiting on it costs no re-arm.
    /// [`Unsupported`](Registration::Unsupported): this selector has no such mode (poll(2));
    /// the fd is then handled like any other.
    ///
    /// The default registers as usual on an edge-triggered selector and answers `Unsupported`
    /// on a one-shot one. A one-shot selector whose OS mechanism also has an edge mode
    /// overrides it.
    fn register_socket(&mut self, fd: RawFd, token: usize) -> Registration {
        if self.is_oneshot() {
            return Registration::Unsupported;
        }
        self.register(fd, token, Interest::BOTH)
    }
    /// Re-arms an fd registered with [`register_socket`](Selector::register_socket), in the
    /// same mode (re-evaluating its readiness, as `reregister` does).
    fn reregister_socket(&mut self, fd: RawFd, token: usize) -> Registration {
        if self.is_oneshot() {
            return Registration::Unsupported;
        }
        self.reregister(fd, token, Interest::BOTH)
    }
    /// True if events carry [`Readiness::CLOSED`] when the peer closed its side (epoll's
    /// `EPOLLRDHUP`, kqueue's `EV_EOF`). Only then may the driver trust a short read on a stream
    /// socket to mean "drained": without it, the FIN that came with the last bytes would give
    /// no later edge. The default, false, is always safe.
    fn reports_read_closed(&self) -> bool {
        false
    }
}
