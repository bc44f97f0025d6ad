//! The loop's spare receive buffers.
//!
//! A receive that has waited [`IDLE_RECEIVE_AFTER`](loop_api::IDLE_RECEIVE_AFTER) for data
//! holds no buffer: the driver lends it here ([`Ops::park_buffer`](crate::Ops::park_buffer)
//! for an op in the table, `lend` for one parked in its future) while the socket has nothing
//! to read, and takes one of the same capacity back just before the receive is made. (The
//! readiness driver lends a parked receive's buffer only once it has waited that long: a busy
//! connection keeps its own.) The list keeps as many as receives lately
//! took in one round of the loop (a decaying peak, at least [`SPARE_BUFFERS`]); the rest are
//! freed. So a loop with ten thousand idle connections holds a few receive buffers, not ten
//! thousand, while busy connections take back the buffers they just gave up (no allocation
//! per wait).

use loop_api::Op;

/// Receive buffers smaller than this are not parked: they cost less than a page.
pub const PARK_MIN: usize = 4096;

/// How many parked buffers a loop keeps for reuse at least (more while more receives took
/// one in a round lately); beyond that they are freed.
pub const SPARE_BUFFERS: usize = 4;

/// Parked receive buffers, kept for the receives that need one next (see the module docs).
///
/// The newest one is kept apart (`last`): a ping-pong connection lends its buffer and takes
/// it back within a round, so most lends and takes touch only that one field.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    /// The newest spare (capacity 0: none).
    last: Vec<u8>,
    /// The others.
    bufs: Vec<Vec<u8>>,
    /// Buffers taken since the round began.
    taken: usize,
    /// How many to keep: the most taken in one round lately, decaying.
    keep: usize,
}

impl Spares {
    /// Keeps `buf` for a later receive, or frees it when enough are kept.
    #[inline(always)]
    pub(crate) fn put(&mut self, buf: Vec<u8>) {
        if self.last.capacity() == 0 {
            self.last = buf;
        } else {
            self.put_more(buf);
        }
    }

    fn put_more(&mut self, buf: Vec<u8>) {
        // `keep` is at least SPARE_BUFFERS once a round ended; before, keep a few anyway
        // (`last` is one of them).
        let kept = self.bufs.len() + 1;
        if kept < self.keep || kept < SPARE_BUFFERS {
            self.bufs.push(buf);
        }
    }

    /// A buffer of capacity `cap`: a spare one, or a new one.
    #[inline(always)]
    pub(crate) fn take(&mut self, cap: usize) -> Vec<u8> {
        self.taken += 1;
        if self.last.capacity() == cap {
            return std::mem::take(&mut self.last);
        }
        self.take_more(cap)
    }

    fn take_more(&mut self, cap: usize) -> Vec<u8> {
        match self.bufs.iter().rposition(|b| b.capacity() == cap) {
            Some(i) => self.bufs.swap_remove(i),
            None => Vec::with_capacity(cap),
        }
    }

    /// A round of the loop ends: what it took raises the number kept, which otherwise decays
    /// (by an eighth a round: from a burst of 10,000 to the minimum in about 50 rounds).
    pub(crate) fn end_round(&mut self) {
        let decayed = self.keep - self.keep.div_ceil(8);
        self.keep = self.taken.max(decayed).max(SPARE_BUFFERS);
        self.taken = 0;
        // Spares a burst left and no round needed lately are freed (`last` is one).
        if self.bufs.len() + 1 > self.keep {
            self.bufs.truncate(self.keep - 1);
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.last.capacity() + self.bufs.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Lends the buffer of `op`, a receive about to wait for data, to the spares: its
    /// capacity, or 0 when it keeps it (not an empty receive buffer of at least
    /// [`PARK_MIN`] bytes).
    #[inline(always)]
    pub(crate) fn lend(&mut self, op: &mut Op) -> usize {
        match op {
            Op::Recv { buf, .. } if buf.is_empty() && buf.capacity() >= PARK_MIN => {
                let cap = buf.capacity();
                self.put(std::mem::take(buf));
                cap
            }
            _ => 0,
        }
    }

    /// Gives `op`, a receive that lent its buffer, one of capacity `lent` back (a spare one,
    /// or a new one); nothing when `lent` is 0.
    #[inline(always)]
    pub(crate) fn give_back(&mut self, op: &mut Op, lent: usize) {
        if lent != 0
            && let Op::Recv { buf, .. } = op
        {
            // The lending op's buffer is an empty `Vec::new()`: nothing to free.
            *buf = self.take(lent);
        }
    }
}

/// The rounds in which a driver lends the buffers of receives that waited long (see
/// [`IDLE_RECEIVE_AFTER`](loop_api::IDLE_RECEIVE_AFTER)): one every `IDLE_RECEIVE_AFTER`
/// while some receive holds a buffer it could lend. A receive notes the round it began to
/// hold its buffer in ([`current`](Self::current)); when a round ends, those that began in an
/// earlier one have waited at least that long and lend theirs, so a receive whose data comes
/// within a round never does. The time is the one the loop read before its wait
/// ([`Ops::poll_started`](crate::Ops::poll_started)), or read every 16th poll that does not
/// wait (a loop that never waits lends too).
#[derive(Debug, Default)]
pub struct LendingRounds {
    /// The current round.
    round: u32,
    /// When the next round begins (`None` until a receive first held a buffer).
    next: Option<std::time::Instant>,
    /// Polls that did not wait since the time was last read.
    unread: u32,
}

/// What [`LendingRounds::before_wait`] found.
#[derive(Debug, Clone, Copy)]
pub struct RoundCheck {
    /// A round ended now: the receives that began to hold their buffer in another round than
    /// this one are to lend it.
    pub ended: Option<u32>,
    /// The wait's timeout, cut to the next round (a wait that ends early is no quiet wait of
    /// the whole timeout to the loop: it compares the time waited).
    pub timeout: Option<std::time::Duration>,
}

impl LendingRounds {
    /// How many polls that do not wait go by without reading the time.
    const UNREAD_POLLS: u32 = 16;

    /// The current round.
    #[inline]
    pub fn current(&self) -> u32 {
        self.round
    }

    /// Before the driver's wait (of at most `timeout`), while some receive holds a buffer it
    /// could lend: ends the round if it is due, and cuts the wait to the next round.
    /// `started`: [`Ops::poll_started`](crate::Ops::poll_started).
    pub fn before_wait(
        &mut self,
        started: Option<std::time::Instant>,
        timeout: Option<std::time::Duration>,
    ) -> RoundCheck {
        let unchanged = RoundCheck {
            ended: None,
            timeout,
        };
        let now = match started {
            Some(now) => now,
            None => {
                self.unread += 1;
                if self.unread < Self::UNREAD_POLLS {
                    return unchanged;
                }
                self.unread = 0;
                std::time::Instant::now()
            }
        };
        let after = loop_api::IDLE_RECEIVE_AFTER;
        let mut next = *self.next.get_or_insert(now + after);
        let mut ended = None;
        if now >= next {
            ended = Some(self.round);
            self.round = self.round.wrapping_add(1);
            next = now + after;
            self.next = Some(next);
        }
        let left = next - now;
        let timeout = Some(timeout.map_or(left, |t| t.min(left)));
        RoundCheck { ended, timeout }
    }
}
