//! An HTTP/1.1 "hello" server small enough to read, and fast enough to measure with `wrk`:
//!
//! ```text
//! cargo run --release --example http_hello -- 127.0.0.1:8080
//! wrk -t1 -c64 -d10s http://127.0.0.1:8080/
//! ```
//!
//! The backend comes from `LOOP_BACKEND` (default `auto`). Ctrl-C or `kill` (SIGINT/SIGTERM)
//! stops it and closes the loop.

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    // Before the server says it is ready: Ctrl-C or kill from then on closes it cleanly.
    let stop = StopOnSignals::install(&lp)?;
    let listener = examples::http::bind(&lp, addr)?;
    println!(
        "http server on http://{} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::http::serve(lp.clone(), listener);
    if let Some(served) = stop.serve("http_hello", server)? {
        served?;
    }
    Ok(())
}
