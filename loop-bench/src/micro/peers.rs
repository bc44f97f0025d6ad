//! The floor and the tokio peers of the micro-benchmarks in [`super::ours`], written the same
//! way (same counters, same closures, same `n`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::Instant;

use tokio::runtime::{Builder, Runtime};
use tokio::sync::Notify;

use super::{BenchResult, Measure, WAKE_GAP, timer_delay};

fn runtime() -> std::io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// The floor of `call_soon`: `n` boxed closures pushed on a `VecDeque<Box<dyn FnOnce()>>`, then
/// popped and run in order.
pub fn fifo_floor(n: usize) -> BenchResult {
    let count = Rc::new(Cell::new(0usize));
    let t0 = Instant::now();
    let mut q: VecDeque<Box<dyn FnOnce()>> = VecDeque::new();
    for _ in 0..n {
        let c = count.clone();
        q.push_back(Box::new(move || c.set(c.get() + 1)));
    }
    while let Some(f) = q.pop_front() {
        f();
    }
    let took = t0.elapsed();
    std::hint::black_box(count.get());
    Ok(Measure::per_op(took, n))
}

/// tokio's `spawn_local` on a current-thread runtime with a `LocalSet`: `n` tasks (each bumps a
/// counter) spawned from a running task, then run to completion.
///
/// # Errors
/// The runtime cannot be built.
pub fn spawn_local(n: usize) -> BenchResult {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let count = Rc::new(Cell::new(0usize));
    let c2 = count.clone();
    let t0 = Instant::now();
    local.block_on(&rt, async move {
        for _ in 0..n {
            let c = c2.clone();
            drop(tokio::task::spawn_local(async move { c.set(c.get() + 1) }));
        }
        while c2.get() < n {
            tokio::task::yield_now().await;
        }
    });
    let took = t0.elapsed();
    drop(local);
    std::hint::black_box(count.get());
    Ok(Measure::per_op(took, n))
}

/// tokio's timer: `n` `tokio::time::sleep` futures with the same delays as ours, each polled
/// once (which registers it in the timer wheel), then all dropped (which cancels them).
///
/// # Errors
/// The runtime cannot be built.
pub fn tokio_timers(n: usize) -> BenchResult {
    let rt = runtime()?;
    let took = rt.block_on(async move {
        let mut cx = Context::from_waker(Waker::noop());
        let t0 = Instant::now();
        let mut sleeps: Vec<Pin<Box<tokio::time::Sleep>>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = Box::pin(tokio::time::sleep(timer_delay(i)));
            let _ = s.as_mut().poll(&mut cx);
            sleeps.push(s);
        }
        drop(sleeps);
        // Let the driver turn once, as our loop does its one iteration.
        tokio::task::yield_now().await;
        t0.elapsed()
    });
    Ok(Measure::per_op(took, n))
}

struct Counter {
    count: AtomicUsize,
    total: usize,
    done: Notify,
}

/// tokio's `Handle::spawn` from `threads` threads into a current-thread runtime: `n` tasks
/// (each bumps a counter); the clock stops when the runtime has run them all.
///
/// # Errors
/// The runtime cannot be built.
pub fn spawn_remote(n: usize, threads: usize) -> BenchResult {
    let rt = runtime()?;
    let per = n / threads;
    let state = Arc::new(Counter {
        count: AtomicUsize::new(0),
        total: per * threads,
        done: Notify::new(),
    });
    let t0 = Instant::now();
    let senders: Vec<_> = (0..threads)
        .map(|_| {
            let (state, handle) = (state.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                for _ in 0..per {
                    let s = state.clone();
                    drop(handle.spawn(async move {
                        if s.count.fetch_add(1, Ordering::Relaxed) + 1 == s.total {
                            s.done.notify_one();
                        }
                    }));
                }
            })
        })
        .collect();
    rt.block_on(state.done.notified());
    let took = t0.elapsed();
    for s in senders {
        let _ = s.join();
    }
    Ok(Measure::per_op(took, per * threads))
}

type Job = Box<dyn FnOnce() + Send>;

