//! The child-process streamer of `cargo run --example subprocess_stream`: runs a shell
//! script with its stdout piped and hands each line over as the child writes it, while a
//! timer on the same loop keeps ticking (reading the pipe never blocks the loop).

use std::cell::RefCell;
use std::io;
use std::process::Stdio;
use std::rc::Rc;
use std::time::Duration;

use loop_api::{EventLoop, shell_command, sleep};

/// What the example runs: five lines, 0.2 s apart.
pub const DEMO_SCRIPT: &str = "for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done";

/// What happens while the child runs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The timer ticked (1, 2, ...).
    Tick(u32),
    /// The child wrote a line (without its `\n`).
    Line(String),
    /// The child exited with this returncode (asyncio's: minus the signal if killed).
    Exit(i32),
}

/// Runs `script` with `/bin/sh -c`, calls `on_event` for each line of its stdout as it
/// arrives and for each tick of a `tick`-period timer, until the child exits; gives its
/// returncode (also reported as the last event).
///
/// # Errors
/// Starting the child, reading its output, or waiting for it failed.
pub async fn stream_lines(
    lp: EventLoop,
    script: &str,
    tick: Duration,
    on_event: impl FnMut(Event) + 'static,
) -> io::Result<i32> {
    let on_event = Rc::new(RefCell::new(on_event));
    let mut cmd = shell_command(script);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = lp.subprocess_exec(cmd)?;
    let Some(mut stdout) = child.take_stdout() else {
        return Err(io::Error::other("the child's stdout is not piped"));
    };
    let ticks = on_event.clone();
    let ticker = lp.create_task(async move {
        for n in 1.. {
            sleep(tick).await;
            (ticks.borrow_mut())(Event::Tick(n));
        }
    })?;
    let mut read = Ok(());
    loop {
        match stdout.readline().await {
            Ok(line) if line.is_empty() => break,
            Ok(line) => {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\n')
                    .to_string();
                (on_event.borrow_mut())(Event::Line(text));
            }
            Err(e) => {
                read = Err(e);
                let _ = child.kill();
                break;
            }
        }
    }
    let code = child.wait().await;
    ticker.cancel();
    read?;
    let code = code?;
    (on_event.borrow_mut())(Event::Exit(code));
    Ok(code)
}
