//! A rate-limited client: it sends requests to a server no faster than one per `interval`,
//! the kind of code whose tests would take hours on real time. Its test
//! (`examples/tests/rate_limit.rs`) runs an hour of it on a virtual-time test loop in
//! milliseconds.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use loop_net::TcpStream;

/// Sends `requests` numbered requests to the echo server at `addr`, at most one per
/// `interval` (the first at once), and gives back the answers in order.
///
/// # Errors
/// The connection's error.
pub async fn fetch_all(
    addr: SocketAddr,
    requests: u32,
    interval: Duration,
) -> io::Result<Vec<u32>> {
    let lp = loop_api::get_running_loop().map_err(io::Error::other)?;
    let conn = TcpStream::connect(addr).await?;
    let mut answers = Vec::with_capacity(requests as usize);
    let mut next_slot = lp.time();
    for i in 0..requests {
        // Wait for this request's slot: the rate limit.
        let now = lp.time();
        if next_slot > now {
            loop_api::sleep(next_slot - now).await;
        }
        next_slot += interval;
        conn.send_all(i.to_le_bytes().to_vec()).await.0?;
        let mut got = Vec::with_capacity(4);
        while got.len() < 4 {
            let (n, buf) = conn.recv(Vec::with_capacity(4 - got.len())).await;
            if n? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            got.extend_from_slice(&buf);
        }
        answers.push(u32::from_le_bytes([got[0], got[1], got[2], got[3]]));
    }
    Ok(answers)
}
