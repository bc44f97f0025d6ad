//! One operation at a time per socket and direction in the kernel.
//!
//! io_uring does not complete two receives (or two sends) waiting on one socket in the order
//! they were submitted: both wait on the socket's wait queue, and a wake-up may run the later
//! one first, so the bytes of a stream would reach the receives out of order. The readiness
//! backends keep such operations in a queue per fd and direction; this is the same queue for
//! the ring: the first operation of a socket and direction goes to the kernel, the others wait
//! here and go in turn as each completes.

use std::collections::VecDeque;
use std::os::fd::RawFd;

use loop_core::{Direction, Op, OpKey};

/// Where an op waits its turn: its fd and direction, for the ops whose order is the data's
/// order (receives and sends; not accepts, connects or readiness watches).
#[inline]
pub(crate) fn turn_of(op: &Op) -> Option<(RawFd, Direction)> {
    // Every request's receive and send: one test each.
    if let Op::Recv { fd, .. } = op {
        return Some((*fd, Direction::Read));
    }
    if let Op::Send { fd, .. } = op {
        return Some((*fd, Direction::Write));
    }
    turn_of_other(op)
}

#[inline(never)]
fn turn_of_other(op: &Op) -> Option<(RawFd, Direction)> {
    match op {
        Op::Recv { fd, .. } | Op::RecvFrom { fd, .. } => Some((*fd, Direction::Read)),
        Op::Send { fd, .. } | Op::SendTo { fd, .. } => Some((*fd, Direction::Write)),
        Op::SendFile { sock, .. } => Some((*sock, Direction::Write)),
        _ => None,
    }
}

#[derive(Debug, Default)]
pub(crate) struct Turns {
    /// The op of this fd and direction the kernel has now.
    pub(crate) current: Option<OpKey>,
    /// The ops waiting for their turn, in submission order.
    waiting: VecDeque<OpKey>,
    /// Receives only: the lending round (see [`crate::lending`]) since which the receive the
    /// kernel has holds a buffer it could lend (`None`: it holds none).
    pub(crate) held_since: Option<u32>,
    /// Receives only: the receive the kernel has is being cancelled because it waited long,
    /// to wait on without its buffer (not because its future was dropped).
    pub(crate) idle_cancel: bool,
    /// Receives only: the next receive goes without `RECVSEND_POLL_FIRST` (the last one
    /// filled its buffer, or a poll just said the socket is readable).
    pub(crate) readable: bool,
    /// Receives only: a receive on the socket got bytes (since it was registered). Until
    /// then (a new connection, which may well stay idle) a receive waits holding no buffer.
    pub(crate) received: bool,
}

impl Turns {
    /// Op `key` wants the kernel: true if it is its turn (it then has it), false if it was
    /// queued behind the op that has it.
    #[inline]
    pub(crate) fn take(&mut self, key: OpKey) -> bool {
        match self.current {
            None => {
                self.current = Some(key);
                true
            }
            Some(current) if current == key => true,
            Some(_) => {
                self.waiting.push_back(key);
                false
            }
        }
    }

    /// The op that has the turn is done: the next one waiting, which now has it.
    #[inline]
    pub(crate) fn pass(&mut self) -> Option<OpKey> {
        self.current = match self.waiting.is_empty() {
            true => None,
            false => self.waiting.pop_front(),
        };
        self.current
    }
}

/// The turns of every fd, by fd number and direction.
#[derive(Debug, Default)]
pub(crate) struct Order {
    fds: Vec<[Turns; 2]>,
}

impl Order {
    /// The turns of `fd` in direction `dir` (made on first use; `None` for a negative fd).
    #[inline]
    pub(crate) fn turns(&mut self, fd: RawFd, dir: Direction) -> Option<&mut Turns> {
        let i = usize::try_from(fd).ok()?;
        if i >= self.fds.len() {
            self.grow(i);
        }
        self.fds.get_mut(i).map(|t| &mut t[dir as usize])
    }

    /// Makes room for the turns of fd number `i`.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, i: usize) {
        self.fds.resize_with(i + 1, Default::default);
    }

    /// The receive turns of every fd.
    pub(crate) fn read_turns(&mut self) -> impl Iterator<Item = &mut Turns> {
        self.fds
            .iter_mut()
            .map(|t| &mut t[Direction::Read as usize])
    }

    /// Op `key` wants the kernel: true if it is its turn (it then has it), false if it was
    /// queued behind the op that has it.
    #[cfg(test)]
    pub(crate) fn take_turn(&mut self, key: OpKey, fd: RawFd, dir: Direction) -> bool {
        self.turns(fd, dir).is_none_or(|turns| turns.take(key))
    }

    /// Op `key` completed: the next op waiting on its fd and direction, which now has the
    /// turn.
    pub(crate) fn pass_turn(&mut self, key: OpKey, fd: RawFd, dir: Direction) -> Option<OpKey> {
        let turns = self.turns(fd, dir)?;
        if turns.current != Some(key) {
            return None;
        }
        turns.pass()
    }

    /// Takes `key` out of the queue it waits in; false if it was not waiting (it is in the
    /// kernel, or unknown).
    pub(crate) fn withdraw(&mut self, key: OpKey, fd: RawFd, dir: Direction) -> bool {
        let Some(turns) = self.turns(fd, dir) else {
            return false;
        };
        let before = turns.waiting.len();
        turns.waiting.retain(|k| *k != key);
        turns.waiting.len() != before
    }

    /// Every op still waiting for its turn (none of them is in the kernel), emptying the
    /// queues.
    pub(crate) fn drain_waiting(&mut self) -> Vec<OpKey> {
        let mut keys = Vec::new();
        for turns in self.fds.iter_mut().flatten() {
            keys.extend(turns.waiting.drain(..));
            turns.current = None;
            turns.held_since = None;
            turns.idle_cancel = false;
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_of_one_fd_and_direction_take_turns_in_order() {
        let mut order = Order::default();
        let (a, b, c) = (OpKey(1), OpKey(2), OpKey(3));
        assert!(order.take_turn(a, 5, Direction::Read));
        assert!(!order.take_turn(b, 5, Direction::Read));
        assert!(!order.take_turn(c, 5, Direction::Read));
        // Another direction and another fd are not held up.
        assert!(order.take_turn(OpKey(4), 5, Direction::Write));
        assert!(order.take_turn(OpKey(5), 6, Direction::Read));
        // A resubmission of the op that has the turn keeps it.
        assert!(order.take_turn(a, 5, Direction::Read));
        assert!(order.withdraw(b, 5, Direction::Read));
        assert!(!order.withdraw(a, 5, Direction::Read));
        assert_eq!(order.pass_turn(a, 5, Direction::Read), Some(c));
        assert_eq!(order.pass_turn(c, 5, Direction::Read), None);
        assert!(order.take_turn(b, 5, Direction::Read));
        assert_eq!(order.drain_waiting(), Vec::<OpKey>::new());
    }
}
