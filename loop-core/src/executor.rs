//! The loop's default executor: a bounded thread pool, created lazily, shut down at close
//! without waiting.
//!
//! Workers are started on demand, up to asyncio's `min(32, cpus + 4)`, and kept until
//! shutdown. Shutdown lets queued jobs finish, then either joins the workers (asyncio's
//! `shutdown(wait=True)`: [`ThreadPool::shutdown`], what `shutdown_default_executor` awaits) or
//! lets them exit on their own ([`ThreadPool::shutdown_nowait`], asyncio's `wait=False`, what
//! `close()` does, so a job that blocks cannot block `close()`).
//! [`ThreadPool`] is also a [`loop_api::Executor`] users can create and pass to
//! `run_in_executor_on` or `set_default_executor`.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use loop_api::{Executor, Job, LoopError, shutdown_in_thread};

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    workers: usize,
    shutdown: bool,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bounded thread pool (asyncio's default `ThreadPoolExecutor`).
///
/// Pass it to `EventLoop::run_in_executor_on(&pool, f)`, or make it a loop's default with
/// `lp.set_default_executor(Arc::new(pool))`.
///
/// ```
/// use std::sync::mpsc;
/// use loop_core::ThreadPool;
///
/// let pool = ThreadPool::new(4, "my-pool");
/// let (tx, rx) = mpsc::channel();
/// assert!(pool.submit(Box::new(move || tx.send(6 * 7).unwrap())).is_ok());
/// assert_eq!(rx.recv().unwrap(), 42);
/// pool.shutdown(); // waits for the jobs; later submissions are refused
/// ```
pub struct ThreadPool {
    pool: Arc<Pool>,
    max_workers: usize,
    threads: Mutex<Vec<JoinHandle<()>>>,
    name: String,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("name", &self.name)
            .field("max_workers", &self.max_workers)
            .field("threads", &self.threads())
            .finish()
    }
}

/// asyncio's default size: `min(32, cpus + 4)`.
pub fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

impl ThreadPool {
    /// A pool of at most `max_workers` threads (at least 1), named `NAME-N`.
    pub fn new(max_workers: usize, name: impl Into<String>) -> Self {
        ThreadPool {
            pool: Arc::new(Pool {
                state: Mutex::new(PoolState::default()),
                work: Condvar::new(),
            }),
            max_workers: max_workers.max(1),
            threads: Mutex::new(Vec::new()),
            name: name.into(),
        }
    }

    /// Queues `job`; starts a worker if none is idle and the pool is not full.
    ///
    /// # Errors
    /// Gives the job back if the pool is shut down, or if no worker thread exists and none
    /// could be started.
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let mut st = self.pool.lock();
        if st.shutdown {
            return Err(job);
        }
        st.jobs.push_back(job);
        // Each idle worker will take one queued job; start a worker for the rest.
        if st.jobs.len() <= st.idle {
            drop(st);
            self.pool.work.notify_one();
            return Ok(());
        }
        if st.workers >= self.max_workers {
            return Ok(());
        }
        st.workers += 1;
        drop(st);
        let pool = self.pool.clone();
        let mut threads = self.lock_threads();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{}", self.name, threads.len()))
            .spawn(move || worker(&pool));
        match spawned {
            Ok(t) => {
                threads.push(t);
                Ok(())
            }
            Err(_) => {
                let mut st = self.pool.lock();
                st.workers -= 1;
                if st.workers == 0 {
                    // Nobody would ever run it: hand it back.
                    if let Some(job) = st.jobs.pop_back() {
                        return Err(job);
                    }
                }
                Ok(())
            }
        }
    }

    /// Lets the queued and running jobs finish, then joins every worker (except the calling
    /// thread, if a job of this pool shuts it down). Later submissions are refused.
    pub fn shutdown(&self) {
        self.pool.lock().shutdown = true;
        self.pool.work.notify_all();
        let threads = std::mem::take(&mut *self.lock_threads());
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    /// Stops taking jobs without waiting for them (asyncio's `shutdown(wait=False)`): the
    /// running and the queued jobs still run (as asyncio's, without `cancel_futures`), then
    /// each worker thread exits on its own. Nothing is joined: a later [`shutdown`](Self::shutdown)
    /// returns at once.
    pub fn shutdown_nowait(&self) {
        self.pool.lock().shutdown = true;
        self.pool.work.notify_all();
        // Detached: each worker ends after the last queued job.
        drop(std::mem::take(&mut *self.lock_threads()));
    }

    /// Number of jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.pool.lock().jobs.len()
    }

    /// Number of worker threads started (and not detached by `shutdown_nowait`) so far.
    pub fn threads(&self) -> usize {
        self.lock_threads().len()
    }

    /// The most worker threads it starts.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    fn lock_threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Executor for ThreadPool {
    fn submit(&self, job: Job) -> Result<(), LoopError> {
        ThreadPool::submit(self, job).map_err(|_| {
            LoopError::Io(io::Error::other(format!(
                "thread pool {:?} refused the job: it is shut down, or no worker thread could be started",
                self.name
            )))
        })
    }

    fn shutdown(&self) {
        ThreadPool::shutdown(self);
    }
}

