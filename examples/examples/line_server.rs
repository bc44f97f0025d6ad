//! A line-protocol server read with `AsyncBufReadExt::read_line` (see `examples::lines`):
//!
//! ```text
//! cargo run --example line_server -- 127.0.0.1:7000
//! printf 'ECHO hi\nUPPER loop\nSUM 1 2 3\nQUIT\n' | nc 127.0.0.1 7000
//! ```
//!
//! The backend comes from `LOOP_BACKEND` (default `auto`). Ctrl-C or `kill` (SIGINT/SIGTERM)
//! stops it and closes the loop.

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    let stop = StopOnSignals::install(&lp)?;
    let listener = examples::lines::bind(&lp, addr)?;
    println!(
        "line server on {} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::lines::serve(lp.clone(), listener);
    if let Some(served) = stop.serve("line_server", server)? {
        served?;
    }
    Ok(())
}
