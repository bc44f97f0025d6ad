//! Stopping a server cleanly on SIGINT (Ctrl-C) or SIGTERM (`kill`), as an asyncio server
//! does with `loop.add_signal_handler(signal.SIGTERM, loop.stop)`.
//!
//! [`StopOnSignals::install`] has the loop handle both signals (the handlers stop it), and
//! [`StopOnSignals::serve`] runs the server's future, then closes the loop however the run
//! ended. Closing is what
//! matters for a restart: it cancels the accept in flight and waits for the backend to let go
//! of the listener, so the port can be bound again at once. A server killed by a signal's
//! default action instead leaves that to the kernel, which on io_uring tears the ring down
//! asynchronously, and a restart at once may find the address still in use.

use std::cell::Cell;
use std::rc::Rc;

use loop_api::{EventLoop, LoopError};

/// The signals that stop a server: Ctrl-C and `kill`'s default.
pub const STOP_SIGNALS: [i32; 2] = [libc::SIGINT, libc::SIGTERM];

/// The loop's SIGINT and SIGTERM handlers, installed before the server says it is ready (a
/// signal that came between the two would otherwise end the process the default way).
#[derive(Debug)]
pub struct StopOnSignals {
    lp: EventLoop,
    caught: Rc<Cell<Option<i32>>>,
}

impl StopOnSignals {
    /// Installs handlers on `lp` for SIGINT and SIGTERM that stop it.
    ///
    /// # Errors
    /// The loop refusing a handler (`Closed`, `NotSupported`).
    pub fn install(lp: &EventLoop) -> Result<StopOnSignals, LoopError> {
        let caught = Rc::new(Cell::new(None));
        for sig in STOP_SIGNALS {
            let (weak, caught) = (lp.downgrade(), caught.clone());
            lp.add_signal_handler(sig, move || {
                caught.set(Some(sig));
                if let Some(lp) = weak.upgrade() {
                    lp.stop();
                }
            })?;
        }
        Ok(StopOnSignals {
            lp: lp.clone(),
            caught,
        })
    }

    /// Runs `server` on the loop until it ends or SIGINT/SIGTERM arrives, then closes the
    /// loop (which removes the handlers and closes the listener for good).
    ///
    /// Gives `Ok(Some(output))` if the server's future ended by itself, `Ok(None)` if a
    /// signal stopped it (then the signal is named on stderr, prefixed with `program`).
    ///
    /// # Errors
    /// Running the loop failing (`AlreadyRunning`, ...), or closing it failing.
    pub fn serve<F>(self, program: &str, server: F) -> Result<Option<F::Output>, LoopError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let ran = self.lp.run_until_complete(server);
        let closed = self.lp.close();
        let output = match ran {
            Ok(output) => Some(output),
            Err(LoopError::StoppedBeforeComplete) if self.caught.get().is_some() => None,
            Err(e) => return Err(e),
        };
        closed?;
        if let Some(sig) = self.caught.get() {
            let name = if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            eprintln!("{program}: {name} received, stopped and closed the loop");
        }
        Ok(output)
    }
}
