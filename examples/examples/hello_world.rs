//! Hello world with `call_soon` and `stop`: asyncio's first example, in Rust.
//!
//! ```text
//! cargo run --example hello_world
//! ```
//!
//! The Python it re-tells:
//!
//! ```python
//! def hello_world(loop):
//!     print('Hello World')
//!     loop.stop()
//!
//! loop = asyncio.get_event_loop()
//! loop.call_soon(hello_world, loop)
//! try:
//!     loop.run_forever()      # blocking call interrupted by loop.stop()
//! finally:
//!     loop.close()
//! ```

use std::process::ExitCode;

use loop_api::{EventLoop, LoopError};

/// A callback that prints and stops the loop.
fn hello_world(lp: &EventLoop) {
    println!("Hello World");
    lp.stop();
}

fn run() -> Result<(), LoopError> {
    // The main thread gets its loop from the policy on first use.
    let lp = loop_policy::get_event_loop()?;
    let handle = lp.clone();
    lp.call_soon(move || hello_world(&handle))?;
    // try/finally: the loop is closed however run_forever ends.
    let ran = lp.run_forever();
    lp.close()?;
    ran
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello_world: {e}");
            ExitCode::FAILURE
        }
    }
}