/// The loop's default executor: made on first use, replaced by `set_default_executor`,
/// refused after `shutdown_default_executor`.
#[derive(Default)]
pub(crate) enum DefaultExecutor {
    /// None yet: the first `run_in_executor` makes a [`ThreadPool`].
    #[default]
    Lazy,
    /// The loop's own pool, made on first use.
    Own(Arc<ThreadPool>),
    /// An executor set by the user.
    Ready(Arc<dyn Executor>),
    /// `shutdown_default_executor` was called.
    ShutDown,
}

impl DefaultExecutor {
    /// The executor to submit to, made now if needed.
    pub(crate) fn get(&mut self) -> Result<Arc<dyn Executor>, LoopError> {
        match self {
            DefaultExecutor::Own(pool) => Ok(pool.clone()),
            DefaultExecutor::Ready(e) => Ok(e.clone()),
            DefaultExecutor::Lazy => {
                let pool = Arc::new(ThreadPool::new(default_max_workers(), "loop-executor"));
                *self = DefaultExecutor::Own(pool.clone());
                Ok(pool)
            }
            DefaultExecutor::ShutDown => Err(LoopError::Io(io::Error::other(
                "run_in_executor: the default executor was shut down (shutdown_default_executor); set a new one with set_default_executor",
            ))),
        }
    }

    /// The loop's own pool's threads and queued jobs (zero for a user's executor, whose
    /// insides the loop does not know).
    pub(crate) fn load(&self) -> (usize, usize) {
        match self {
            DefaultExecutor::Own(pool) => (pool.threads(), pool.queued()),
            _ => (0, 0),
        }
    }

    /// Takes the executor out (leaving `then`), if there is one.
    pub(crate) fn take(&mut self, then: DefaultExecutor) -> Option<Arc<dyn Executor>> {
        match std::mem::replace(self, then) {
            DefaultExecutor::Own(pool) => Some(pool),
            DefaultExecutor::Ready(e) => Some(e),
            _ => None,
        }
    }

    /// Replaces it with `then` and shuts the old executor down without waiting (asyncio's
    /// `shutdown(wait=False)`): the loop's own pool directly, a user's executor through
    /// `shutdown()` on a helper thread. Jobs already submitted still run.
    pub(crate) fn shut_down_nowait(&mut self, then: DefaultExecutor) {
        match std::mem::replace(self, then) {
            DefaultExecutor::Own(pool) => pool.shutdown_nowait(),
            DefaultExecutor::Ready(e) => drop(shutdown_in_thread(e)),
            DefaultExecutor::Lazy | DefaultExecutor::ShutDown => {}
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(pool: &Pool) {
    let mut st = pool.lock();
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            // A job's panic is the job's business (run_in_executor reports it); the worker
            // survives it.
            let _ = catch_unwind(AssertUnwindSafe(job));
            st = pool.lock();
            continue;
        }
        if st.shutdown {
            st.workers -= 1;
            return;
        }
        st.idle += 1;
        st = pool.work.wait(st).unwrap_or_else(|p| p.into_inner());
        st.idle -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    const RENDEZVOUS: Duration = Duration::from_secs(30);

    #[test]
    fn shutdown_nowait_returns_at_once_and_queued_jobs_still_run() {
        let pool = ThreadPool::new(1, "nowait-test");
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let first_done = done_tx.clone();
        let first = Box::new(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(RENDEZVOUS);
            first_done.send("running").unwrap();
        });
        assert!(pool.submit(first).is_ok());
        assert!(
            pool.submit(Box::new(move || done_tx.send("queued").unwrap()))
                .is_ok()
        );
        started_rx.recv_timeout(RENDEZVOUS).unwrap();
        pool.shutdown_nowait();
        assert!(
            done_rx.try_recv().is_err(),
            "shutdown_nowait waited for a job"
        );
        assert!(
            pool.submit(Box::new(|| {})).is_err(),
            "a shut down pool took a job"
        );
        release_tx.send(()).unwrap();
        // asyncio's wait=False without cancel_futures: the queued job still runs.
        assert_eq!(done_rx.recv_timeout(RENDEZVOUS), Ok("running"));
        assert_eq!(done_rx.recv_timeout(RENDEZVOUS), Ok("queued"));
        drop(pool);
    }
}
