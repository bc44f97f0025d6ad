//! A producer/consumer pipeline, as asyncio programs write it: a producer puts jobs in a
//! bounded [`Queue`] (it waits while the queue is full: back-pressure), workers under a
//! [`TaskGroup`] take them, and a [`Semaphore`] keeps at most `connections` "connections"
//! (here a sleep of `latency`, standing for a request) open at once, however many workers
//! there are. `queue.join()` waits until every job was processed; then one `None` per worker
//! tells the workers to stop, and the group's `join` waits for them.
//!
//! The Python it re-tells:
//!
//! ```text
//! async def worker(queue, connections, results):
//!     while (job := await queue.get()) is not None:
//!         async with connections:
//!             await asyncio.sleep(latency)
//!         results.append(job)
//!         queue.task_done()
//!     queue.task_done()
//!
//! async with asyncio.TaskGroup() as tg:
//!     for _ in range(workers):
//!         tg.create_task(worker(queue, connections, results))
//!     for job in range(jobs):
//!         await queue.put(job)
//!     await queue.join()
//!     for _ in range(workers):
//!         await queue.put(None)
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use loop_sync::{Queue, Semaphore, TaskGroup};

/// The shape of a pipeline run.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Jobs the producer makes.
    pub jobs: u32,
    /// Worker tasks.
    pub workers: usize,
    /// Connections open at once, at most.
    pub connections: usize,
    /// The queue's size (the producer waits while it is full).
    pub queue_size: usize,
    /// How long one request takes.
    pub latency: Duration,
}

/// What a run saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// The jobs processed, in the order they finished.
    pub processed: Vec<u32>,
    /// The most connections open at once.
    pub max_connections: usize,
    /// The most jobs waiting in the queue at once.
    pub max_queued: usize,
}

/// What the workers share.
#[derive(Default)]
struct Shared {
    open: Cell<usize>,
    report: RefCell<PipelineReport>,
}

async fn worker(
    queue: Queue<Option<u32>>,
    connections: Rc<Semaphore>,
    shared: Rc<Shared>,
    latency: Duration,
) {
    while let Some(job) = queue.get().await {
        {
            let _connection = connections.acquire().await;
            let open = shared.open.get() + 1;
            shared.open.set(open);
            {
                let mut r = shared.report.borrow_mut();
                r.max_connections = r.max_connections.max(open);
            }
            loop_api::sleep(latency).await;
            shared.open.set(shared.open.get() - 1);
        }
        shared.report.borrow_mut().processed.push(job);
        queue.task_done();
    }
    queue.task_done();
}

/// Runs the pipeline on the running loop and reports what it saw.
///
/// # Errors
/// A worker that failed (the group's failures), or no running loop.
pub async fn run(cfg: PipelineConfig) -> Result<PipelineReport, Box<dyn std::error::Error>> {
    let queue: Queue<Option<u32>> = Queue::new(cfg.queue_size);
    let connections = Rc::new(Semaphore::new(cfg.connections));
    let shared = Rc::new(Shared::default());
    let group = TaskGroup::new();
    for _ in 0..cfg.workers {
        group.create_task(worker(
            queue.clone(),
            connections.clone(),
            shared.clone(),
            cfg.latency,
        ))?;
    }
    for job in 0..cfg.jobs {
        queue.put(Some(job)).await;
        let mut r = shared.report.borrow_mut();
        r.max_queued = r.max_queued.max(queue.qsize());
    }
    queue.join().await;
    for _ in 0..cfg.workers {
        queue.put(None).await;
    }
    group.join().await?;
    let report = shared.report.borrow().clone();
    Ok(report)
}
