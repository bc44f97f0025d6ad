//! What dropped operations leave behind (bytes a cancelled receive got, a connection a
//! cancelled accept accepted, a datagram), kept in delivery order per socket and handed to
//! the next operation on the same socket.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use super::{OpKey, Ops, unpark};
use crate::sys::file_identity;
use loop_api::Op;

/// A connection accepted by an operation whose future was dropped.
type Accepted = (OwnedFd, Box<loop_api::AddrBuf>);

/// A datagram received by an operation whose future was dropped: its bytes and sender.
type Datagram = (Vec<u8>, socket2::SockAddr);

/// What dropped operations left on one socket, in the order the kernel delivered it (the
/// completion order of their operations), whatever the order the futures were dropped in.
#[derive(Debug)]
struct InDeliveryOrder<T>(VecDeque<(u64, T)>);

impl<T> Default for InDeliveryOrder<T> {
    fn default() -> Self {
        InDeliveryOrder(VecDeque::new())
    }
}

impl<T> InDeliveryOrder<T> {
    /// Adds what the operation completed `at` left, after everything delivered before it.
    fn insert(&mut self, at: u64, item: T) {
        let pos = self
            .0
            .iter()
            .rposition(|(seq, _)| *seq < at)
            .map_or(0, |i| i + 1);
        self.0.insert(pos, (at, item));
    }

    fn front_mut(&mut self) -> Option<&mut T> {
        self.0.front_mut().map(|(_, item)| item)
    }

