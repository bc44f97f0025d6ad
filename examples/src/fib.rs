//! Fibonacci numbers for lines read from a file descriptor, without blocking the loop.
//!
//! The seed program reads numbers from stdin with a selector and computes `fib(n)` in the
//! loop. Computed naively (`fib(n-1) + fib(n-2)`), a large `n` freezes the loop; computed
//! iteratively in small steps that give the loop back between them, it does not. Here:
//!
//! - [`FibSession`] takes input bytes ([`FibSession::feed`]), splits them into lines, and
//!   answers each number: in [`Mode::Chunked`] on its own task that yields every
//!   [`CHUNK_WORK`] digit additions (so a small number asked after a huge one is answered
//!   first), in [`Mode::Blocking`] naively, in one poll of its task (the loop stalls
//!   meanwhile: the loop monitor's `ps` shows that task `Running`).
//! - [`watch_reader`] feeds a session from a readable fd with `add_reader` (the seed's way);
//!   [`read_in_executor`] does it from the loop's thread pool, for fds that cannot be
//!   watched (a regular file, `/dev/null`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::rc::Rc;

use loop_api::{EventLoop, LoopError, TaskError};

/// The largest `n` answered (fib(200000) has 41798 digits).
pub const MAX_N: u64 = 200_000;

/// The largest `n` answered in [`Mode::Blocking`] (naive recursion: fib(50) takes minutes).
pub const MAX_NAIVE_N: u64 = 50;

/// How many 9-digit limb additions one step of [`fib_chunked`] does before it yields.
pub const CHUNK_WORK: usize = 100_000;

/// A natural number in base 10^9, least significant limb first: just enough big-number
/// arithmetic (addition and printing) for Fibonacci numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BigNat {
    limbs: Vec<u32>,
}

const LIMB_BASE: u32 = 1_000_000_000;

impl BigNat {
    /// The number `v`.
    pub fn from_u64(mut v: u64) -> Self {
        let mut limbs = Vec::new();
        while v > 0 {
            limbs.push((v % u64::from(LIMB_BASE)) as u32);
            v /= u64::from(LIMB_BASE);
        }
        BigNat { limbs }
    }

    /// Adds `other` to `self`.
    pub fn add_assign(&mut self, other: &BigNat) {
        if self.limbs.len() < other.limbs.len() {
            self.limbs.resize(other.limbs.len(), 0);
        }
        let mut carry = 0;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let sum = *limb + other.limbs.get(i).copied().unwrap_or(0) + carry;
            (*limb, carry) = if sum >= LIMB_BASE {
                (sum - LIMB_BASE, 1)
            } else {
                (sum, 0)
            };
            if carry == 0 && i >= other.limbs.len() {
                break;
            }
        }
        if carry > 0 {
            self.limbs.push(carry);
        }
    }

    /// How many limbs the number has (the cost of adding it).
    pub fn limbs(&self) -> usize {
        self.limbs.len()
    }
}

impl fmt::Display for BigNat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((top, rest)) = self.limbs.split_last() else {
            return f.write_str("0");
        };
        write!(f, "{top}")?;
        rest.iter()
            .rev()
            .try_for_each(|limb| write!(f, "{limb:09}"))
    }
}

/// `fib(n)` computed iteratively, a bounded amount of work at a time.
#[derive(Debug)]
pub struct FibState {
    n: u64,
    i: u64,
    /// fib(i)
    a: BigNat,
    /// fib(i + 1)
    b: BigNat,
}

impl FibState {
    /// Starts computing `fib(n)`.
    pub fn new(n: u64) -> Self {
        FibState {
            n,
            i: 0,
            a: BigNat::from_u64(0),
            b: BigNat::from_u64(1),
        }
    }

    /// Does about `work` limb additions; true once `fib(n)` is known.
    pub fn step(&mut self, work: usize) -> bool {
        let mut spent = 0;
        while self.i < self.n && spent < work {
            spent += self.b.limbs().max(1);
            self.a.add_assign(&self.b);
            std::mem::swap(&mut self.a, &mut self.b);
            self.i += 1;
        }
        self.i == self.n
    }

    /// `fib(n)` (call after [`step`](Self::step) returned true).
    pub fn into_value(self) -> BigNat {
        self.a
    }
}

