//! Watching children exit, and reaping them: a pidfd the loop polls (Linux 5.3+), or a thread
//! per child blocked in `waitid` where pidfds are unavailable (asyncio's `PidfdChildWatcher` and
//! `ThreadedChildWatcher`).
//!
//! # Invariant
//! A child's pid is signalled only while [`Exit`]'s lock is held and no exit code is stored:
//! until then the child is not reaped, so its pid cannot belong to another process. Whoever
//! reaps (the loop's `wait`, the watcher thread, the background reaper) does it under the same
//! lock and stores the code.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::Waker;

use crate::sys::{retry_eintr, syscall};

/// How a loop learns that its children exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildWatcher {
    /// A pidfd per child (`pidfd_open`, Linux 5.3+), polled by the loop like any fd; where
    /// the kernel refuses pidfds, a thread per child, as [`ChildWatcher::Threaded`]. The
    /// default.
    Pidfd,
    /// A thread per child, blocked in `waitid` until the child exits (asyncio's
    /// `ThreadedChildWatcher`): works everywhere, costs a small thread per running child.
    Threaded,
}

/// The environment variable that picks the watcher at start-up: `pidfd` (the default) or
/// `threaded` (to exercise the fallback where pidfds work).
pub const CHILD_WATCHER_VAR: &str = "LOOP_CHILD_WATCHER";

const UNSET: u8 = 0;
const PIDFD: u8 = 1;
const THREADED: u8 = 2;

static WATCHER: AtomicU8 = AtomicU8::new(UNSET);

/// Sets how children started from now on are watched, for the whole process.
pub fn set_child_watcher(watcher: ChildWatcher) {
    let v = match watcher {
        ChildWatcher::Pidfd => PIDFD,
        ChildWatcher::Threaded => THREADED,
    };
    WATCHER.store(v, Ordering::Relaxed);
}

/// How children are watched: what [`set_child_watcher`] set, else [`CHILD_WATCHER_VAR`]
/// (`threaded` picks [`ChildWatcher::Threaded`]), else [`ChildWatcher::Pidfd`].
pub fn child_watcher() -> ChildWatcher {
    static FROM_ENV: OnceLock<ChildWatcher> = OnceLock::new();
    match WATCHER.load(Ordering::Relaxed) {
        PIDFD => ChildWatcher::Pidfd,
        THREADED => ChildWatcher::Threaded,
        _ => *FROM_ENV.get_or_init(|| match std::env::var(CHILD_WATCHER_VAR) {
            Ok(v) if v.trim().eq_ignore_ascii_case("threaded") => ChildWatcher::Threaded,
            _ => ChildWatcher::Pidfd,
        }),
    }
}

/// A pidfd for `pid` (close-on-exec), or why there is none.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd (close-on-exec); nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as libc::c_int) })
}

/// No pidfds outside Linux.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pidfd_open(_pid: libc::pid_t) -> io::Result<OwnedFd> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// asyncio's returncode for a `waitpid` status: the exit code, or minus the signal.
pub(crate) fn returncode(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        status
    }
}

/// What became of a child: its returncode, or the errno of `waitpid` (ECHILD: someone else
/// reaped it).
type Outcome = Result<i32, i32>;

#[derive(Default)]
pub(crate) struct ExitState {
    pub(crate) outcome: Option<Outcome>,
    pub(crate) waker: Option<Waker>,
}

/// A child's exit, shared by the `Process`, its futures and a watcher thread.
pub(crate) struct Exit {
    pub(crate) pid: libc::pid_t,
    state: Mutex<ExitState>,
}

pub(crate) fn outcome_to_result(outcome: Outcome) -> io::Result<i32> {
    outcome.map_err(|errno| {
        let e = io::Error::from_raw_os_error(errno);
        io::Error::new(
            e.kind(),
            format!("waitpid failed: {e} (was the child reaped elsewhere, e.g. by a SIGCHLD handler calling waitpid(-1)?)"),
        )
    })
}

impl Exit {
    pub(crate) fn new(pid: libc::pid_t) -> Arc<Exit> {
        Arc::new(Exit {
            pid,
            state: Mutex::new(ExitState::default()),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ExitState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outcome if known; otherwise reaps the child if it has exited (`block`: waits).
    pub(crate) fn try_reap(&self, block: bool) -> Option<Outcome> {
        let mut st = self.lock();
        if st.outcome.is_none() {
            st.outcome = waitpid(self.pid, block);
        }
        st.outcome
    }

    /// Sends `sig` to the child unless it was reaped (see the module's invariant).
    pub(crate) fn send_signal(&self, sig: i32) -> io::Result<()> {
        let st = self.lock();
        if st.outcome.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such process (ESRCH): the child has already exited and been reaped",
            ));
        }
        // SAFETY (inside syscall!): kill takes plain integers. The pid is our unreaped child.
        syscall!(kill(self.pid, sig)).map(drop)
    }
}

/// Reaps `pid` if it exited (`block`: waits until it does); `None` if it is still running.
fn waitpid(pid: libc::pid_t, block: bool) -> Option<Outcome> {
    let mut status: libc::c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY (inside syscall!): `status` is a valid out-parameter.
    match retry_eintr(|| syscall!(waitpid(pid, &mut status, flags))) {
        Ok(0) => None,
        Ok(_) => Some(Ok(returncode(status))),
        Err(e) => Some(Err(e.raw_os_error().unwrap_or(libc::ECHILD))),
    }
}

/// Blocks until `pid` has exited, without reaping it (`waitid` with `WNOWAIT`).
fn wait_exited(pid: libc::pid_t) -> io::Result<()> {
    // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    retry_eintr(|| {
        // SAFETY (inside syscall!): `info` is a valid, writable siginfo_t.
        syscall!(waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT
        ))
    })
    .map(drop)
}

/// Small stacks: these threads only wait in one system call.
const WATCHER_STACK: usize = 64 * 1024;

/// Starts a thread that waits for the child, reaps it, stores the outcome and wakes `wait`.
pub(crate) fn spawn_watcher_thread(exit: Arc<Exit>) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("loop-child-watcher-{}", exit.pid))
        .stack_size(WATCHER_STACK)
        .spawn(move || {
            // Wait without reaping, then reap under the lock, so `send_signal` never races
            // with the pid being freed.
            let _ = wait_exited(exit.pid);
            let waker = {
                let mut st = exit.lock();
                if st.outcome.is_none() {
                    st.outcome = waitpid(exit.pid, true);
                }
                st.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        })
        .map(drop)
}

/// Reaps a child nobody will wait for any more, in the background (a `Process` dropped
/// before its child was reaped). If no thread can be started the child is left as a zombie
/// until the program exits; there is nothing else that could reap it.
pub(crate) fn reap_in_background(exit: Arc<Exit>) {
    if exit.try_reap(false).is_some() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name(format!("loop-child-reaper-{}", exit.pid))
        .stack_size(WATCHER_STACK)
        .spawn(move || {
            let _ = wait_exited(exit.pid);
            exit.try_reap(true);
        });
}

/// Kills and reaps a child that could not be set up (so no zombie is left).
pub(crate) fn kill_and_reap(exit: &Exit) {
    let _ = exit.send_signal(libc::SIGKILL);
    exit.try_reap(true);
}
