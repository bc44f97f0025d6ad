//! A child process's output, streamed line by line while a timer keeps ticking.
//!
//! ```text
//! cargo run --example subprocess_stream
//! cargo run --example subprocess_stream -- 'ls -l; sleep 1; echo done'
//! ```
//!
//! asyncio's `create_subprocess_exec(..., stdout=PIPE)` and `await proc.stdout.readline()`:
//! the child (by default a shell loop printing five lines 0.2 s apart) runs with its stdout
//! piped; each line is printed as soon as the child writes it, and a timer prints a tick every
//! 100 ms meanwhile. The ticks keep coming: waiting for the child's output never blocks the
//! loop. The exit code is the child's (asyncio's returncode: minus the signal if killed).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use examples::subprocess::{DEMO_SCRIPT, Event, stream_lines};
use loop_api::get_running_loop;

fn main() -> ExitCode {
    let script = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEMO_SCRIPT.to_string());
    let start = Instant::now();
    let ran = loop_policy::run(async move {
        let lp = get_running_loop()?;
        println!("backend: {}; running: sh -c {script:?}", lp.backend_name());
        let code = stream_lines(lp, &script, Duration::from_millis(100), move |event| {
            let t = start.elapsed().as_secs_f64();
            match event {
                Event::Tick(n) => println!("{t:6.2}s  tick {n}"),
                Event::Line(line) => println!("{t:6.2}s  child: {line}"),
                Event::Exit(code) => println!("{t:6.2}s  child exited with {code}"),
            }
        })
        .await?;
        Ok::<i32, std::io::Error>(code)
    });
    match ran {
        Ok(Ok(code)) => ExitCode::from(code.clamp(0, 255) as u8),
        Ok(Err(e)) => {
            eprintln!("subprocess_stream: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("subprocess_stream: {e}");
            ExitCode::FAILURE
        }
    }
}
