//! A UDP echo server: `cargo run --example udp_echo -- 127.0.0.1:9999`, then
//! `nc -u 127.0.0.1 9999` and type lines. The backend comes from `LOOP_BACKEND`.

use std::net::SocketAddr;

use loop_net::{BindOptions, UdpSocket};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
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
    lp.run_until_complete(examples::udp::serve(sock))??;
    Ok(())
}
