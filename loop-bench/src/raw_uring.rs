//! The floor of a completion echo server: io_uring driven by hand with the `io-uring` crate, no
//! runtime, no tasks, no futures. It behaves as [`crate::raw_echo`] does (read up to 64 KiB,
//! echo everything back, `TCP_NODELAY` on each accepted connection, partial sends, closes) and
//! shows what the least user space on io_uring costs per request; the echo harness knows it as
//! `raw-uring` and `raw-uring-multishot`.
//!
//! - `raw-uring`: one one-shot `Recv` per receive into the connection's own 64 KiB buffer, then
//!   `Send` until all of it is gone, then the next `Recv`. One operation per connection is in
//!   flight at any time.
//! - `raw-uring-multishot`: one multishot receive (`RecvMulti`) per connection, picking 64 KiB
//!   buffers from a ring of provided buffers (`register_buf_ring`); each buffer is sent back as
//!   it is and returned to the ring once the kernel has taken all of it. The receive is armed
//!   again when a completion comes without `IORING_CQE_F_MORE` (and, after `ENOBUFS`, once a
//!   buffer is back in the ring).
//!
//! Both accept with a multishot `Accept` on the ring, build the ring with `SINGLE_ISSUER` and
//! `DEFER_TASKRUN` where the kernel has them, and make one `io_uring_enter` per loop turn (submit
//! everything queued and wait for at least one completion). Suffixes try more features on top:
//! `+fixed` registers each connection in the ring's file table (operations then skip the file
//! lookup), `+pollfirst` asks one-shot receives to wait for data before trying (the echo client
//! never has its next message ready when the receive is queued), `+bufs=N` sets the number of
//! provided buffers (a power of two, 64 by default).
//!
//! Memory the kernel may write is never freed while an operation can still use it: a connection
//! leaves the table only when none of its operations is in flight, and if the loop fails the
//! whole server (ring, connections, buffers) is leaked rather than dropped.
//!
//! What it showed on the 2-core development machine (16 connections x 1 KiB, server and client
//! pinned to one CPU each): every variant costs what `raw-mio` and tokio cost per request, within
//! the noise (0.97-1.03x tokio). perf puts 84-90% of the server's CPU in the kernel's TCP and
//! loopback path whatever the server; io_uring's own work (8-9%) takes the place of the system
//! calls and epoll (about 6%) and of some user space, it does not remove the TCP work.

use std::alloc::Layout;
use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{IoUring, cqueue, opcode, squeue, types};

const ENTRIES: u32 = 256;
/// `user_data` of the multishot accept.
const ACCEPT: u64 = u64::MAX;
/// `user_data` of operations whose completion means nothing (cancellations).
const IGNORE: u64 = u64::MAX - 1;
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
/// The provided-buffer group every multishot receive picks from.
const BGID: u16 = 0;
/// `IORING_RECVSEND_POLL_FIRST` (the crate does not export it).
const POLL_FIRST: u16 = 1;
/// Entries in the fixed file table with `+fixed`.
const FIXED_FILES: u32 = 1024;

/// What a `raw-uring…` server name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Multishot receives into provided buffers (else one-shot receives into own buffers).
    pub multishot: bool,
    /// Connections in the ring's fixed file table.
    pub fixed_files: bool,
    /// `IORING_RECVSEND_POLL_FIRST` on one-shot receives.
    pub poll_first: bool,
    /// Provided buffers (multishot only; a power of two).
    pub bufs: u16,
}

impl Options {
    /// Parses `raw-uring[-multishot][+fixed][+pollfirst][+bufs=N]`; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('+');
        let mut opts = Options {
            multishot: match parts.next()? {
                "raw-uring" => false,
                "raw-uring-multishot" => true,
                _ => return None,
            },
            fixed_files: false,
            poll_first: false,
            bufs: 64,
        };
        for p in parts {
            match p {
                "fixed" => opts.fixed_files = true,
                "pollfirst" => opts.poll_first = true,
                _ => {
                    let n: u16 = p.strip_prefix("bufs=")?.parse().ok()?;
                    if !n.is_power_of_two() {
                        return None;
                    }
                    opts.bufs = n;
                }
            }
        }
        Some(opts)
    }
}

