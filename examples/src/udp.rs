//! A UDP echo server: every datagram goes back to its sender.

use std::io;

use loop_net::UdpSocket;

/// The largest datagram echoed whole.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// Echoes datagrams on `sock` until an error that is not about one datagram.
///
/// # Errors
/// A receive error (the socket is broken).
pub async fn serve(sock: UdpSocket) -> io::Result<()> {
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    loop {
        let (res, b) = sock.recv_from(buf).await;
        let (_, from) = res?;
        let (sent, b) = sock.send_to(b, from).await;
        buf = b;
        // A send can fail for one peer (unreachable); the server goes on.
        if let Err(e) = sent {
            eprintln!("udp echo: sending to {from} failed: {e}");
        }
    }
}