/// tokio's unbounded `mpsc` channel of boxed closures from `threads` threads, drained and run by
/// a task on a current-thread runtime.
///
/// # Errors
/// The runtime cannot be built.
pub fn mpsc_remote(n: usize, threads: usize) -> BenchResult {
    let rt = runtime()?;
    let per = n / threads;
    let total = per * threads;
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let t0 = Instant::now();
    let senders: Vec<_> = (0..threads)
        .map(|_| {
            let (tx, count) = (tx.clone(), count.clone());
            std::thread::spawn(move || {
                for _ in 0..per {
                    let c = count.clone();
                    let job: Job = Box::new(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    });
                    if tx.send(job).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let c2 = count.clone();
    rt.block_on(async move {
        while let Some(job) = rx.recv().await {
            job();
            if c2.load(Ordering::Relaxed) == total {
                break;
            }
        }
    });
    let took = t0.elapsed();
    for s in senders {
        let _ = s.join();
    }
    Ok(Measure::per_op(took, total))
}

/// Wake-up latency of tokio: like ours, each thread waits [`WAKE_GAP`] (the runtime parks in
/// its driver), then `Handle::spawn`s a task that measures how long after the spawn it ran.
///
/// # Errors
/// The runtime cannot be built.
pub fn spawn_latency(k: usize, threads: usize) -> BenchResult {
    let rt = runtime()?;
    let done = Arc::new(Notify::new());
    let (handle, done2) = (rt.handle().clone(), done.clone());
    let joiner = std::thread::spawn(move || {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let h = handle.clone();
                std::thread::spawn(move || {
                    let (tx, rx) = std::sync::mpsc::channel::<u64>();
                    let mut lat = Vec::with_capacity(k);
                    for _ in 0..k {
                        std::thread::sleep(WAKE_GAP);
                        let tx = tx.clone();
                        let t0 = Instant::now();
                        drop(h.spawn(async move {
                            let _ = tx.send(t0.elapsed().as_nanos() as u64);
                        }));
                        match rx.recv() {
                            Ok(ns) => lat.push(ns),
                            Err(_) => break,
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().unwrap_or_default());
        }
        done2.notify_one();
        all
    });
    rt.block_on(done.notified());
    let lat = joiner.join().map_err(|_| "a latency thread panicked")?;
    Ok(Measure::latency(lat))
}

/// tokio's bounded `mpsc` channel (size [`QUEUE_SIZE`](super::QUEUE_SIZE)) between two
/// `spawn_local` tasks on a current-thread runtime: `n` sends and `n` receives.
///
/// # Errors
/// The runtime cannot be built.
pub fn tokio_mpsc(n: usize) -> BenchResult {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let t0 = Instant::now();
    let got = local.block_on(&rt, async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(super::QUEUE_SIZE);
        let consumer = tokio::task::spawn_local(async move {
            let mut sum = 0usize;
            for _ in 0..n {
                sum += rx.recv().await.unwrap_or(0);
            }
            sum
        });
        for i in 0..n {
            if tx.send(i).await.is_err() {
                break;
            }
        }
        consumer.await.unwrap_or(0)
    });
    let took = t0.elapsed();
    std::hint::black_box(got);
    Ok(Measure::per_op(took, n))
}

/// tokio's `Mutex`: `n` times `lock().await` then dropping the guard, in one task.
///
/// # Errors
/// The runtime cannot be built.
pub fn tokio_mutex(n: usize) -> BenchResult {
    let rt = runtime()?;
    let t0 = Instant::now();
    let count = rt.block_on(async move {
        let m = tokio::sync::Mutex::new(0usize);
        for _ in 0..n {
            *m.lock().await += 1;
        }
        m.into_inner()
    });
    let took = t0.elapsed();
    std::hint::black_box(count);
    Ok(Measure::per_op(took, n))
}

/// tokio's `Notify`: the same ping-pong as ours between two `spawn_local` tasks
/// (`notify_one` + `notified().await` each way per round).
///
/// # Errors
/// The runtime cannot be built.
pub fn tokio_notify(n: usize) -> BenchResult {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let t0 = Instant::now();
    let rounds = local.block_on(&rt, async move {
        let ping = Rc::new(Notify::new());
        let pong = Rc::new(Notify::new());
        let (pi, po) = (ping.clone(), pong.clone());
        let other = tokio::task::spawn_local(async move {
            for _ in 0..n {
                pi.notified().await;
                po.notify_one();
            }
        });
        let mut rounds = 0usize;
        for _ in 0..n {
            ping.notify_one();
            pong.notified().await;
            rounds += 1;
        }
        let _ = other.await;
        rounds
    });
    let took = t0.elapsed();
    std::hint::black_box(rounds);
    Ok(Measure::per_op(took, n))
}

/// tokio's `JoinSet`: [`GATHER_BATCH`](super::GATHER_BATCH) `spawn_local` tasks (each returns
/// its index) joined with `join_next` into a vector, n / batch times.
///
/// # Errors
/// The runtime cannot be built.
pub fn tokio_join_set(n: usize) -> BenchResult {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let batches = (n / super::GATHER_BATCH).max(1);
    let t0 = Instant::now();
    let total = local.block_on(&rt, async move {
        let mut total = 0usize;
        for _ in 0..batches {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..super::GATHER_BATCH {
                set.spawn_local(async move { i });
            }
            let mut outs = Vec::with_capacity(super::GATHER_BATCH);
            while let Some(r) = set.join_next().await {
                outs.push(r.unwrap_or(0));
            }
            total += outs.len();
        }
        total
    });
    let took = t0.elapsed();
    Ok(Measure::per_op(took, total))
}
