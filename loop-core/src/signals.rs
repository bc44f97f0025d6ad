//! `add_signal_handler`/`remove_signal_handler`: Unix signals delivered to callbacks on the
//! loop's thread.
//!
//! The async-signal-safe part is signal-hook's: the OS handler runs the actions registered
//! with `signal_hook::low_level::register`, and the action of a loop writes one byte, the
//! signal's number, to the loop's wake-up socket (the self-pipe trick; `write(2)` is
//! async-signal-safe, and a full socket drops the byte rather than block). The loop watches
//! the other end like any reader: each byte queues the handler of that signal as a callback,
//! so a signal arriving while the loop is blocked wakes it and runs its handler exactly once,
//! on the loop's thread.
//!
//! Signal dispositions are process-wide, so a process-wide [`REGISTRY`] counts the loops
//! handling each signal. When the last handler of a signal is removed, the disposition that
//! was in force when the first of those loops installed its handler is put back: `SIG_DFL`
//! for most signals (as asyncio does), but `SIG_IGN` for SIGPIPE, which the Rust runtime
//! ignores before `main` (putting `SIG_DFL` there would let the next broken pipe kill the
//! process), or a handler of the program's own. signal-hook never uninstalls its OS handler,
//! so the registry restores that disposition itself and remembers signal-hook's handler, to
//! reinstall it when the signal is handled again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use loop_api::{Handle, LoopError};
use signal_hook::SigId;

use crate::driver::Driver;
use crate::shared::{LocalQueue, Ready};
use crate::watch::Watches;
use loop_api::Direction;

type SignalCallback = Rc<RefCell<Box<dyn FnMut() + 'static>>>;

/// One loop's signal handlers and its wake-up socket pair.
pub(crate) struct LoopSignals {
    /// Watched by the loop; the bytes are signal numbers.
    read: UnixStream,
    /// Written by the signal actions (non-blocking).
    write: UnixStream,
    handlers: Rc<RefCell<HashMap<i32, (SigId, SignalCallback)>>>,
}

/// Per signal: how many loops handle it, the disposition found when the first of them
/// installed its handler, and signal-hook's OS handler while that disposition is restored in
/// its place.
struct SignalEntry {
    sig: i32,
    loops: usize,
    found: Option<libc::sigaction>,
    hook_handler: Option<libc::sigaction>,
}

/// The process-wide bookkeeping of handled signals.
static REGISTRY: Mutex<Vec<SignalEntry>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<SignalEntry>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The largest valid signal number here.
fn max_signal() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::SIGRTMAX()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        31
    }
}

/// Refuses what cannot be handled: a bad number, SIGKILL/SIGSTOP, and the synchronous fault
/// signals (SIGSEGV, SIGILL, SIGFPE), which must be handled on the faulting thread at once.
pub(crate) fn check_signal(sig: i32) -> Result<(), LoopError> {
    let max = max_signal();
    if !(1..=max).contains(&sig) {
        return Err(LoopError::InvalidArgument(format!(
            "invalid signal number {sig}: signal numbers go from 1 to {max}"
        )));
    }
    if sig == libc::SIGKILL || sig == libc::SIGSTOP {
        return Err(LoopError::InvalidArgument(format!(
            "signal {sig} (SIGKILL or SIGSTOP) cannot be caught, blocked or ignored"
        )));
    }
    if signal_hook::consts::FORBIDDEN.contains(&sig) {
        return Err(LoopError::InvalidArgument(format!(
            "signal {sig} is a synchronous fault signal (SIGSEGV, SIGILL, SIGFPE): it cannot be \
             deferred to a callback on the loop"
        )));
    }
    Ok(())
}

/// The disposition of `sig` now.
fn disposition(sig: i32) -> io::Result<libc::sigaction> {
    // SAFETY: all-zero is a valid sigaction to receive the current one.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `now` is a valid out-parameter.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(now)
}

/// The index of `sig`'s entry in `reg`, made if missing.
fn entry_of(reg: &mut Vec<SignalEntry>, sig: i32) -> usize {
    if let Some(pos) = reg.iter().position(|e| e.sig == sig) {
        return pos;
    }
    reg.push(SignalEntry {
        sig,
        loops: 0,
        found: None,
        hook_handler: None,
    });
    reg.len() - 1
}

/// Registers the action writing `sig` to `fd` and makes sure the OS handler is installed;
/// the first loop to handle `sig` records the disposition it found.
fn register(sig: i32, fd: std::os::fd::RawFd) -> io::Result<SigId> {
    let mut reg = registry();
    let pos = entry_of(&mut reg, sig);
    // Looked at before signal-hook installs its handler (the first time ever) or before its
    // handler is put back (after a restore): what is in force without any loop's handler.
    let found = match reg[pos].loops {
        0 => Some(disposition(sig)?),
        _ => None,
    };
    let byte = sig as u8; // check_signal: 1..=SIGRTMAX (64) fits a byte
    // SAFETY: the action only calls write(2), which is async-signal-safe, on `fd`, which stays
    // open until after `unregister` returned (signal-hook's unregister waits for running
    // handlers to finish), see `LoopSignals` and `remove`.
    let id = unsafe {
        signal_hook::low_level::register(sig, move || {
            let _ = libc::write(fd, (&byte as *const u8).cast(), 1);
        })
    }
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {sig} cannot be handled here (reserved by the C library?)"),
        ),
        _ => e,
    })?;
    let entry = &mut reg[pos];
    if found.is_some() {
        entry.found = found;
    }
    entry.loops += 1;
    if let Some(hook) = entry.hook_handler.take() {
        // SAFETY: `hook` is the sigaction signal-hook installed for `sig`, saved when the
        // found disposition was restored; putting it back is what signal-hook expects.
        if unsafe { libc::sigaction(sig, &hook, std::ptr::null_mut()) } != 0 {
            entry.hook_handler = Some(hook);
        }
    }
    Ok(id)
}

