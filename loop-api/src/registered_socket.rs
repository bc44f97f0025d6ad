//! [`RegisteredSocket`]: a socket handed to the loop for its lifetime, so the loop can keep it
//! registered instead of re-arming it for every operation that has to wait.
//!
//! One name at every layer: the user calls [`EventLoop::register_socket`] and holds a
//! [`RegisteredSocket`]; the loop hears of it through `AbstractEventLoop::register_socket` /
//! `release_socket`, and passes it on to its driver (`Driver::register_socket` /
//! `release_socket` in loop-core), whose selector arms it with `Selector::register_socket`.

use std::fmt;
use std::ops::Deref;
use std::os::fd::{AsRawFd, RawFd};

use crate::{EventLoop, LoopError, WeakEventLoop};

/// A socket the loop knows it owns until this value is dropped (made by
/// [`EventLoop::register_socket`]). It derefs to the socket, so the `sock_*` methods take it
/// as they take the plain socket: `lp.sock_recv(&conn, buf)`.
///
/// Why: a plain `&TcpStream` is only borrowed, so the loop cannot know whether its fd number
/// still names the same socket the next time; a readiness backend then re-arms the fd
/// (`epoll_ctl`) whenever an operation has to wait, as asyncio's `sock_recv` does with
/// `add_reader`. A registered socket stays armed for its whole life, and after a short read the
/// loop waits for new data instead of trying a receive that would find none: about two system
/// calls per request-response on epoll, as tokio makes.
///
/// Dropping it tells the loop, then closes the socket; [`into_inner`](Self::into_inner) tells
/// the loop and gives the socket back.
pub struct RegisteredSocket<S: AsRawFd> {
    sock: Option<S>,
    /// Weak: a socket kept in one of the loop's tasks must not keep the loop alive.
    lp: WeakEventLoop,
}

impl EventLoop {
    /// Hands `sock` to the loop for as long as the returned [`RegisteredSocket`] lives (see there).
    ///
    /// # Errors
    /// `Closed`, or the OS refusing to watch the socket (the socket is dropped then).
    pub fn register_socket<S: AsRawFd>(&self, sock: S) -> Result<RegisteredSocket<S>, LoopError> {
        self.as_abstract().register_socket(sock.as_raw_fd())?;
        Ok(RegisteredSocket {
            sock: Some(sock),
            lp: self.downgrade(),
        })
    }
}

impl<S: AsRawFd> RegisteredSocket<S> {
    /// Tells the loop the socket leaves it and gives the socket back.
    pub fn into_inner(mut self) -> S {
        let sock = self.sock.take();
        self.release(sock.as_ref());
        match sock {
            Some(s) => s,
            // `sock` is only taken here and in Drop, which has not run.
            None => unreachable!("RegisteredSocket holds its socket until into_inner or drop"),
        }
    }

    fn release(&self, sock: Option<&S>) {
        if let Some(s) = sock
            && let Some(lp) = self.lp.upgrade()
        {
            lp.as_abstract().release_socket(s.as_raw_fd());
        }
    }

    fn get(&self) -> &S {
        match &self.sock {
            Some(s) => s,
            None => unreachable!("RegisteredSocket holds its socket until into_inner or drop"),
        }
    }
}

impl<S: AsRawFd> Deref for RegisteredSocket<S> {
    type Target = S;

    fn deref(&self) -> &S {
        self.get()
    }
}

impl<S: AsRawFd> AsRawFd for RegisteredSocket<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.get().as_raw_fd()
    }
}

impl<S: AsRawFd> Drop for RegisteredSocket<S> {
    fn drop(&mut self) {
        // Before the socket closes (it drops after this, with the field).
        self.release(self.sock.as_ref());
    }
}

impl<S: AsRawFd + fmt::Debug> fmt::Debug for RegisteredSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredSocket")
            .field("sock", &self.sock)
            .finish()
    }
}
