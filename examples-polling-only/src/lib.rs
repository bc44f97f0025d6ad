//! A program that links one backend crate: `loop-api` and `loop-polling`, nothing else (no
//! `loop-policy`, no mio, no io_uring). `src/main.rs` runs [`run_demo`] and prints its report;
//! `tests/demo.rs` runs the same code and checks the dependency tree.
//!
//! ```
//! let report = examples_polling_only::run_demo()?;
//! assert_eq!(report.backend, "polling");
//! assert_eq!(report.echoed, b"hello, one backend");
//! # Ok::<(), loop_api::LoopError>(())
//! ```
#![deny(missing_docs)]

use std::net::TcpListener;
use std::time::Duration;

use loop_api::{EventLoop, LoopError};

/// What [`run_demo`] saw.
#[derive(Debug)]
pub struct Report {
    /// The loop's backend name (`"polling"`).
    pub backend: &'static str,
    /// The OS mechanism under it (`"epoll"`, `"kqueue"`, `"poll(2)"`, ...).
    pub mechanism: String,
    /// How long the 20 ms sleep took on the loop's clock (never less).
    pub slept: Duration,
    /// What came back from the echo server.
    pub echoed: Vec<u8>,
}

/// Makes a loop with `loop_polling::new_event_loop()`, sleeps on a timer, runs a TCP echo
/// round trip on 127.0.0.1 (server and client as tasks of the same loop), closes the loop.
///
/// # Errors
/// Any I/O or loop error on the way.
pub fn run_demo() -> Result<Report, LoopError> {
    let lp = loop_polling::new_event_loop()?;
    let result = lp.run_until_complete(demo(lp.clone()));
    lp.close()?;
    result?
}

async fn demo(lp: EventLoop) -> Result<Report, LoopError> {
    let start = lp.time();
    loop_api::sleep(Duration::from_millis(20)).await;
    let slept = lp.time() - start;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = lp.create_task({
        let lp = lp.clone();
        async move {
            let (stream, _) = lp.sock_accept(&listener).await?;
            let (n, buf) = lp.sock_recv(&stream, Vec::with_capacity(64)).await;
            n?;
            lp.sock_sendall(&stream, buf).await.0
        }
    })?;

    let client = lp.sock_connect(addr).await?;
    lp.sock_sendall(&client, b"hello, one backend".to_vec())
        .await
        .0?;
    let (n, echoed) = lp.sock_recv(&client, Vec::with_capacity(64)).await;
    n?;
    match server.await {
        Ok(served) => served?,
        Err(e) => return Err(std::io::Error::other(e.to_string()).into()),
    }

    Ok(Report {
        backend: lp.backend_name(),
        mechanism: loop_polling::mechanism()?.to_string(),
        slept,
        echoed,
    })
}
