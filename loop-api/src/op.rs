//! Operations: the plain data every loop performs, and [`OpFuture`], the one future that runs
//! any of them.
//!
//! An [`Op`] owns everything the kernel may touch while it runs (buffers, address storage, a
//! socket being connected), so a completion-based loop can hand pointers into it to the
//! kernel: the loop keeps the op until its completion is reported, even when the future that
//! started it is dropped. Every `sock_*` method of [`EventLoop`](crate::EventLoop), and
//! loop-net's sockets, build an op and await an [`OpFuture`]; a loop implements three
//! primitives for all of them ([`AbstractEventLoop::start_op`], [`poll_op`], [`drop_op`]).
//!
//! [`poll_op`]: AbstractEventLoop::poll_op
//! [`drop_op`]: AbstractEventLoop::drop_op

use std::ffi::CString;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use socket2::SockAddr;

use crate::abstract_loop::AbstractEventLoop;
use crate::error::closed_loop_io_error;
pub use crate::raw::{AddrBuf, MsgBuf, StatxBuf};

/// How long a receive waits for data before the loop counts it idle and takes its buffer
/// back (see [`Op::Recv`]): a connection idle for this long holds no receive buffer, while
/// one whose data comes sooner (every request of a busy connection) keeps its own, so a
/// request costs no hand-over of buffers. It is measured in real time, by the loop's driver.
pub const IDLE_RECEIVE_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// Which readiness an operation waits for on a readiness loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Waits until the fd is readable.
    Read,
    /// Waits until the fd is writable.
    Write,
}

