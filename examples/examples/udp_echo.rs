//! A UDP echo server: `cargo run --example udp_echo -- 127.0.0.1:9999`, then
//! `nc -u 127.0.0.1 9999` and type lines. The backend comes from `LOOP_BACKEND`. Ctrl-C or
//! `kill` (SIGINT/SIGTERM) stops it and closes the loop.

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;
use loop_net::{BindOptions, UdpSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    // Before the server says it is ready: Ctrl-C or kill from then on closes it cleanly.
    let stop = StopOnSignals::install(&lp)?;
    let opts = BindOptions {
        reuse_address: false,
        ..BindOptions::default()
    };
    let sock = UdpSocket::bind_on(&lp, addr, opts)?;
    println!(
        "udp echo on {} (backend: {})",
        sock.local_addr()?,
        lp.backend_name()
    );
    if let Some(served) = stop.serve("udp_echo", examples::udp::serve(sock))? {
        served?;
    }
    Ok(())
}
