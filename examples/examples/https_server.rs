//! hyper behind TLS on the loop: HTTP/2 or HTTP/1.1 by ALPN, with a self-signed certificate
//! for `localhost` made at start-up (see `examples::https`):
//!
//! ```text
//! cargo run --example https_server -- 127.0.0.1:8443
//! curl -k https://127.0.0.1:8443/                 # HTTP/2
//! curl -k --http1.1 https://127.0.0.1:8443/
//! curl -k --data-binary @some-file https://127.0.0.1:8443/echo
//! ```
//!
//! The backend comes from `LOOP_BACKEND` (default `auto`). Ctrl-C or `kill` (SIGINT/SIGTERM)
//! stops it and closes the loop.

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8443".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    let stop = StopOnSignals::install(&lp)?;
    let (acceptor, _cert) = examples::https::self_signed_acceptor()?;
    let listener = examples::hyper_http::bind(&lp, addr)?;
    println!(
        "https server on https://{} (backend: {}; self-signed certificate for localhost)",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::https::serve(lp.clone(), listener, acceptor);
    if let Some(served) = stop.serve("https_server", server)? {
        served?;
    }
    Ok(())
}
