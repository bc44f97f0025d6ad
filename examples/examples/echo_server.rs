//! A TCP echo server on the backend `LOOP_BACKEND` selects (default `auto`).
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:8888
//! LOOP_BACKEND=mio cargo run --release --example echo_server -- 127.0.0.1:8888
//! cargo run --release --example echo_server -- --threads 2 --pin 127.0.0.1:8888
//! ```
//!
//! It prints the address and the backend it got, then serves: one task per connection, each
//! a `sock_recv`/`sock_sendall` loop (the server is `examples::echo`). Try it with
//! `nc 127.0.0.1 8888`. Ctrl-C (SIGINT) or `kill PID` (SIGTERM) stops it: the loop's signal
//! handlers stop the loop, which is closed (the port is free again at once), and the program
//! exits with success.
//!
//! `--threads N` serves on N loops, one per thread (`loop_policy::run_per_core`), each with
//! its own `SO_REUSEPORT` listener on the address (see `examples::per_core`); `--pin` pins
//! thread `i` to the `i`-th CPU. Ctrl-C or `kill` stops every loop.

use std::net::SocketAddr;
use std::process::ExitCode;

use examples::shutdown::StopOnSignals;
use loop_policy::Backend;

const USAGE: &str =
    "usage: echo_server [--threads N [--pin]] [ADDRESS:PORT]   (default 127.0.0.1:8888, one loop)";

/// What the command line asks for.
struct Args {
    addr: SocketAddr,
    /// `--threads N`: N loops (`None`: one loop on this thread).
    threads: Option<usize>,
    pin: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut threads, mut pin) = (None, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--pin" => pin = true,
            "--threads" => {
                let n = args.next().ok_or("--threads needs a number")?;
                match n.parse::<usize>() {
                    Ok(n) if n > 0 => threads = Some(n),
                    _ => return Err(format!("--threads {n:?}: expected a number of 1 or more")),
                }
            }
            text => {
                let a = text
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("bad address {text:?}: {e}"))?;
                addr = Some(a);
            }
        }
    }
    let addr = addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8888)));
    Ok(Some(Args { addr, threads, pin }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("echo_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let served = match args.threads {
        None => serve(args.addr),
        Some(threads) => serve_per_core(examples::per_core::Options {
            addr: args.addr,
            threads,
            pin: args.pin,
        }),
    };
    match served {
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

/// `--threads N`: the same server on N loops, one per thread.
fn serve_per_core(options: examples::per_core::Options) -> Result<(), Box<dyn std::error::Error>> {
    let why = Backend::from_env()?.explain();
    let threads = options.threads;
    let ready = move |addr, backend: &str| {
        println!("echo server listening on {addr} (backend: {backend}; {why}; {threads} loops)");
    };
    examples::per_core::serve("echo_server", options, ready, |lp, listener| {
        examples::echo::serve(lp, listener)
    })
}