/// `fib(n)` computed in steps of [`CHUNK_WORK`], yielding to the loop between steps.
pub async fn fib_chunked(n: u64) -> BigNat {
    let mut state = FibState::new(n);
    while !state.step(CHUNK_WORK) {
        loop_api::yield_now().await;
    }
    state.into_value()
}

/// `fib(n)` the naive recursive way (exponential time: it blocks whatever runs it).
pub fn fib_naive(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib_naive(n - 1) + fib_naive(n - 2)
    }
}

/// `"fib(n) = value"`, shortened to its first and last digits when it is long.
pub fn describe(n: u64, value: &impl fmt::Display) -> String {
    const KEEP: usize = 20;
    let digits = value.to_string();
    if digits.len() <= 3 * KEEP {
        return format!("fib({n}) = {digits}");
    }
    let (head, tail) = (&digits[..KEEP], &digits[digits.len() - KEEP..]);
    format!("fib({n}) = {head}...{tail} ({} digits)", digits.len())
}

/// A line is a number `n` to answer, or it is wrong (the message says how).
pub fn parse_request(line: &str, mode: Mode) -> Result<u64, String> {
    let text = line.trim();
    let n: u64 = text
        .parse()
        .map_err(|_| format!("not a number: {text:?} (enter a whole number per line)"))?;
    let max = match mode {
        Mode::Chunked => MAX_N,
        Mode::Blocking => MAX_NAIVE_N,
    };
    if n > max {
        return Err(format!("{n} is too large: at most {max} here"));
    }
    Ok(n)
}

/// How a session computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Iteratively on a task per number, giving the loop back every [`CHUNK_WORK`] additions.
    Chunked,
    /// Naively, in one poll of the number's task: the loop stalls meanwhile.
    Blocking,
}

/// Answers the numbers in a stream of lines; see the [module documentation](self).
pub struct FibSession {
    lp: EventLoop,
    mode: Mode,
    output: Box<dyn Fn(&str)>,
    partial_line: RefCell<Vec<u8>>,
    in_flight: Cell<usize>,
    ended: Cell<bool>,
    on_done: Cell<Option<Box<dyn FnOnce()>>>,
}

impl fmt::Debug for FibSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FibSession")
            .field("mode", &self.mode)
            .field("in_flight", &self.in_flight.get())
            .field("ended", &self.ended.get())
            .finish()
    }
}

impl FibSession {
    /// A session on `lp` that hands each answer (or complaint) to `output`, and calls
    /// `on_done` once the input ended and every answer was given.
    pub fn new(
        lp: &EventLoop,
        mode: Mode,
        output: impl Fn(&str) + 'static,
        on_done: impl FnOnce() + 'static,
    ) -> Rc<Self> {
        Rc::new(FibSession {
            lp: lp.clone(),
            mode,
            output: Box::new(output),
            partial_line: RefCell::new(Vec::new()),
            in_flight: Cell::new(0),
            ended: Cell::new(false),
            on_done: Cell::new(Some(Box::new(on_done))),
        })
    }