/// One I/O operation, as plain owned data. Results are `usize` (bytes, or a new fd for
/// `Accept`); op-specific outputs stay in the op (the buffer's length, the peer's address).
///
/// What a loop does before the OS sees an op (the rules every loop applies the same way):
/// a `Recv`/`RecvFrom` into a buffer without capacity is `InvalidInput`, the buffer is cleared
/// first, and what a cancelled operation on the same socket left comes first; a `Send` of
/// nothing is `Ok(0)`; an `Accept`'s listener and a `Connect`'s socket are made non-blocking.
///
/// The file operations (`Open` to `Close`, see [`Op::is_file_op`]) run only on a loop whose
/// [`runs_file_ops`](crate::AbstractEventLoop::runs_file_ops) is true (io_uring); a readiness
/// loop answers them `Unsupported`, and loop-fs runs them on the executor there instead. Their
/// paths are relative to the current directory.
// A byte tag (no niche in a buffer's capacity): every match on an op is one load and a jump,
// and the op stays 48 bytes.
#[derive(Debug)]
#[repr(u8)]
pub enum Op {
    /// Accept a connection on listening socket `fd`; the result is the new fd
    /// (non-blocking, close-on-exec), which the loop also puts in `conn`, owned.
    Accept {
        /// The listening socket.
        fd: RawFd,
        /// Where the peer's address is written.
        addr: Box<AddrBuf>,
        /// The accepted connection, once the op succeeded.
        conn: Option<OwnedFd>,
    },
    /// Connect the owned socket `sock` to `addr`; the result is 0.
    Connect {
        /// The socket being connected (owned by the op until it completes).
        sock: OwnedFd,
        /// The address to connect to.
        addr: Box<SockAddr>,
    },
    /// Receive into `buf`'s spare capacity; the result is the count (its length is set).
    ///
    /// A receive that has waited [`IDLE_RECEIVE_AFTER`] for data may have its buffer parked
    /// by the loop (a buffer of at least a page: idle connections then hold none) and get one
    /// of the same capacity back just before the data is received: the op ends with a buffer
    /// of the capacity it was given, not necessarily the same allocation.
    Recv {
        /// The socket.
        fd: RawFd,
        /// The buffer; bytes land after its current length.
        buf: Vec<u8>,
    },
    /// Send `buf[pos..]` once; the result is the count sent (may be partial).
    Send {
        /// The socket.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// Where in `buf` to start.
        pos: usize,
    },
    /// Receive one message into `buf`'s spare capacity with the sender's address in `msg`;
    /// the result is the count (the buffer's length is set).
    RecvFrom {
        /// The socket.
        fd: RawFd,
        /// The buffer.
        buf: Vec<u8>,
        /// The message header and the sender's address.
        msg: Box<MsgBuf>,
    },
    /// Send `buf` as one message to the address in `msg`; the result is the count sent.
    SendTo {
        /// The socket.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// The message header and the destination address.
        msg: Box<MsgBuf>,
    },
    /// Send up to `len` bytes of `file` from `offset` over the connected socket `sock`
    /// without copying through user space (sendfile(2)); the result is the count sent (0 at
    /// end of file). `Unsupported` where the OS or the file cannot.
    SendFile {
        /// The connected socket.
        sock: RawFd,
        /// The file.
        file: RawFd,
        /// Where in the file to start.
        offset: u64,
        /// How many bytes at most.
        len: usize,
    },
    /// Open `path` with open(2)'s `flags` (the loop adds `O_CLOEXEC`) and `mode`; the result
    /// is the new fd, which the loop also puts in `file`, owned (closed with the op if nobody
    /// takes it, so an open whose future was dropped leaks no fd).
    Open {
        /// The path.
        path: CString,
        /// open(2)'s flags (`O_RDONLY`, `O_CREAT`, ...).
        flags: i32,
        /// The permissions of a created file (before the umask).
        mode: u32,
        /// The opened file, once the op succeeded.
        file: Option<OwnedFd>,
    },
    /// Read into `buf`'s spare capacity from file offset `offset` (pread(2)); the result is
    /// the count (its length is set), 0 at end of file.
    Read {
        /// The file.
        fd: RawFd,
        /// The buffer; bytes land after its current length.
        buf: Vec<u8>,
        /// Where in the file to read.
        offset: u64,
    },
    /// Write `buf[pos..]` at file offset `offset` (pwrite(2)); the result is the count written
    /// (may be partial).
    Write {
        /// The file.
        fd: RawFd,
        /// The bytes.
        buf: Vec<u8>,
        /// Where in `buf` to start.
        pos: usize,
        /// Where in the file `buf[pos]` goes.
        offset: u64,
    },
    /// Flush the file's data, and unless `data_only` its metadata, to the device (fsync(2),
    /// fdatasync(2)); the result is 0.
    Sync {
        /// The file.
        fd: RawFd,
        /// fdatasync rather than fsync.
        data_only: bool,
    },
    /// statx(2) of `path` relative to directory `fd` (`AT_FDCWD`: the current directory), or
    /// of `fd` itself with an empty path and `AT_EMPTY_PATH` in `flags`; the result is 0 and
    /// the status is in `statx`.
    Statx {
        /// The directory, or the file itself.
        fd: RawFd,
        /// The path (may be empty, see above).
        path: CString,
        /// statx(2)'s flags (`AT_EMPTY_PATH`, `AT_SYMLINK_NOFOLLOW`).
        flags: i32,
        /// Where the kernel writes the status.
        statx: Box<StatxBuf>,
    },
    /// Remove the file `path` (unlink(2)); the result is 0.
    Unlink {
        /// The path.
        path: CString,
    },
    /// Rename `from` to `to`, replacing `to` (rename(2)); the result is 0.
    Rename {
        /// The current path.
        from: CString,
        /// The new path.
        to: CString,
    },
    /// Create the directory `path` (mkdir(2)); the result is 0.
    Mkdir {
        /// The path.
        path: CString,
        /// Its permissions (before the umask).
        mode: u32,
    },
    /// Close `file` (close(2)), reporting close's error; the result is 0. The loop releases
    /// the `OwnedFd` once the kernel has closed it (if the op never runs, dropping the op
    /// closes the file).
    Close {
        /// The file.
        file: Option<OwnedFd>,
    },
    /// Complete when `fd` is readable (add_reader); the result is 0.
    PollReadable {
        /// The fd watched.
        fd: RawFd,
    },
    /// Complete when `fd` is writable (add_writer); the result is 0.
    PollWritable {
        /// The fd watched.
        fd: RawFd,
    },
}

impl Op {
    /// Its index in [`OP_LABELS`].
    fn kind(&self) -> u8 {
        match self {
            Op::Accept { .. } => 0,
            Op::Connect { .. } => 1,
            Op::Recv { .. } => 2,
            Op::Send { .. } => 3,
            Op::RecvFrom { .. } => 4,
            Op::SendTo { .. } => 5,
            Op::SendFile { .. } => 6,
            Op::PollReadable { .. } => 7,
            Op::PollWritable { .. } => 8,
            Op::Open { .. } => 9,
            Op::Read { .. } => 10,
            Op::Write { .. } => 11,
            Op::Sync { .. } => 12,
            Op::Statx { .. } => 13,
            Op::Unlink { .. } => 14,
            Op::Rename { .. } => 15,
            Op::Mkdir { .. } => 16,
            Op::Close { .. } => 17,
        }
    }

