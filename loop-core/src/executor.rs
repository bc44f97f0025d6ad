//! The loop's default executor: a bounded thread pool, created lazily, joined at close.
//!
//! Workers are started on demand, up to asyncio's `min(32, cpus + 4)`, and kept until
//! shutdown. Shutdown lets queued jobs finish (asyncio's `shutdown(wait=True)`), then joins.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

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
pub struct ThreadPool {
    pool: Arc<Pool>,
    max_workers: usize,
    threads: Vec<JoinHandle<()>>,
    name: String,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.max_workers)
            .field("threads", &self.threads.len())
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
            threads: Vec::new(),
            name: name.into(),
        }
    }

    /// Queues `job`; starts a worker if none is idle and the pool is not full.
    ///
    /// # Errors
    /// Gives the job back if the pool is shut down, or if no worker thread exists and none
    /// could be started.
    pub fn submit(&mut self, job: Job) -> Result<(), Job> {
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
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{}", self.name, self.threads.len()))
            .spawn(move || worker(&pool));
        match spawned {
            Ok(t) => {
                self.threads.push(t);
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

    /// Lets the queued and running jobs finish, then joins every worker.
    pub fn shutdown(&mut self) {
        self.pool.lock().shutdown = true;
        self.pool.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Number of worker threads started so far.
    pub fn threads(&self) -> usize {
        self.threads.len()
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
