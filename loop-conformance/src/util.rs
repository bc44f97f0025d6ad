//! Helpers shared by the behaviours: making and running loops, recording what ran, socket
//! pairs, counting open file descriptors.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loop_api::{EventLoop, LoopError};

use crate::Factory;

// The loop's exception handler records reports here ([`new_loop`] installs it); the runner
// fails a behaviour whose loops reported anything it did not ask for.
thread_local! {
    static UNEXPECTED_REPORTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Makes a loop with `factory`, with an exception handler that records every report as
/// unexpected (a behaviour that expects reports installs its own handler). A panic in a
/// callback or task (an `assert!` that failed there, say) thus fails the behaviour.
///
/// # Panics
/// If the factory fails.
pub fn new_loop(factory: Factory) -> EventLoop {
    let lp = factory().unwrap_or_else(|e| panic!("the loop factory failed: {e}"));
    lp.set_exception_handler(Some(Box::new(|ctx: &loop_api::ExceptionContext| {
        UNEXPECTED_REPORTS.with(|r| r.borrow_mut().push(ctx.to_string()));
    })));
    lp
}

/// Takes the reports that loops made by [`new_loop`] on this thread sent to their exception
/// handler.
pub fn take_unexpected_reports() -> Vec<String> {
    UNEXPECTED_REPORTS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// Closes `lp`.
///
/// # Panics
/// If closing fails.
pub fn close(lp: &EventLoop) {
    lp.close().unwrap_or_else(|e| panic!("close() failed: {e}"));
}

/// Runs exactly one iteration of `lp` (asyncio: `stop()` before `run_forever()`).
///
/// # Panics
/// If `run_forever` fails.
pub fn run_once(lp: &EventLoop) {
    lp.stop();
    lp.run_forever()
        .unwrap_or_else(|e| panic!("run_forever() failed: {e}"));
}

/// Runs `lp` until something calls `stop()`.
///
/// # Panics
/// If `run_forever` fails.
pub fn run_forever(lp: &EventLoop) {
    lp.run_forever()
        .unwrap_or_else(|e| panic!("run_forever() failed: {e}"));
}

/// Runs `fut` to completion on `lp` and returns its output.
///
/// # Panics
/// If `run_until_complete` fails.
pub fn block_on<F>(lp: &EventLoop, fut: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    lp.run_until_complete(fut)
        .unwrap_or_else(|e| panic!("run_until_complete() failed: {e}"))
}

/// A callback that stops the running loop (for `call_soon`/`call_later`).
pub fn stopper(lp: &EventLoop) -> impl FnOnce() + 'static {
    let lp = lp.clone();
    move || lp.stop()
}

/// Polls `fut` once with a waker that does nothing.
pub fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let fut = pin!(fut);
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// An ordered record of events, for callbacks on the loop's thread.
#[derive(Debug)]
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log(self.0.clone())
    }
}

impl<T: Clone> Log<T> {
    /// An empty log.
    pub fn new() -> Self {
        Log(Rc::new(RefCell::new(Vec::new())))
    }

    /// Appends an event.
    pub fn push(&self, v: T) {
        self.0.borrow_mut().push(v);
    }

    /// The events so far.
    pub fn get(&self) -> Vec<T> {
        self.0.borrow().clone()
    }

    /// How many events so far.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// True if nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

impl<T: Clone> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// An ordered record of events that callbacks from any thread can append to.
#[derive(Debug)]
pub struct SyncLog<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for SyncLog<T> {
    fn clone(&self) -> Self {
        SyncLog(self.0.clone())
    }
}

impl<T: Clone> SyncLog<T> {
    /// An empty log.
    pub fn new() -> Self {
        SyncLog(Arc::new(Mutex::new(Vec::new())))
    }

    /// Appends an event.
    pub fn push(&self, v: T) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }

    /// The events so far.
    pub fn get(&self) -> Vec<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl<T: Clone> Default for SyncLog<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A shared counter for callbacks on the loop's thread.
#[derive(Clone, Debug, Default)]
pub struct Counter(Rc<Cell<usize>>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Counter::default()
    }

    /// Adds one.
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// A connected pair of non-blocking Unix stream sockets.
///
/// # Panics
/// If the OS refuses.
pub fn socketpair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("set_nonblocking");
    b.set_nonblocking(true).expect("set_nonblocking");
    (a, b)
}

/// A listener on an ephemeral loopback port (non-blocking) and its address.
///
/// # Panics
/// If the OS refuses.
pub fn listener() -> (TcpListener, SocketAddr) {
    use std::os::fd::AsRawFd;
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.set_nonblocking(true).expect("set_nonblocking");
    // std listens with a backlog of 128; hundreds of simultaneous connects need more.
    // SAFETY: listen(2) on a socket this function owns; it only changes the backlog.
    unsafe { libc::listen(l.as_raw_fd(), 1024) };
    let addr = l.local_addr().expect("local_addr");
    (l, addr)
}

