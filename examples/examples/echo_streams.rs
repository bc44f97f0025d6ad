//! The echo server again, on `loop-net` streams instead of the low-level `sock_*` calls:
//! `cargo run --example echo_streams -- 127.0.0.1:8888`. The backend comes from `LOOP_BACKEND`.
//! Ctrl-C or `kill` (SIGINT/SIGTERM) stops it and closes the loop.

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8888".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    // Before the server says it is ready: Ctrl-C or kill from then on closes it cleanly.
    let stop = StopOnSignals::install(&lp)?;
    let listener = loop_net::TcpListener::bind_on(&lp, addr, Default::default())?;
    println!(
        "echo (streams) on {} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::echo_streams::serve(lp.clone(), listener);
    if let Some(served) = stop.serve("echo_streams", server)? {
        served?;
    }
    Ok(())
}
