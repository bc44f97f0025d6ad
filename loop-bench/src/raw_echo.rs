//! The floor of a readiness echo server: mio (epoll) driven by hand, no runtime, no tasks, no
//! futures. Each connection reads into a 64 KiB buffer until a short read (the kernel's queue
//! is then empty: wait for the next edge, as tokio and our loop do) and writes everything
//! back, keeping what the socket did not take for its next writable edge. Its CPU time per
//! request is what the kernel costs plus the least user space can add; the echo table shows
//! it as `raw-mio`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    sock: TcpStream,
    /// Bytes received and not yet sent back (from `sent`).
    out: Vec<u8>,
    sent: usize,
}

impl Conn {
    /// Sends what is pending; false once the connection is done (error or peer gone).
    fn flush(&mut self) -> bool {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.sent = 0;
        true
    }

    /// Reads and echoes until the socket is drained or its send buffer is full; false once
    /// the connection is done.
    fn on_ready(&mut self, buf: &mut [u8]) -> bool {
        if !self.flush() {
            return false;
        }
        while self.out.is_empty() {
            match self.sock.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.extend_from_slice(&buf[..n]);
                    if !self.flush() {
                        return false;
                    }
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// Serves echo on `l` until killed.
///
/// # Errors
/// The poll failing.
pub fn serve(l: std::net::TcpListener, local: SocketAddr) -> io::Result<()> {
    l.set_nonblocking(true)?;
    let mut l = TcpListener::from_std(l);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut l, LISTENER, Interest::READABLE)?;
    println!("listening on {local} (raw mio, no runtime)");
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; super::servers::BUFFER_SIZE];
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        }
        for ev in &events {
            if ev.token() == LISTENER {
                loop {
                    match l.accept() {
                        Ok((mut sock, _)) => {
                            let _ = sock.set_nodelay(true);
                            let i = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            let both = Interest::READABLE | Interest::WRITABLE;
                            poll.registry().register(&mut sock, Token(i), both)?;
                            conns[i] = Some(Conn {
                                sock,
                                out: Vec::new(),
                                sent: 0,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let alive = match conns.get_mut(i).and_then(Option::as_mut) {
                Some(c) => c.on_ready(&mut buf),
                None => continue,
            };
            if !alive && let Some(mut c) = conns[i].take() {
                let _ = poll.registry().deregister(&mut c.sock);
                free.push(i);
            }
        }
    }
}