/// Unregisters `id`; if no loop handles `sig` any more, restores the disposition the first
/// loop found (`SIG_DFL` if none was recorded).
fn unregister(sig: i32, id: SigId) {
    let mut reg = registry();
    signal_hook::low_level::unregister(id);
    let Some(entry) = reg.iter_mut().find(|e| e.sig == sig) else {
        return;
    };
    entry.loops = entry.loops.saturating_sub(1);
    if entry.loops > 0 || entry.hook_handler.is_some() {
        return;
    }
    let restore = entry.found.take().unwrap_or_else(|| {
        // SAFETY: all-zero is a valid sigaction (handler SIG_DFL, empty mask, no flags).
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        dfl
    });
    // SAFETY: all-zero is a valid sigaction for the out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid sigaction structs for the duration of the call.
    if unsafe { libc::sigaction(sig, &restore, &mut old) } == 0 {
        entry.hook_handler = Some(old);
    }
}

impl LoopSignals {
    fn new(local: Rc<LocalQueue>) -> io::Result<(LoopSignals, Box<dyn FnMut() + 'static>)> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let handlers: Rc<RefCell<HashMap<i32, (SigId, SignalCallback)>>> = Rc::default();
        let mut reader = read.try_clone()?;
        let table = Rc::downgrade(&handlers);
        // Drains the socket; queues the handler of each signal received, once per byte.
        let on_readable = Box::new(move || {
            let mut bytes = [0u8; 64];
            while let Ok(n @ 1..) = reader.read(&mut bytes) {
                let Some(table) = table.upgrade() else { return };
                for &sig in &bytes[..n] {
                    let callback = table.borrow().get(&i32::from(sig)).map(|h| h.1.clone());
                    if let Some(cb) = callback {
                        local.push(Ready::Callback(Handle::new(move || {
                            if let Ok(mut f) = cb.try_borrow_mut() {
                                f();
                            }
                        })));
                    }
                }
            }
        });
        Ok((
            LoopSignals {
                read,
                write,
                handlers,
            },
            on_readable,
        ))
    }
}

/// The loop's signals part: its handlers, once it has one (asyncio's `add_signal_handler`).
#[derive(Default)]
pub(crate) struct Signals {
    state: RefCell<Option<LoopSignals>>,
}

impl Signals {
    /// `add_signal_handler`: the first handler sets up the self-pipe, watched by `watches`,
    /// whose reader queues handlers on `local`.
    pub(crate) fn add<D: Driver>(
        &self,
        watches: &Watches<D>,
        local: &Rc<LocalQueue>,
        sig: i32,
        callback: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        check_signal(sig)?;
        if self.state.borrow().is_none() {
            let (signals, on_readable) = LoopSignals::new(local.clone())?;
            watches.add(signals.read.as_raw_fd(), Direction::Read, on_readable)?;
            *self.state.borrow_mut() = Some(signals);
        }
        let signals = self.state.borrow();
        let Some(signals) = signals.as_ref() else {
            return Err(LoopError::Closed);
        };
        let mut handlers = signals.handlers.borrow_mut();
        if let Some(entry) = handlers.get_mut(&sig) {
            // Replacing a handler keeps the registration: no window without one.
            entry.1 = Rc::new(RefCell::new(callback));
            return Ok(());
        }
        let id = register(sig, signals.write.as_raw_fd())?;
        handlers.insert(sig, (id, Rc::new(RefCell::new(callback))));
        Ok(())
    }

    /// `remove_signal_handler`: true if `sig` had a handler.
    pub(crate) fn remove(&self, sig: i32) -> bool {
        let removed = {
            let signals = self.state.borrow();
            let Some(signals) = signals.as_ref() else {
                return false;
            };
            signals.handlers.borrow_mut().remove(&sig)
        };
        match removed {
            Some((id, callback)) => {
                unregister(sig, id);
                drop(callback);
                true
            }
            None => false,
        }
    }

    /// Removes every handler (restoring the dispositions found) and releases the socket
    /// pair: the loop is closing.
    pub(crate) fn close<D: Driver>(&self, watches: &Watches<D>) {
        let Some(signals) = self.state.borrow_mut().take() else {
            return;
        };
        let handlers: Vec<(i32, (SigId, SignalCallback))> =
            signals.handlers.borrow_mut().drain().collect();
        for (sig, (id, _)) in &handlers {
            unregister(*sig, *id);
        }
        // User callbacks are dropped outside every borrow.
        drop(handlers);
        watches.remove(signals.read.as_raw_fd(), Direction::Read);
        // Only now are the fds closed: no action can write to them any more.
        drop(signals);
    }
}
