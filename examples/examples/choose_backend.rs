//! Choosing a backend at start-up: from the command line, or from `LOOP_BACKEND`.
//!
//! ```text
//! cargo run --example choose_backend              # LOOP_BACKEND, or auto
//! cargo run --example choose_backend -- mio
//! LOOP_BACKEND=uring cargo run --example choose_backend
//! cargo run --example choose_backend -- epoll     # a bad name: the error lists the choices
//! ```
//!
//! It lists every backend with whether it can run here (and why not), installs the chosen one
//! as the process's policy (like `uvloop.install()`), and runs a callback on a loop made by it.

use std::process::ExitCode;

use loop_api::LoopError;
use loop_policy::Backend;

/// The backend asked for: the first argument, else `LOOP_BACKEND`, else `auto`.
fn choice() -> Result<Backend, LoopError> {
    match std::env::args().nth(1) {
        Some(name) => name.parse(),
        None => Backend::from_env(),
    }
}

fn show_backends() {
    println!("event loop backends:");
    for b in Backend::ALL {
        let status = match (b, b.why_unavailable()) {
            (_, Some(reason)) => format!("unavailable: {reason}"),
            (Backend::Auto, None) => format!("available: {}", b.explain()),
            (_, None) => "available".to_string(),
        };
        println!("  {:8} {status}", b.name());
    }
    println!();
}

fn run(backend: Backend) -> Result<(), LoopError> {
    loop_policy::install(backend);
    let lp = loop_policy::new_event_loop()?;
    let (name, stopper) = (lp.backend_name(), lp.clone());
    let ran = lp
        .call_soon(move || {
            println!("asked for {backend}, the loop runs on {name}");
            stopper.stop();
        })
        .and_then(|_| lp.run_forever());
    lp.close()?;
    ran
}

fn main() -> ExitCode {
    let backend = match choice() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("choose_backend: {e}");
            return ExitCode::from(2);
        }
    };
    show_backends();
    match run(backend) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("choose_backend: asked for {backend}: {e}");
            ExitCode::FAILURE
        }
    }
}
