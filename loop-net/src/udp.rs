//! UDP: [`UdpSocket`] (asyncio's `create_datagram_endpoint` counterpart).

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use loop_api::{BufResult, EventLoop, SockAddr};
use socket2::Type;

use crate::socket::{self, BindOptions, Shared, inet, running_loop};

/// A UDP socket: datagrams to and from any address, or to one peer after `connect`.
#[derive(Debug)]
pub struct UdpSocket {
    inner: Rc<Shared<std::net::UdpSocket>>,
}

impl UdpSocket {
    /// Binds to `addr` on the running loop (no `SO_REUSEADDR`, as asyncio defaults for UDP).
    ///
    /// # Errors
    /// No running loop; the OS refusing the bind.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let opts = BindOptions {
            reuse_address: false,
            ..BindOptions::default()
        };
        Self::bind_on(&running_loop()?, addr, opts)
    }

    /// Binds to `addr` with `opts` on loop `lp`.
    ///
    /// # Errors
    /// The OS refusing the socket, an option or the bind.
    pub fn bind_on(lp: &EventLoop, addr: SocketAddr, opts: BindOptions) -> io::Result<UdpSocket> {
        let sock = socket::bound(&SockAddr::from(addr), Type::DGRAM, opts)?;
        Ok(UdpSocket {
            inner: Shared::new(std::net::UdpSocket::from(sock), lp),
        })
    }

    /// Sends one datagram to `target`; gives the count sent.
    pub async fn send_to(&self, buf: Vec<u8>, target: SocketAddr) -> BufResult<usize> {
        let send = match self.inner.event_loop() {
            Ok(lp) => lp.sock_sendto(&self.inner.io, buf, SockAddr::from(target)),
            Err(e) => return (Err(e), buf),
        };
        send.await
    }

    /// Receives one datagram (up to `buf.capacity()` bytes; the rest of a longer one is
    /// dropped, as recvfrom does) and the sender's address.
    pub async fn recv_from(&self, buf: Vec<u8>) -> BufResult<(usize, SocketAddr)> {
        let recv = match self.inner.event_loop() {
            Ok(lp) => lp.sock_recvfrom(&self.inner.io, buf),
            Err(e) => return (Err(e), buf),
        };
        let (res, buf) = recv.await;
        (res.and_then(|(n, from)| Ok((n, inet(&from)?))), buf)
    }

    /// Sets the default peer: `send`/`recv` then talk to it only.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.inner.io.connect(peer)
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: Vec<u8>) -> BufResult<usize> {
        self.inner.write(buf).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: Vec<u8>) -> BufResult<usize> {
        self.inner.read(buf).await
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    /// The OS call failing.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.local_addr()
    }
}