    /// The fd the operation works on.
    pub fn fd(&self) -> RawFd {
        match self {
            Op::Accept { fd, .. }
            | Op::Recv { fd, .. }
            | Op::Send { fd, .. }
            | Op::RecvFrom { fd, .. }
            | Op::SendTo { fd, .. }
            | Op::PollReadable { fd }
            | Op::PollWritable { fd }
            | Op::Read { fd, .. }
            | Op::Write { fd, .. }
            | Op::Sync { fd, .. }
            | Op::Statx { fd, .. } => *fd,
            Op::SendFile { sock, .. } => *sock,
            Op::Connect { sock, .. } => sock.as_raw_fd(),
            Op::Open { .. } | Op::Unlink { .. } | Op::Rename { .. } | Op::Mkdir { .. } => {
                libc::AT_FDCWD
            }
            Op::Close { file } => file.as_ref().map_or(-1, AsRawFd::as_raw_fd),
        }
    }

    /// True for the file operations (`Open` to `Close`), which only a loop that
    /// [`runs_file_ops`](crate::AbstractEventLoop::runs_file_ops) performs.
    pub fn is_file_op(&self) -> bool {
        matches!(
            self,
            Op::Open { .. }
                | Op::Read { .. }
                | Op::Write { .. }
                | Op::Sync { .. }
                | Op::Statx { .. }
                | Op::Unlink { .. }
                | Op::Rename { .. }
                | Op::Mkdir { .. }
                | Op::Close { .. }
        )
    }

    /// True for the readiness watches (`add_reader`/`add_writer`), which make no syscall.
    pub fn is_watch(&self) -> bool {
        matches!(self, Op::PollReadable { .. } | Op::PollWritable { .. })
    }

    /// The readiness a readiness loop waits for before trying the operation again.
    pub fn direction(&self) -> Direction {
        match self {
            Op::Accept { .. }
            | Op::Recv { .. }
            | Op::RecvFrom { .. }
            | Op::PollReadable { .. }
            | Op::Open { .. }
            | Op::Read { .. }
            | Op::Statx { .. } => Direction::Read,
            Op::Connect { .. }
            | Op::Send { .. }
            | Op::SendTo { .. }
            | Op::SendFile { .. }
            | Op::PollWritable { .. }
            | Op::Write { .. }
            | Op::Sync { .. }
            | Op::Unlink { .. }
            | Op::Rename { .. }
            | Op::Mkdir { .. }
            | Op::Close { .. } => Direction::Write,
        }
    }

    /// The op's byte buffer (empty for ops without one).
    pub fn into_buf(self) -> Vec<u8> {
        match self {
            Op::Recv { buf, .. }
            | Op::Send { buf, .. }
            | Op::RecvFrom { buf, .. }
            | Op::SendTo { buf, .. }
            | Op::Read { buf, .. }
            | Op::Write { buf, .. } => buf,
            _ => Vec::new(),
        }
    }
}

/// An operation in flight on a loop, named by the loop (see [`AbstractEventLoop::start_op`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpId(pub u64);

/// What [`AbstractEventLoop::start_op`] did. `Done` and `Failed` are the two outcomes of an
/// op that finished at once (`From<io::Result<usize>>` makes one of them); they are apart,
/// not one `io::Result`, so that the answer is two words and comes back in registers.
#[derive(Debug)]
pub enum OpPoll {
    /// Finished at once with this result; the op is still in the caller's slot.
    Done(usize),
    /// Failed at once with this error; the op is still in the caller's slot.
    Failed(io::Error),
    /// In flight: the caller's waker is woken at completion; then call
    /// [`poll_op`](AbstractEventLoop::poll_op), or [`drop_op`](AbstractEventLoop::drop_op) to
    /// give it up.
    Pending(OpId),
}

impl From<io::Result<usize>> for OpPoll {
    #[inline]
    fn from(res: io::Result<usize>) -> Self {
        match res {
            Ok(n) => OpPoll::Done(n),
            Err(e) => OpPoll::Failed(e),
        }
    }
}

/// One [`Op`] on a loop, as a future: the result and the op back (with its buffers; `None` if
/// the loop lost it, e.g. it was closed while the op was in flight).
///
/// It holds the loop weakly: a future kept in one of the loop's own tasks must not keep the
/// loop alive (the loop owns the task); once the loop is gone it gives the closed-loop error.
/// Dropping it while the op is in flight cancels the op; the loop keeps the op's buffers
/// until the OS is done with them, and what a cancelled receive or accept got is not lost
/// (the next one on the same socket gets it). The op lives in the future and moves into the
/// loop only if it has to wait.
pub struct OpFuture {
    lp: Weak<dyn AbstractEventLoop>,
    /// The op, while it is not in the loop's hands.
    op: Option<Op>,
    /// Where the op is: not started, in flight (under the loop's id), or finished.
    state: OpState,
    /// What kind of op it is (an index in [`OP_LABELS`]), for a monitor's `where`.
    kind: u8,
}

