//! The loop's default executor: a bounded thread pool, created lazily, joined at close.
//!
//! Workers are started on demand, up to asyncio's `min(32, cpus + 4)`, and kept until
//! shutdown. Shutdown lets queued jobs finish (asyncio's `shutdown(wait=True)`), then joins.
//! [`ThreadPool`] is also a [`loop_api::Executor`] users can create and pass to
//! `run_in_executor_on` or `set_default_executor`.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use loop_api::{Executor, Job, LoopError};

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

    /// Number of worker threads started so far.
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
    /// The executor in use (the loop's own pool, or one set by the user).
    Ready(Arc<dyn Executor>),
    /// `shutdown_default_executor` was called.
    ShutDown,
}

impl DefaultExecutor {
    /// The executor to submit to, made now if needed.
    pub(crate) fn get(&mut self) -> Result<Arc<dyn Executor>, LoopError> {
        match self {
            DefaultExecutor::Ready(e) => Ok(e.clone()),
            DefaultExecutor::Lazy => {
                let pool: Arc<dyn Executor> =
                    Arc::new(ThreadPool::new(default_max_workers(), "loop-executor"));
                *self = DefaultExecutor::Ready(pool.clone());
                Ok(pool)
            }
            DefaultExecutor::ShutDown => Err(LoopError::Io(io::Error::other(
                "run_in_executor: the default executor was shut down (shutdown_default_executor); set a new one with set_default_executor",
            ))),
        }
    }

    /// Takes the executor out (leaving `then`), if there is one.
    pub(crate) fn take(&mut self, then: DefaultExecutor) -> Option<Arc<dyn Executor>> {
        match std::mem::replace(self, then) {
            DefaultExecutor::Ready(e) => Some(e),
            _ => None,
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