/// Serves echo on `l` until killed, as `name` (see [`Options::parse`]) says.
///
/// # Errors
/// An unknown name, the ring or the buffer ring failing to set up, `io_uring_enter` failing.
pub fn serve(l: std::net::TcpListener, local: SocketAddr, name: &str) -> io::Result<()> {
    let opts = Options::parse(name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no server {name}")))?;
    let (ring, defer) = match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(ENTRIES)
    {
        Ok(r) => (r, true),
        Err(_) => (IoUring::new(ENTRIES)?, false),
    };
    if opts.fixed_files {
        ring.submitter().register_files_sparse(FIXED_FILES)?;
    }
    let bufs = if opts.multishot {
        Some(BufRing::new(&ring, opts.bufs, super::servers::BUFFER_SIZE)?)
    } else {
        None
    };
    let mut server = ManuallyDrop::new(Server {
        ring,
        opts,
        listener: l,
        conns: Vec::new(),
        free: Vec::new(),
        bufs,
        starved: Vec::new(),
        recycled: false,
        cqes: Vec::new(),
    });
    println!("listening on {local} (raw io_uring {opts:?}, defer_taskrun: {defer}, no runtime)");
    // On an error the server is leaked, not dropped: operations may still be in flight on the
    // ring and their buffers must stay valid.
    server.run()
}

/// A connection. With one-shot receives exactly one operation is in flight at a time; with
/// multishot, the receive and at most one send.
struct Conn {
    /// The socket (`-1` with fixed files: the table entry at the connection's index holds it).
    fd: RawFd,
    /// One-shot: the receive buffer, `len` bytes received, `sent` of them sent back.
    buf: Box<[u8]>,
    len: usize,
    /// Bytes of the current message (one-shot: `buf[..len]`; multishot: the buffer at the head
    /// of `pending`) already sent back.
    sent: usize,
    /// Multishot: buffers received and not yet entirely sent, oldest first (id, length).
    pending: VecDeque<(u16, u32)>,
    recv_armed: bool,
    send_busy: bool,
    /// The connection is done: free it once nothing is in flight.
    closing: bool,
}

struct Server {
    ring: IoUring,
    opts: Options,
    listener: std::net::TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    bufs: Option<BufRing>,
    /// Connections whose multishot receive ended with `ENOBUFS`, to arm again once a buffer is
    /// back in the ring.
    starved: Vec<usize>,
    recycled: bool,
    /// Completions of this turn: (user_data, result, flags).
    cqes: Vec<(u64, i32, u32)>,
}

fn user_data(i: usize, op: u64) -> u64 {
    ((i as u64) << 2) | op
}

/// Builds `$body` with `$t` the operation's target: the fixed file at index `$i`, or `$fd`.
macro_rules! on_target {
    ($fixed:expr, $fd:expr, $i:expr, |$t:ident| $body:expr) => {
        if $fixed {
            let $t = types::Fixed($i as u32);
            $body
        } else {
            let $t = types::Fd($fd);
            $body
        }
    };
}

impl Server {
    fn run(&mut self) -> io::Result<()> {
        self.arm_accept()?;
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // The completion queue overflowed: take what is there and submit again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            self.reap();
            // Completing may reap more (when the submission queue is full): index, not iterate.
            let mut k = 0;
            while k < self.cqes.len() {
                let (ud, res, flags) = self.cqes[k];
                k += 1;
                self.complete(ud, res, flags)?;
            }
            self.cqes.clear();
            if self.recycled && !self.starved.is_empty() {
                self.recycled = false;
                for i in std::mem::take(&mut self.starved) {
                    self.arm_recv(i)?;
                }
            }
            if let Some(b) = &self.bufs {
                b.publish();
            }
        }
    }

    fn reap(&mut self) {
        let cq = self.ring.completion();
        self.cqes
            .extend(cq.map(|c| (c.user_data(), c.result(), c.flags())));
    }

    /// Queues `entry`, submitting what is queued first if the queue is full.
    ///
    /// # Safety
    /// The memory `entry` points to must stay valid until its completion is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees the entry's memory outlives the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.reap(),
                Err(e) => return Err(e),
            }
        }
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let fd = self.listener.as_raw_fd();
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(ACCEPT);
        // SAFETY: a multishot accept points to no memory; the listener outlives the ring's use
        // of it (the server owns both and is never dropped while running).
        unsafe { self.push(&e) }
    }

    fn on_accept(&mut self, res: i32, flags: u32) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.arm_accept()?;
        }
        if res < 0 {
            return Ok(());
        }
        let fd = res;
        let one: libc::c_int = 1;
        // SAFETY: `fd` is the socket just accepted; the option value is a live c_int of the
        // size passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let mut conn_fd = fd;
        if self.opts.fixed_files {
            let ok = i < FIXED_FILES as usize
                && self
                    .ring
                    .submitter()
                    .register_files_update(i as u32, &[fd])
                    .is_ok();
            // SAFETY: `fd` is ours and nothing else uses it: the table holds its own reference.
            unsafe { libc::close(fd) };
            if !ok {
                self.free.push(i);
                return Ok(());
            }
            conn_fd = -1;
        }
        let buf = if self.opts.multishot {
            Box::default()
        } else {
            vec![0u8; super::servers::BUFFER_SIZE].into_boxed_slice()
        };
        self.conns[i] = Some(Conn {
            fd: conn_fd,
            buf,
            len: 0,
            sent: 0,
            pending: VecDeque::new(),
            recv_armed: false,
            send_busy: false,
            closing: false,
        });
        self.arm_recv(i)
    }

    fn arm_recv(&mut self, i: usize) -> io::Result<()> {
        let (fixed, multishot) = (self.opts.fixed_files, self.opts.multishot);
        let ioprio = if self.opts.poll_first { POLL_FIRST } else { 0 };
        let Some(c) = self.conns[i].as_mut() else {
            return Ok(());
        };
        if c.closing || c.recv_armed {
            return Ok(());
        }
        let e = if multishot {
            on_target!(fixed, c.fd, i, |t| opcode::RecvMulti::new(t, BGID).build())
        } else {
            let (ptr, len) = (c.buf.as_mut_ptr(), c.buf.len() as u32);
            on_target!(fixed, c.fd, i, |t| opcode::Recv::new(t, ptr, len)
                .ioprio(ioprio)
                .build())
        };
        c.recv_armed = true;
        // One-shot: `c.buf` is boxed (it does not move) and the connection stays in the table
        // until this completion is reaped (`recv_armed`). Multishot: provided buffers.
        // SAFETY: the receive writes only into memory that outlives it (never-freed provided
        // buffers, or `c.buf` kept until the completion as said above).
        unsafe { self.push(&e.user_data(user_data(i, OP_RECV))) }
    }

    /// Sends the rest of the current message (`send_busy` must be false).
    fn send(&mut self, i: usize) -> io::Result<()> {
        let fixed = self.opts.fixed_files;
        let Some(c) = self.conns[i].as_mut() else {
            return Ok(());
        };
        let (ptr, len) = match (&self.bufs, c.pending.front()) {
            (Some(b), Some(&(bid, n))) => (b.addr(bid).wrapping_add(c.sent), n as usize - c.sent),
            (Some(_), None) => return Ok(()),
            (None, _) => (c.buf[c.sent..].as_ptr(), c.len - c.sent),
        };
        let e = on_target!(fixed, c.fd, i, |t| opcode::Send::new(t, ptr, len as u32)
            .build());
        c.send_busy = true;
        // SAFETY: the bytes are in the connection's own buffer (kept with the connection until
        // this completion is reaped: `send_busy`) or in a provided buffer that goes back to the
        // ring only after this completion, and provided buffers are never freed.
        unsafe { self.push(&e.user_data(user_data(i, OP_SEND))) }
    }

    fn complete(&mut self, ud: u64, res: i32, flags: u32) -> io::Result<()> {
        match ud {
            ACCEPT => return self.on_accept(res, flags),
            IGNORE => return Ok(()),
            _ => {}
        }
        let (i, op) = ((ud >> 2) as usize, ud & 3);
        if self.conns.get(i).is_none_or(Option::is_none) {
            return Ok(());
        }
        match (op, self.opts.multishot) {
            (OP_RECV, false) => self.on_recv_oneshot(i, res)?,
            (OP_RECV, true) => self.on_recv_multishot(i, res, flags)?,
            _ => self.on_send(i, res)?,
        }
        self.maybe_free(i);
        Ok(())
    }

    fn on_recv_oneshot(&mut self, i: usize, res: i32) -> io::Result<()> {
        let Some(c) = self.conns[i].as_mut() else {
            return Ok(());
        };
        c.recv_armed = false;
        if res == -libc::EINTR || res == -libc::EAGAIN {
            return self.arm_recv(i);
        }
        if res <= 0 {
            c.closing = true;
            return Ok(());
        }
        c.len = res as usize;
        c.sent = 0;
        self.send(i)
    }

    fn on_recv_multishot(&mut self, i: usize, res: i32, flags: u32) -> io::Result<()> {
        let Some(c) = self.conns[i].as_mut() else {
            return Ok(());
        };
        let more = cqueue::more(flags);
        if !more {
            c.recv_armed = false;
        }
        if res > 0 {
            let bid = cqueue::buffer_select(flags).ok_or_else(|| {
                io::Error::other("a multishot receive completed without a buffer")
            })?;
            if c.closing {
                self.recycle(bid);
                return Ok(());
            }
            c.pending.push_back((bid, res as u32));
            let idle = !c.send_busy;
            if !more {
                self.arm_recv(i)?;
            }
            return if idle { self.send(i) } else { Ok(()) };
        }
        match -res {
            libc::ENOBUFS if !c.closing => self.starved.push(i),
            libc::EINTR | libc::EAGAIN if !more => self.arm_recv(i)?,
            _ => c.closing = true,
        }
        Ok(())
    }

    fn on_send(&mut self, i: usize, res: i32) -> io::Result<()> {
        let Some(c) = self.conns[i].as_mut() else {
            return Ok(());
        };
        c.send_busy = false;
        if res < 0 && res != -libc::EINTR && res != -libc::EAGAIN {
            c.closing = true;
            if c.recv_armed {
                let e = opcode::AsyncCancel::new(user_data(i, OP_RECV))
                    .build()
                    .user_data(IGNORE);
                // SAFETY: a cancellation points to no memory.
                unsafe { self.push(&e)? };
            }
            return Ok(());
        }
        c.sent += res.max(0) as usize;
        if self.bufs.is_none() {
            return if c.sent < c.len {
                self.send(i)
            } else {
                self.arm_recv(i)
            };
        }
        if let Some(&(bid, n)) = c.pending.front()
            && c.sent >= n as usize
        {
            c.pending.pop_front();
            c.sent = 0;
            self.recycle(bid);
        }
        if self.conns[i].as_ref().is_some_and(|c| !c.closing) {
            self.send(i)?;
        }
        Ok(())
    }

    fn recycle(&mut self, bid: u16) {
        if let Some(b) = &mut self.bufs {
            b.put(bid);
            self.recycled = true;
        }
    }

    /// Frees connection `i` if it is done and nothing of it is in flight.
    fn maybe_free(&mut self, i: usize) {
        let done = self.conns[i]
            .as_ref()
            .is_some_and(|c| c.closing && !c.recv_armed && !c.send_busy);
        if !done {
            return;
        }
        let Some(c) = self.conns[i].take() else {
            return;
        };
        for (bid, _) in c.pending {
            self.recycle(bid);
        }
        if c.fd >= 0 {
            // SAFETY: the connection owns `fd` and no operation on it is in flight.
            unsafe { libc::close(c.fd) };
        } else {
            let _ = self.ring.submitter().register_files_update(i as u32, &[-1]);
        }
        self.starved.retain(|&s| s != i);
        self.free.push(i);
    }
}