    /// Takes more input; every complete line in it is answered.
    pub fn feed(self: &Rc<Self>, bytes: &[u8]) {
        let lines: Vec<Vec<u8>> = {
            let mut partial = self.partial_line.borrow_mut();
            partial.extend_from_slice(bytes);
            let Some(last_newline) = partial.iter().rposition(|&b| b == b'\n') else {
                return;
            };
            let rest = partial.split_off(last_newline + 1);
            let complete = std::mem::replace(&mut *partial, rest);
            complete
                .split(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect()
        };
        for line in lines {
            self.line(&String::from_utf8_lossy(&line));
        }
    }

    /// The input ended: the last line (if it had no newline) is answered, and `on_done` runs
    /// when all answers are out. Calling it again does nothing.
    pub fn end(self: &Rc<Self>) {
        if self.ended.replace(true) {
            return;
        }
        let last = std::mem::take(&mut *self.partial_line.borrow_mut());
        self.line(&String::from_utf8_lossy(&last));
        self.maybe_done();
    }

    fn line(self: &Rc<Self>, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let n = match parse_request(line, self.mode) {
            Ok(n) => n,
            Err(complaint) => return (self.output)(&complaint),
        };
        let me = self.clone();
        let mode = self.mode;
        let answer = async move {
            let value = match mode {
                Mode::Blocking => describe(n, &fib_naive(n)),
                Mode::Chunked => describe(n, &fib_chunked(n).await),
            };
            (me.output)(&value);
            me.in_flight.set(me.in_flight.get() - 1);
            me.maybe_done();
        };
        self.in_flight.set(self.in_flight.get() + 1);
        // Named after its number: the loop monitor's `ps` shows which one is running.
        if let Err(e) = self.lp.create_task_named(format!("fib({n})"), answer) {
            self.in_flight.set(self.in_flight.get() - 1);
            (self.output)(&format!("fib({n}): {e}"));
        }
    }

    fn maybe_done(&self) {
        if self.ended.get()
            && self.in_flight.get() == 0
            && let Some(done) = self.on_done.take()
        {
            done();
        }
    }
}

/// Feeds `session` from `reader` each time its fd is readable (`add_reader`); at end of input
/// (or a read error, which is reported) the reader is removed and the session ended.
///
/// # Errors
/// What `add_reader` reports: `Closed`, or the OS refusing to watch the fd (epoll cannot watch
/// regular files: use [`read_in_executor`] for those).
pub fn watch_reader<R: Read + AsRawFd + 'static>(
    session: &Rc<FibSession>,
    mut reader: R,
) -> Result<(), LoopError> {
    let fd = reader.as_raw_fd();
    let s = session.clone();
    session.lp.add_reader(fd, move || {
        let mut buf = [0u8; 4096];
        // One read per readiness report: it does not block, since the fd is readable.
        match reader.read(&mut buf) {
            Ok(0) => {
                s.lp.remove_reader(fd);
                s.end();
            }
            Ok(n) => s.feed(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                (s.output)(&format!("reading input failed: {e}"));
                s.lp.remove_reader(fd);
                s.end();
            }
        }
    })
}

/// Feeds `session` from `reader`, reading on the loop's thread pool (any fd, including regular
/// files), until end of input.
pub async fn read_in_executor<R: Read + Send + 'static>(session: Rc<FibSession>, reader: R) {
    let mut reader = Some(reader);
    while let Some(mut r) = reader.take() {
        let job = session.lp.run_in_executor(move || {
            let mut buf = vec![0u8; 4096];
            let got = r.read(&mut buf).map(|n| buf[..n].to_vec());
            (r, got)
        });
        match job.await {
            Ok((r, Ok(bytes))) if !bytes.is_empty() => {
                session.feed(&bytes);
                reader = Some(r);
            }
            Ok((_, Ok(_))) => {}
            Ok((_, Err(e))) => (session.output)(&format!("reading input failed: {e}")),
            Err(TaskError::Cancelled) => {}
            Err(e) => (session.output)(&format!("reading input failed: {e}")),
        }
    }
    session.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_numbers_add_and_print() {
        let mut x = BigNat::from_u64(999_999_999);
        x.add_assign(&BigNat::from_u64(1));
        assert_eq!(x.to_string(), "1000000000");
        let mut y = BigNat::from_u64(u64::MAX);
        y.add_assign(&BigNat::from_u64(u64::MAX));
        assert_eq!(y.to_string(), (u128::from(u64::MAX) * 2).to_string());
        assert_eq!(BigNat::from_u64(0).to_string(), "0");
    }

    #[test]
    fn iterative_matches_naive() {
        for n in 0..=30 {
            let mut st = FibState::new(n);
            while !st.step(3) {}
            assert_eq!(
                st.into_value().to_string(),
                fib_naive(n).to_string(),
                "fib({n})"
            );
        }
    }

    #[test]
    fn large_values_are_right() {
        let mut st = FibState::new(100);
        assert!(st.step(usize::MAX));
        assert_eq!(st.into_value().to_string(), "354224848179261915075");
        let mut st = FibState::new(1000);
        while !st.step(10) {}
        let v = st.into_value().to_string();
        assert_eq!(v.len(), 209);
        assert!(v.starts_with("43466557686937456435") && v.ends_with("76137795166849228875"));
        assert!(describe(1000, &v).ends_with("(209 digits)"));
    }

    #[test]
    fn requests_are_checked() {
        assert_eq!(parse_request(" 42\r", Mode::Chunked), Ok(42));
        assert!(
            parse_request("forty", Mode::Chunked)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_request("-1", Mode::Chunked).is_err());
        assert!(
            parse_request("51", Mode::Blocking)
                .unwrap_err()
                .contains("at most 50")
        );
        assert!(parse_request("999999999", Mode::Chunked).is_err());
    }
}