/// Where an [`OpFuture`]'s op is (one field, so a poll tests one word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpState {
    /// Not started yet (or to run again, see [`OpFuture::restart`]).
    Idle,
    /// In flight on the loop, under this id.
    InFlight(OpId),
    /// Its result was given.
    Finished,
}

/// The names a monitor shows for what a task waits for, by [`Op::kind`].
const OP_LABELS: [&str; 18] = [
    "sock_accept",
    "sock_connect",
    "sock_recv",
    "sock_send",
    "sock_recvfrom",
    "sock_sendto",
    "sock_sendfile",
    "wait_readable",
    "wait_writable",
    "file open",
    "file read",
    "file write",
    "file sync",
    "file metadata",
    "remove_file",
    "rename",
    "create_dir",
    "file close",
];

impl OpFuture {
    /// Runs `op` on `lp` when first polled.
    pub fn new(lp: &Rc<dyn AbstractEventLoop>, op: Op) -> Self {
        Self::new_weak(Rc::downgrade(lp), op)
    }

    pub(crate) fn new_weak(lp: Weak<dyn AbstractEventLoop>, op: Op) -> Self {
        OpFuture {
            lp,
            kind: op.kind(),
            op: Some(op),
            state: OpState::Idle,
        }
    }

    /// The op, when the future holds it (before it starts, and after it finished).
    pub(crate) fn op_mut(&mut self) -> Option<&mut Op> {
        self.op.as_mut()
    }

    /// Takes the op out (after it finished).
    pub(crate) fn take_op(&mut self) -> Option<Op> {
        self.op.take()
    }

    /// Forgets the op once its buffer was taken out (a receive or send): what is left of it
    /// (an fd number, a position) owns nothing, so it needs no drop.
    #[inline(always)]
    pub(crate) fn forget_spent_op(&mut self) {
        std::mem::forget(self.op.take());
    }

    /// Makes the future run its op again (after it finished, e.g. the rest of a send).
    pub(crate) fn restart(&mut self) {
        self.state = OpState::Idle;
    }

    /// Polls the op, leaving it in the future (see [`op_mut`](Self::op_mut)) once done.
    #[inline(always)]
    pub(crate) fn poll_in_place(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.state == OpState::Finished {
            return Poll::Ready(Err(io::Error::other("operation polled after it finished")));
        }
        let Some(lp) = self.lp.upgrade() else {
            self.state = OpState::Finished;
            return Poll::Ready(Err(closed_loop_io_error()));
        };
        let polled = match self.state {
            OpState::InFlight(id) => lp.poll_op(id, &mut self.op, cx),
            _ => match lp.start_op(&mut self.op, cx) {
                OpPoll::Done(n) => Poll::Ready(Ok(n)),
                OpPoll::Failed(e) => Poll::Ready(Err(e)),
                OpPoll::Pending(id) => {
                    self.state = OpState::InFlight(id);
                    Poll::Pending
                }
            },
        };
        if polled.is_ready() {
            self.state = OpState::Finished;
        } else if crate::introspect::publishing() {
            awaiting_op(self.kind);
        }
        polled
    }
}

/// Tells a monitor's `where` what the polled task waits for (only while one publishes).
#[cold]
#[inline(never)]
fn awaiting_op(kind: u8) {
    crate::introspect::awaiting(OP_LABELS[usize::from(kind)]);
}

impl Unpin for OpFuture {}

impl Future for OpFuture {
    type Output = (io::Result<usize>, Option<Op>);

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.poll_in_place(cx).map(|res| (res, this.op.take()))
    }
}

impl Drop for OpFuture {
    #[inline]
    fn drop(&mut self) {
        if let OpState::InFlight(id) = self.state {
            give_up(self, id.0);
        }
    }
}

/// Dropped while op `id` is in flight: the loop cancels it.
///
/// `extern "C"`, so it cannot unwind (a panic in `drop_op`, which must not panic, aborts the
/// process as a panic in a drop during unwinding would): the future's drop then needs no
/// landing pad, and is small enough to be inlined where the future ends (13 instructions
/// less per echo request, see loop-bench/PROFILE.md).
#[cold]
#[inline(never)]
extern "C" fn give_up(future: &OpFuture, id: u64) {
    if let Some(lp) = future.lp.upgrade() {
        lp.drop_op(OpId(id));
    }
}

impl fmt::Debug for OpFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpFuture")
            .field("op", &self.op)
            .field("state", &self.state)
            .finish()
    }
}