/// A ring of provided buffers: `n` buffers of `size` bytes, registered as group [`BGID`]. Its
/// memory is never freed (the server runs until killed), so the kernel may read the ring and
/// write the buffers as long as it likes.
struct BufRing {
    entries: *mut types::BufRingEntry,
    mask: u16,
    /// Our tail: entries before it are written; the kernel sees it after [`BufRing::publish`].
    tail: u16,
    mem: *mut u8,
    size: usize,
}

impl BufRing {
    fn new(ring: &IoUring, n: u16, size: usize) -> io::Result<Self> {
        let bytes = n as usize * size_of::<types::BufRingEntry>();
        let layout = Layout::from_size_align(bytes, 4096).map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size (n >= 1).
        let entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mem = Box::leak(vec![0u8; n as usize * size].into_boxed_slice()).as_mut_ptr();
        // SAFETY: `entries` is page-aligned, holds `n` zeroed entries (tail 0) and is never
        // freed, so the kernel may read it for as long as the ring lives.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, n, BGID, 0)?
        };
        let mut b = BufRing {
            entries,
            mask: n - 1,
            tail: 0,
            mem,
            size,
        };
        for bid in 0..n {
            b.put(bid);
        }
        b.publish();
        Ok(b)
    }

    fn addr(&self, bid: u16) -> *const u8 {
        self.mem.wrapping_add(bid as usize * self.size)
    }

    /// Writes buffer `bid` at our tail (the kernel sees it at the next `publish`).
    fn put(&mut self, bid: u16) {
        let idx = (self.tail & self.mask) as usize;
        // SAFETY: `idx` < n and the allocation holds n entries. The entry is past the tail the
        // kernel has seen, so the kernel does not read it; the tail field it shares with entry 0
        // is not written here and is read by the kernel only.
        let e = unsafe { &mut *self.entries.add(idx) };
        e.set_addr(self.addr(bid) as u64);
        e.set_len(self.size as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Lets the kernel see every buffer put so far.
    fn publish(&self) {
        // The kernel reads the tail concurrently: store it atomically, with release ordering so
        // the entries written before it are visible first.
        // SAFETY: `entries` is the ring's first entry, initialised and never freed; its tail
        // field is a 2-byte-aligned u16, valid as an AtomicU16.
        let tail = unsafe { &*types::BufRingEntry::tail(self.entries).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Options;

    #[test]
    fn names() {
        let o = Options::parse("raw-uring").unwrap();
        assert!(!o.multishot && !o.fixed_files && !o.poll_first);
        let o = Options::parse("raw-uring-multishot+fixed+bufs=16").unwrap();
        assert!(o.multishot && o.fixed_files && o.bufs == 16);
        assert!(Options::parse("raw-uring+pollfirst").unwrap().poll_first);
        assert!(Options::parse("raw-uring-multishot+bufs=3").is_none());
        assert!(Options::parse("raw-mio").is_none());
        assert!(Options::parse("raw-uring+nope").is_none());
    }
}
