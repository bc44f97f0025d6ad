//! A TCP echo server on the backend `LOOP_BACKEND` selects (default `auto`).
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:8888
//! LOOP_BACKEND=mio cargo run --release --example echo_server -- 127.0.0.1:8888
//! ```
//!
//! It prints the address and the backend it got, then serves: one task per connection, each
//! a `sock_recv`/`sock_sendall` loop (the server is `examples::echo`). Try it with
//! `nc 127.0.0.1 8888`. Ctrl-C (SIGINT) or `kill PID` (SIGTERM) stops it: the loop's signal
//! handlers stop the loop, which is closed (the port is free again at once), and the program
//! exits with success.

use std::net::SocketAddr;
use std::process::ExitCode;

use examples::shutdown::StopOnSignals;
use loop_policy::Backend;

const USAGE: &str = "usage: echo_server [ADDRESS:PORT]   (default 127.0.0.1:8888)";

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let text = arg.as_deref().unwrap_or("127.0.0.1:8888");
    let addr: SocketAddr = match text.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("echo_server: bad address {text:?}: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    // The default policy reads LOOP_BACKEND; a bad value is reported here, not panicked on.
    let lp = loop_policy::get_event_loop()?;
    // Before the server says it is ready: Ctrl-C or kill from then on closes it cleanly.
    let stop = StopOnSignals::install(&lp)?;
    let why = Backend::from_env()?.explain();
    let listener = examples::echo::bind(addr)?;
    println!(
        "echo server listening on {} (backend: {}; {why})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let server = examples::echo::serve(lp.clone(), listener);
    if let Some(served) = stop.serve("echo_server", server)? {
        served?;
    }
    Ok(())
}
