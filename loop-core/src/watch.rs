//! The loop's watches part: `add_reader`/`add_writer` with asyncio's level-triggered meaning,
//! on any driver.
//!
//! A watch is a `PollReadable`/`PollWritable` operation kept in flight. When it completes the
//! callback is queued; after it runs, the operation is submitted again, and the driver re-arms
//! the fd (which re-evaluates readiness), so the callback runs on every iteration while the fd
//! stays ready, exactly like a level-triggered selector.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;

use loop_api::{Direction, ExceptionContext, LoopError, Op};

use crate::driver::Driver;
use crate::io::IoCell;
use crate::ops::{OpKey, Owner};
use crate::reporting::{Report, Reporting};
use crate::shared::{LocalQueue, Ready};
use crate::sys::{check_fd, check_watchable};

type WatchCallback = Rc<RefCell<Box<dyn FnMut() + 'static>>>;

struct Watcher {
    callback: WatchCallback,
    generation: u64,
    /// The poll operation in flight, if armed.
    key: Option<OpKey>,
}

/// The reader and writer watches, by fd, with the loop's I/O (to arm them) and ready queue
/// (to queue their callbacks).
pub(crate) struct Watches<D: Driver> {
    fds: RefCell<HashMap<(RawFd, bool), Watcher>>,
    next_generation: Cell<u64>,
    io: IoCell<D>,
    local: Rc<LocalQueue>,
}

fn slot(fd: RawFd, dir: Direction) -> (RawFd, bool) {
    (fd, dir == Direction::Read)
}

impl<D: Driver> Watches<D> {
    pub(crate) fn new(io: IoCell<D>, local: Rc<LocalQueue>) -> Self {
        Watches {
            fds: RefCell::new(HashMap::new()),
            next_generation: Cell::new(0),
            io,
            local,
        }
    }

    /// Submits the poll operation of a watch; gives its key.
    fn arm(&self, fd: RawFd, dir: Direction) -> Result<OpKey, LoopError> {
        let mut io = self.io.borrow_mut();
        let io = io.as_mut().ok_or(LoopError::Closed)?;
        let op = match dir {
            Direction::Read => Op::PollReadable { fd },
            Direction::Write => Op::PollWritable { fd },
        };
        let key = io.ops.insert(op, Owner::Watch);
        if let Err(e) = io.driver.submit(&mut io.ops, key) {
            io.ops.remove(key);
            return Err(e.into());
        }
        Ok(key)
    }

    /// Cancels an armed watch's poll operation.
    fn disarm(&self, key: OpKey) {
        if let Ok(mut io) = self.io.try_borrow_mut()
            && let Some(io) = io.as_mut()
            && io.ops.orphan(key) == crate::ops::Orphaned::InFlight
        {
            io.driver.cancel(&mut io.ops, key);
        }
    }

    /// `add_reader`/`add_writer`: replaces an earlier watch of `fd` in `dir`.
    pub(crate) fn add(
        &self,
        fd: RawFd,
        dir: Direction,
        callback: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        check_watchable(fd)?;
        self.remove(fd, dir);
        let key = self.arm(fd, dir)?;
        let generation = self.next_generation.get() + 1;
        self.next_generation.set(generation);
        let watcher = Watcher {
            callback: Rc::new(RefCell::new(callback)),
            generation,
            key: Some(key),
        };
        self.fds.borrow_mut().insert(slot(fd, dir), watcher);
        Ok(())
    }

    /// `remove_reader`/`remove_writer`: true if `fd` was watched in `dir`.
    pub(crate) fn remove(&self, fd: RawFd, dir: Direction) -> bool {
        let removed = self.fds.borrow_mut().remove(&slot(fd, dir));
        match removed {
            Some(w) => {
                if let Some(key) = w.key {
                    self.disarm(key);
                }
                drop(w);
                true
            }
            None => false,
        }
    }

    /// Turns completed watch operations into ready callbacks. A watch whose fd was closed
    /// (the poll failed with EBADF, or the fd is gone by now) is never called again: it stays
    /// registered but disarmed, as epoll forgets a closed fd while asyncio's map still lists it.
    pub(crate) fn queue_fired(&self, fired: &mut Vec<OpKey>) {
        let mut fds = self.fds.borrow_mut();
        let mut io = self.io.borrow_mut();
        let Some(io) = io.as_mut() else {
            fired.clear();
            return;
        };
        for key in fired.drain(..) {
            let Some((res, op)) = io.ops.take_completed(key) else {
                continue;
            };
            let (fd, dir) = (op.fd(), op.direction());
            let Some(w) = fds.get_mut(&slot(fd, dir)) else {
                continue;
            };
            if w.key != Some(key) {
                continue;
            }
            w.key = None;
            let closed = match res {
                Err(e) => e.raw_os_error() == Some(libc::EBADF),
                Ok(_) => check_fd(fd).is_err(),
            };
            if !closed {
                self.local.push(Ready::Watch {
                    fd,
                    dir,
                    generation: w.generation.into(),
                });
            }
        }
    }

    /// Runs a watch's callback (its panic goes to `reporting`), then re-arms it if it is still
    /// the same watch.
    pub(crate) fn run(&self, fd: RawFd, dir: Direction, generation: u64, reporting: &Reporting) {
        let callback = match self.fds.borrow().get(&slot(fd, dir)) {
            Some(w) if w.generation == generation => w.callback.clone(),
            _ => return,
        };
        let ran = loop_api::panics::catch_reported(|| {
            if let Ok(mut f) = callback.try_borrow_mut() {
                f();
            }
        });
        if let Err(p) = ran {
            reporting.report(
                Report::Panic,
                &ExceptionContext {
                    message: format!("Exception in {dir:?} callback of fd {fd}"),
                    panic: Some(p.message),
                    location: p.location,
                    callback: Some(format!("{dir:?} callback of fd {fd}")),
                    ..ExceptionContext::default()
                },
            );
        }
        let still_ours = matches!(
            self.fds.borrow().get(&slot(fd, dir)),
            Some(w) if w.generation == generation && w.key.is_none()
        );
        if still_ours {
            self.rearm(fd, dir, reporting);
        }
    }

    fn rearm(&self, fd: RawFd, dir: Direction, reporting: &Reporting) {
        match self.arm(fd, dir) {
            Ok(key) => {
                if let Some(w) = self.fds.borrow_mut().get_mut(&slot(fd, dir)) {
                    w.key = Some(key);
                }
            }
            // The loop closed meanwhile: nothing to re-arm.
            Err(LoopError::Closed) => {}
            // The fd was closed without remove_reader/remove_writer (in the callback, say): as
            // epoll forgets a closed fd, the watch stays registered, disarmed and silent.
            Err(LoopError::Io(e)) if e.raw_os_error() == Some(libc::EBADF) => {}
            Err(e) => {
                // The fd can no longer be watched.
                self.fds.borrow_mut().remove(&slot(fd, dir));
                reporting.call(&ExceptionContext {
                    message: format!(
                        "{dir:?} watch of fd {fd} removed: it can no longer be watched (was it closed before remove_reader/remove_writer?)"
                    ),
                    error: Some(e.to_string()),
                    ..ExceptionContext::default()
                });
            }
        }
    }

    /// Number of readers and writers watched.
    pub(crate) fn len(&self) -> usize {
        self.fds.borrow().len()
    }

    /// Forgets every watch (the loop is closing); their callbacks are dropped outside the
    /// borrow, since destructors may call back into the loop.
    pub(crate) fn clear(&self) {
        let fds = std::mem::take(&mut *self.fds.borrow_mut());
        drop(fds);
    }
}
