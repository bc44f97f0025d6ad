//! A hyper 1.x server on the loop: HTTP/1.1 with keep-alive and HTTP/2 on one port, streaming
//! request bodies back (see `examples::hyper_http`):
//!
//! ```text
//! cargo run --example hyper_server -- 127.0.0.1:8080
//! cargo run --example hyper_server -- --threads 2 127.0.0.1:8080
//! curl http://127.0.0.1:8080/
//! curl --http2-prior-knowledge http://127.0.0.1:8080/
//! curl --data-binary @some-file http://127.0.0.1:8080/echo
//! ```
//!
//! The backend comes from `LOOP_BACKEND` (default `auto`). Ctrl-C or `kill` (SIGINT/SIGTERM)
//! stops it and closes the loop. `--threads N` serves on N loops, one per thread
//! (`loop_policy::run_per_core`), each with its own `SO_REUSEPORT` listener (see
//! `examples::per_core`).

use std::net::SocketAddr;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let threads = if args.peek().map(String::as_str) == Some("--threads") {
        args.next();
        let n = args.next().ok_or("--threads needs a number")?;
        Some(
            n.parse::<usize>()
                .map_err(|e| format!("--threads {n:?}: {e}"))?,
        )
    } else {
        None
    };
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".to_string())
        .parse()?;
    if let Some(threads) = threads {
        return serve_per_core(addr, threads);
    }
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

/// `--threads N`: the same server on N loops, one per thread.
fn serve_per_core(addr: SocketAddr, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let options = examples::per_core::Options {
        addr,
        threads,
        pin: false,
    };
    let ready = move |addr, backend: &str| {
        println!("hyper server on http://{addr} (backend: {backend}; {threads} loops)");
    };
    examples::per_core::serve("hyper_server", options, ready, |lp, listener| {
        let listener = loop_net::TcpListener::from_std_on(&lp, listener);
        examples::hyper_http::serve(lp, listener)
    })
}
