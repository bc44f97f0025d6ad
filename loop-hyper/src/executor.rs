//! [`LoopExecutor`]: hyper's background futures as tasks of the running loop.

use std::future::Future;

/// hyper's `Executor`: spawns each future hyper hands it (an HTTP/2 connection's streams, a
/// client connection) as a task of the running loop (`loop_api::get_running_loop()`), as
/// asyncio's `create_task` does. The futures need not be `Send`.
///
/// Use it from inside the loop (a task or a callback), as hyper calls it while serving. With
/// no running loop there is nowhere to run the future: it is dropped, and a message on
/// standard error says why.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopExecutor;

impl LoopExecutor {
    /// The executor (the same as `LoopExecutor::default()`).
    pub fn new() -> Self {
        LoopExecutor
    }
}

impl<F> hyper::rt::Executor<F> for LoopExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        let spawned = loop_api::get_running_loop().and_then(|lp| {
            lp.create_task(async move {
                fut.await;
            })
        });
        if let Err(e) = spawned {
            eprintln!(
                "loop_hyper::LoopExecutor: a future hyper spawned was dropped: {e} \
                 (serve and send requests from inside the loop: a task of run_until_complete)"
            );
        }
    }
}
