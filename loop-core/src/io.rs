//! The loop's I/O part: the driver and its table of operations, shared (as an [`IoCell`]) with
//! the futures of operations in flight.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::driver::Driver;
use crate::ops::{OpKey, Ops};

/// The driver and its operation table.
pub(crate) struct Io<D> {
    pub(crate) driver: D,
    pub(crate) ops: Ops,
}

/// `None` once the loop is closed.
pub(crate) type IoCell<D> = Rc<RefCell<Option<Io<D>>>>;

/// What one poll of the driver reported: the wakers of completed operations and the watches
/// that fired (vectors kept between iterations for their allocation).
#[derive(Default)]
pub(crate) struct Polled {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) fired: Vec<OpKey>,
}

impl Polled {
    /// True when the poll reported nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.wakers.is_empty() && self.fired.is_empty()
    }
}

impl<D: Driver> Io<D> {
    /// Polls the driver for at most `timeout` and collects what it reported into `polled`.
    /// When the loop has work ready (`timeout` zero) and no operation or watch is in flight,
    /// nothing could be reported: no syscall is made.
    /// `started`: the real time read just before (see [`Ops::poll_started`]).
    pub(crate) fn poll(
        &mut self,
        timeout: Option<Duration>,
        started: Option<Instant>,
        polled: &mut Polled,
    ) -> std::io::Result<()> {
        let nothing_to_poll = timeout == Some(Duration::ZERO) && self.ops.is_empty();
        if !nothing_to_poll {
            self.ops.end_round();
            self.ops.set_poll_started(started);
            self.driver.poll(&mut self.ops, timeout)?;
        }
        self.ops.drain_wakers(&mut polled.wakers);
        self.ops.drain_fired_watches(&mut polled.fired);
        Ok(())
    }

    /// Closes the I/O part: the driver lets go of every operation (and its files), then the
    /// table drops them.
    pub(crate) fn shut_down(mut self) {
        self.driver.shutdown(&mut self.ops);
        self.ops.clear();
    }
}