/// A connected pair of loopback TCP streams made with std (both non-blocking):
/// (the connecting side, the accepted side).
///
/// # Panics
/// If the OS refuses.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let client = TcpStream::connect(l.local_addr().expect("local_addr")).expect("connect");
    let (server, _) = l.accept().expect("accept");
    client.set_nonblocking(true).expect("set_nonblocking");
    server.set_nonblocking(true).expect("set_nonblocking");
    client.set_nodelay(true).expect("set_nodelay");
    server.set_nodelay(true).expect("set_nodelay");
    (client, server)
}

/// A loopback address nothing listens on (a port that was just bound and released).
///
/// # Panics
/// If the OS refuses.
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr")
}

/// Reads what is available from a non-blocking `r` until `WouldBlock` or end of stream;
/// returns the bytes and whether the end of stream was seen.
///
/// # Panics
/// On an I/O error other than `WouldBlock`/`Interrupted`.
pub fn drain(mut r: impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (out, false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Writes to a non-blocking `w` until `WouldBlock`; returns how many bytes were written.
///
/// # Panics
/// On an I/O error other than `WouldBlock`/`Interrupted`.
pub fn fill(mut w: impl Write) -> usize {
    let chunk = [0x5au8; 16 * 1024];
    let mut total = 0;
    loop {
        match w.write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

/// `len` bytes of a pattern that depends on `seed` (never the byte 0xFF).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % 255) as u8
        })
        .collect()
}

/// Receives on `s` with `lp.sock_recv` until the peer closes; returns everything received.
///
/// # Panics
/// On a receive error.
pub async fn recv_to_end(lp: &EventLoop, s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let (res, buf) = lp.sock_recv(s, Vec::with_capacity(64 * 1024)).await;
        match res {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("sock_recv failed: {e}"),
        }
    }
}

/// Receives on `s` with `lp.sock_recv` until `len` bytes have arrived.
///
/// # Panics
/// On a receive error or an early end of stream.
pub async fn recv_exact(lp: &EventLoop, s: &TcpStream, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let (res, buf) = lp.sock_recv(s, Vec::with_capacity(len - out.len())).await;
        match res {
            Ok(0) => panic!("the peer closed after {} of {len} bytes", out.len()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("sock_recv failed: {e}"),
        }
    }
    out
}

/// Sends all of `data` on `s` with `lp.sock_sendall`.
///
/// # Panics
/// On a send error.
pub async fn send_all(lp: &EventLoop, s: &TcpStream, data: Vec<u8>) {
    let (res, _) = lp.sock_sendall(s, data).await;
    if let Err(e) = res {
        panic!("sock_sendall failed: {e}");
    }
}

/// The file descriptors open in this process: `/proc/self/fd` on Linux, `/dev/fd` elsewhere
/// (the descriptor used to read the directory is left out).
///
/// # Panics
/// If the directory cannot be read.
pub fn open_fds() -> BTreeSet<RawFd> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    let listed: Vec<RawFd> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own descriptor is closed by now: keep only the ones still open.
    listed.into_iter().filter(|&fd| fd_is_open(fd)).collect()
}

/// How many file descriptors are open in this process (see [`open_fds`]).
pub fn count_open_fds() -> usize {
    open_fds().len()
}

/// True if `fd` is an open file descriptor.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; an invalid fd gives -1 (EBADF).
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// True if `fd` has the close-on-exec flag.
pub fn fd_is_cloexec(fd: RawFd) -> bool {
    // SAFETY: as in `fd_is_open`.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    flags != -1 && flags & libc::FD_CLOEXEC != 0
}

/// True if `e` says the loop is closed (an `io::Error` wrapping [`LoopError::Closed`], or
/// one whose text says so).
pub fn is_closed_error(e: &io::Error) -> bool {
    let wrapped = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<LoopError>())
        .is_some_and(|le| matches!(le, LoopError::Closed));
    wrapped || e.to_string().to_lowercase().contains("closed")
}

/// Sleeps on the current (non-loop) thread.
pub fn thread_sleep(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// A pipe: (read end, write end), both non-blocking and close-on-exec.
///
/// # Panics
/// If the OS refuses.
pub fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe failed: {}", io::Error::last_os_error());
    for fd in fds {
        // SAFETY: `fd` was just returned by pipe(2) and is owned by this function; F_SETFD and
        // F_SETFL only change its flags.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    // SAFETY: both fds are open and owned by nobody else; each `File` takes sole ownership.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}
