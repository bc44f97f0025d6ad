//! A hyper 1.x server on the loop: HTTP/1.1 with keep-alive and HTTP/2 on one port, streaming
//! request bodies back (see `examples::hyper_http`):
//!
//! ```text
//! cargo run --example hyper_server -- 127.0.0.1:8080
//! curl http://127.0.0.1:8080/
//! curl --http2-prior-knowledge http://127.0.0.1:8080/
//! curl --data-binary @some-file http://127.0.0.1:8080/echo
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
    let listener = examples::hyper_http::bind(&lp, addr)?;
    println!(
        "hyper server on http://{} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::hyper_http::serve(lp.clone(), listener);
    if let Some(served) = stop.serve("hyper_server", server)? {
        served?;
    }
    Ok(())
}