    fn pop_front(&mut self) -> Option<T> {
        self.0.pop_front().map(|(_, item)| item)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Things left behind by dropped operations, handed to the next operation on the same socket.
#[derive(Debug, Default)]
pub(super) struct Leftovers {
    /// Bytes cancelled recvs received (each chunk not yet consumed), by socket identity
    /// (device, inode): any fd of the same socket gets them, a reused fd number of another
    /// socket does not.
    received: HashMap<(u64, u64), InDeliveryOrder<VecDeque<u8>>>,
    /// Connections a cancelled accept accepted, by listener identity.
    accepted: HashMap<(u64, u64), InDeliveryOrder<Accepted>>,
    /// Datagrams a cancelled recvfrom received (bytes and sender), by socket identity.
    datagrams: HashMap<(u64, u64), InDeliveryOrder<Datagram>>,
    /// Something is left in one of the maps: the one check every receive and accept pays.
    any: bool,
}

impl Leftovers {
    /// Recomputes [`any`](Self::any) after a change.
    pub(super) fn refresh(&mut self) {
        self.any =
            !(self.received.is_empty() && self.accepted.is_empty() && self.datagrams.is_empty());
    }
}

impl Ops {
    /// The completion of `key`, an op marked to take what a dropped op of its socket left:
    /// what it got itself goes after that (it was delivered later), and it takes from the
    /// front. Its own result stands if nothing is left (another op took it first).
    pub(super) fn take_handed_over(
        &mut self,
        key: OpKey,
        result: io::Result<usize>,
    ) -> io::Result<usize> {
        let Some(slot) = self.slots.get_mut(key.0) else {
            return result;
        };
        slot.hand_over = false;
        if slot.parked_buffer != 0 {
            // It waited without its buffer: it needs one to take the leftovers into.
            unpark(&mut self.spare, slot);
        }
        let at = slot.completed_at;
        let fd = slot.op.fd();
        let placeholder = Op::PollReadable { fd };
        let mut op = std::mem::replace(&mut slot.op, placeholder);
        if let (Ok(n), Some(id)) = (&result, file_identity(fd)) {
            self.keep_own_result(&mut op, *n, id, at);
        }
        let taken = self.take_leftover(&mut op);
        if let Some(slot) = self.slots.get_mut(key.0) {
            slot.op = op;
        }
        taken.map_or(result, Ok)
    }

    /// Moves what `op` got (`n` bytes, a datagram, a connection), delivered `at`, among the
    /// leftovers of socket `id`, in delivery order. False if it got nothing to keep.
    pub(super) fn keep_own_result(
        &mut self,
        op: &mut Op,
        n: usize,
        id: (u64, u64),
        at: u64,
    ) -> bool {
        let leftovers = &mut self.leftovers;
        match op {
            Op::Recv { buf, .. } if n > 0 => {
                let bytes = buf.split_off(buf.len().saturating_sub(n));
                leftovers
                    .received
                    .entry(id)
                    .or_default()
                    .insert(at, bytes.into());
            }
            Op::RecvFrom { buf, msg, .. } => {
                let bytes = buf.split_off(buf.len().saturating_sub(n));
                let datagram = (bytes, msg.peer());
                leftovers
                    .datagrams
                    .entry(id)
                    .or_default()
                    .insert(at, datagram);
            }
            Op::Accept { addr, conn, .. } => {
                let Some(conn) = conn.take() else {
                    return false;
                };
                let addr = std::mem::replace(addr, loop_api::AddrBuf::new_boxed());
                leftovers
                    .accepted
                    .entry(id)
                    .or_default()
                    .insert(at, (conn, addr));
            }
            _ => return false,
        }
        leftovers.refresh();
        true
    }

    /// What dropped ops left for `op` (the next receive or accept on their socket): moved
    /// into it, with the count (or the accepted fd).
    #[inline]
    pub(crate) fn take_leftover(&mut self, op: &mut Op) -> Option<usize> {
        if !self.has_leftovers() {
            return None;
        }
        match op {
            Op::Recv { fd, buf } => self.take_received(*fd, buf),
            Op::RecvFrom { fd, buf, msg } => self.take_datagram(*fd, buf, msg),
            Op::Accept { fd, addr, conn } => {
                let (left_conn, left_addr) = self.take_accepted(*fd)?;
                **addr = *left_addr;
                let raw = std::os::fd::AsRawFd::as_raw_fd(&left_conn) as usize;
                *conn = Some(left_conn);
                Some(raw)
            }
            _ => None,
        }
    }

    /// Keeps what `op`, completed `at` with `result` and dropped, leaves for the next operation
    /// on the same socket (`identity`: the socket's, if it could be told). False if it left
    /// nothing.
    pub(super) fn keep_leftover(
        &mut self,
        mut op: Op,
        result: io::Result<usize>,
        identity: Option<(u64, u64)>,
        at: u64,
    ) -> bool {
        match (result, identity) {
            (Ok(n), Some(id)) => self.keep_own_result(&mut op, n, id, at),
            _ => false,
        }
    }

    /// Bytes left by cancelled recvs on `fd` (the same socket), in delivery order, moved into
    /// `buf` up to its spare capacity.
    #[inline]
    pub(crate) fn take_received(&mut self, fd: RawFd, buf: &mut Vec<u8>) -> Option<usize> {
        if !self.has_leftovers() {
            return None;
        }
        self.take_received_from(fd, buf)
    }

    pub(super) fn take_received_from(&mut self, fd: RawFd, buf: &mut Vec<u8>) -> Option<usize> {
        let id = file_identity(fd)?;
        let chunks = self.leftovers.received.get_mut(&id)?;
        let start = buf.len();
        while buf.len() < buf.capacity() {
            let Some(chunk) = chunks.front_mut() else {
                break;
            };
            let n = (buf.capacity() - buf.len()).min(chunk.len());
            buf.extend(chunk.drain(..n));
            if chunk.is_empty() {
                chunks.pop_front();
            }
        }
        if chunks.is_empty() {
            self.leftovers.received.remove(&id);
            self.leftovers.refresh();
        }
        Some(buf.len() - start)
    }

    /// A connection left by a cancelled accept on listener `fd`.
    pub(crate) fn take_accepted(&mut self, fd: RawFd) -> Option<Accepted> {
        if !self.has_leftovers() {
            return None;
        }
        let id = file_identity(fd)?;
        let conns = self.leftovers.accepted.get_mut(&id)?;
        let conn = conns.pop_front();
        if conns.is_empty() {
            self.leftovers.accepted.remove(&id);
            self.leftovers.refresh();
        }
        conn
    }

    /// A datagram left by a cancelled recvfrom on socket `fd`: its bytes (moved into `buf`, cut
    /// to its capacity as recvfrom would) and its sender.
    pub(crate) fn take_datagram(
        &mut self,
        fd: RawFd,
        buf: &mut Vec<u8>,
        msg: &mut loop_api::MsgBuf,
    ) -> Option<usize> {
        if !self.has_leftovers() {
            return None;
        }
        let id = file_identity(fd)?;
        let queue = self.leftovers.datagrams.get_mut(&id)?;
        let (bytes, from) = queue.pop_front()?;
        if queue.is_empty() {
            self.leftovers.datagrams.remove(&id);
            self.leftovers.refresh();
        }
        let n = bytes.len().min(buf.capacity() - buf.len());
        buf.extend_from_slice(&bytes[..n]);
        *msg = *loop_api::MsgBuf::to_addr(&from);
        msg.hdr.msg_namelen = msg.addr_len;
        Some(n)
    }

    pub(crate) fn has_leftovers(&self) -> bool {
        self.leftovers.any
    }
}
