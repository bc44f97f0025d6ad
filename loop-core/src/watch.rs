//! `add_reader`/`add_writer` with asyncio's level-triggered meaning, on any driver.
//!
//! A watch is a `PollReadable`/`PollWritable` operation kept in flight. When it completes the
//! callback is queued; after it runs, the operation is submitted again, and the driver re-arms
//! the fd (which re-evaluates readiness), so the callback runs on every iteration while the fd
//! stays ready, exactly like a level-triggered selector.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;

use loop_api::{ExceptionContext, LoopError};

use crate::base_loop::BaseEventLoop;
use crate::driver::Driver;
use crate::ops::{OpKey, Owner};
use crate::shared::Ready;
use crate::sys::{check_fd, check_watchable};
use loop_api::{Direction, Op};

type WatchCallback = Rc<RefCell<Box<dyn FnMut() + 'static>>>;

struct Watcher {
    callback: WatchCallback,
    generation: u64,
    /// The poll operation in flight, if armed.
    key: Option<OpKey>,
}

/// The reader and writer watches, by fd.
#[derive(Default)]
pub(crate) struct Watches {
    fds: HashMap<(RawFd, bool), Watcher>,
    next_generation: u64,
}

fn slot(fd: RawFd, dir: Direction) -> (RawFd, bool) {
    (fd, dir == Direction::Read)
}

impl<D: Driver> BaseEventLoop<D> {
    /// Submits the poll operation of a watch; gives its key.
    fn arm_watch(&self, fd: RawFd, dir: Direction) -> Result<OpKey, LoopError> {
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
            && io.ops.orphan(key)
        {
            io.driver.cancel(&mut io.ops, key);
        }
    }

    pub(crate) fn add_watch(
        &self,
        fd: RawFd,
        dir: Direction,
        callback: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        self.check_open()?;
        check_watchable(fd)?;
        self.remove_watch(fd, dir);
        let key = self.arm_watch(fd, dir)?;
        let mut watches = self.watches.borrow_mut();
        watches.next_generation += 1;
        let generation = watches.next_generation;
        watches.fds.insert(
            slot(fd, dir),
            Watcher {
                callback: Rc::new(RefCell::new(callback)),
                generation,
                key: Some(key),
            },
        );
        Ok(())
    }

    pub(crate) fn remove_watch(&self, fd: RawFd, dir: Direction) -> bool {
        let removed = self.watches.borrow_mut().fds.remove(&slot(fd, dir));
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
    pub(crate) fn queue_fired_watches(&self, fired: &mut Vec<OpKey>) {
        let mut watches = self.watches.borrow_mut();
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
            let Some(w) = watches.fds.get_mut(&slot(fd, dir)) else {
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

    /// Runs a watch's callback, then re-arms it if it is still the same watch.
    pub(crate) fn run_watch(&self, fd: RawFd, dir: Direction, generation: u64) {
        let callback = match self.watches.borrow().fds.get(&slot(fd, dir)) {
            Some(w) if w.generation == generation => w.callback.clone(),
            _ => return,
        };
        let ran = loop_api::panics::catch_reported(|| {
            if let Ok(mut f) = callback.try_borrow_mut() {
                f();
            }
        });
        if let Err(p) = ran {
            self.call_handler(&ExceptionContext {
                message: format!("Exception in {dir:?} callback of fd {fd}"),
                panic: Some(p.message),
                location: p.location,
                callback: Some(format!("{dir:?} callback of fd {fd}")),
                ..ExceptionContext::default()
            });
        }
        let still_ours = matches!(
            self.watches.borrow().fds.get(&slot(fd, dir)),
            Some(w) if w.generation == generation && w.key.is_none()
        );
        if !still_ours || self.closed.get() {
            return;
        }
        match self.arm_watch(fd, dir) {
            Ok(key) => {
                if let Some(w) = self.watches.borrow_mut().fds.get_mut(&slot(fd, dir)) {
                    w.key = Some(key);
                }
            }
            // The fd was closed without remove_reader/remove_writer (in the callback, say): as
            // epoll forgets a closed fd, the watch stays registered, disarmed and silent.
            Err(LoopError::Io(e)) if e.raw_os_error() == Some(libc::EBADF) => {}
            Err(e) => {
                // The fd can no longer be watched.
                self.watches.borrow_mut().fds.remove(&slot(fd, dir));
                self.call_handler(&ExceptionContext {
                    message: format!(
                        "{dir:?} watch of fd {fd} removed: it can no longer be watched (was it closed before remove_reader/remove_writer?)"
                    ),
                    error: Some(e.to_string()),
                    ..ExceptionContext::default()
                });
            }
        }
    }
}
