//! The micro-benchmarks on our loops (any backend), each the twin of one in [`super::peers`].

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use loop_api::{LoopHandle, TimerHandle};
use loop_policy::Backend;

use super::{BenchResult, Measure, WAKE_GAP, timer_delay};

/// `n` `call_soon` callbacks (each bumps a counter) scheduled, then run by the loop.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn call_soon(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let count = Rc::new(Cell::new(0usize));
    let stop = lp.handle();
    let t0 = Instant::now();
    for _ in 0..n {
        let c = count.clone();
        lp.call_soon(move || c.set(c.get() + 1))?;
    }
    lp.call_soon(move || stop.stop())?;
    lp.run_forever()?;
    let took = t0.elapsed();
    lp.close()?;
    check(count.get(), n)?;
    Ok(Measure::per_op(took, n))
}

/// `n` tasks (each bumps a counter) created from a running task, then run to completion.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn create_task(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let count = Rc::new(Cell::new(0usize));
    let (lp2, c2) = (lp.clone(), count.clone());
    let t0 = Instant::now();
    lp.run_until_complete(async move {
        for _ in 0..n {
            let c = c2.clone();
            // Dropping a Task does not cancel it.
            let _ = lp2.create_task(async move { c.set(c.get() + 1) });
        }
        while c2.get() < n {
            loop_api::yield_now().await;
        }
    })?;
    let took = t0.elapsed();
    lp.close()?;
    check(count.get(), n)?;
    Ok(Measure::per_op(took, n))
}

/// `n` timers scheduled with `call_later` (delays spread over a minute), all cancelled, then one
/// loop iteration (which purges the cancelled entries from the heap).
///
/// # Errors
/// The loop cannot be made or fails.
pub fn timers(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let stop = lp.handle();
    let t0 = Instant::now();
    let handles: Vec<TimerHandle> = (0..n)
        .map(|i| lp.call_later(timer_delay(i), || {}))
        .collect::<Result<_, _>>()?;
    for h in &handles {
        h.cancel();
    }
    drop(handles);
    lp.call_soon(move || stop.stop())?;
    lp.run_forever()?;
    let took = t0.elapsed();
    lp.close()?;
    Ok(Measure::per_op(took, n))
}

struct Counter {
    count: AtomicUsize,
    total: usize,
    handle: LoopHandle,
}

/// `n` callbacks sent with `call_soon_threadsafe` from `threads` threads (n / threads each) to a
/// running loop; the clock stops when the loop has run them all.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn threadsafe(backend: Backend, n: usize, threads: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let per = n / threads;
    let state = Arc::new(Counter {
        count: AtomicUsize::new(0),
        total: per * threads,
        handle: lp.handle(),
    });
    let t0 = Instant::now();
    let senders: Vec<_> = (0..threads)
        .map(|_| {
            let state = state.clone();
            std::thread::spawn(move || {
                for _ in 0..per {
                    let s = state.clone();
                    let sent = state.handle.call_soon_threadsafe(move || {
                        if s.count.fetch_add(1, Ordering::Relaxed) + 1 == s.total {
                            s.handle.stop();
                        }
                    });
                    if sent.is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    lp.run_forever()?;
    let took = t0.elapsed();
    for s in senders {
        let _ = s.join();
    }
    lp.close()?;
    check(state.count.load(Ordering::Relaxed), per * threads)?;
    Ok(Measure::per_op(took, per * threads))
}

/// Wake-up latency: each of `threads` threads, `k` times, waits [`WAKE_GAP`] (so the loop
/// blocks in its poll), then sends a callback with `call_soon_threadsafe` that measures how long
/// after the send it ran. Gives p50 and p99.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn wake_latency(backend: Backend, k: usize, threads: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let handle = lp.handle();
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
                        let sent = h.call_soon_threadsafe(move || {
                            let _ = tx.send(t0.elapsed().as_nanos() as u64);
                        });
                        match sent.ok().and_then(|()| rx.recv().ok()) {
                            Some(ns) => lat.push(ns),
                            None => break,
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
        handle.stop();
        all
    });
    lp.run_forever()?;
    let lat = joiner.join().map_err(|_| "a latency thread panicked")?;
    lp.close()?;
    check(lat.len(), k * threads)?;
    Ok(Measure::latency(lat))
}

fn check(got: usize, want: usize) -> Result<(), Box<dyn std::error::Error>> {
    if got == want {
        Ok(())
    } else {
        Err(format!("ran {got} of {want}").into())
    }
}

/// A bounded `loop_sync::Queue` (size [`QUEUE_SIZE`](super::QUEUE_SIZE)): a producer task puts
/// `n` items, a consumer task gets them. One op: one put + its get.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn queue(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let lp2 = lp.clone();
    let t0 = Instant::now();
    let got = lp.run_until_complete(async move {
        let q = loop_sync::Queue::new(super::QUEUE_SIZE);
        let q2 = q.clone();
        let consumer = lp2.create_task(async move {
            let mut sum = 0usize;
            for _ in 0..n {
                sum += q2.get().await;
            }
            sum
        });
        for i in 0..n {
            q.put(i).await;
        }
        match consumer {
            Ok(c) => c.await.unwrap_or(0),
            Err(_) => 0,
        }
    })?;
    let took = t0.elapsed();
    lp.close()?;
    check(got, (0..n).sum())?;
    Ok(Measure::per_op(took, n))
}

/// `n` times `loop_sync::Lock::lock().await` then dropping the guard, in one task. One op: an
/// acquire + its release.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn lock(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let t0 = Instant::now();
    let count = lp.run_until_complete(async move {
        let lock = loop_sync::Lock::new();
        let mut count = 0usize;
        for _ in 0..n {
            let _guard = lock.lock().await;
            count += 1;
        }
        count
    })?;
    let took = t0.elapsed();
    lp.close()?;
    check(count, n)?;
    Ok(Measure::per_op(took, n))
}

/// Two tasks play ping-pong with two `loop_sync::Event`s: each round, one sets `ping` and
/// waits on `pong`, the other waits on `ping`, clears it and sets `pong`. One op: one round
/// (two set + wait hand-offs, two task switches).
///
/// # Errors
/// The loop cannot be made or fails.
pub fn event(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let lp2 = lp.clone();
    let t0 = Instant::now();
    let rounds = lp.run_until_complete(async move {
        let ping = Rc::new(loop_sync::Event::new());
        let pong = Rc::new(loop_sync::Event::new());
        let (pi, po) = (ping.clone(), pong.clone());
        let other = lp2.create_task(async move {
            for _ in 0..n {
                pi.wait().await;
                pi.clear();
                po.set();
            }
        });
        let mut rounds = 0;
        for _ in 0..n {
            ping.set();
            pong.wait().await;
            pong.clear();
            rounds += 1;
        }
        if let Ok(o) = other {
            let _ = o.await;
        }
        rounds
    })?;
    let took = t0.elapsed();
    lp.close()?;
    check(rounds, n)?;
    Ok(Measure::per_op(took, n))
}

/// `loop_sync::gather` of [`GATHER_BATCH`](super::GATHER_BATCH) tasks (each returns its
/// index), n / batch times from a running task. One op: one task created and gathered.
///
/// # Errors
/// The loop cannot be made or fails.
pub fn gather(backend: Backend, n: usize) -> BenchResult {
    let lp = backend.new_event_loop()?;
    let lp2 = lp.clone();
    let batches = (n / super::GATHER_BATCH).max(1);
    let t0 = Instant::now();
    let total = lp.run_until_complete(async move {
        let mut total = 0usize;
        for _ in 0..batches {
            let tasks: Result<Vec<_>, _> = (0..super::GATHER_BATCH)
                .map(|i| lp2.create_task(async move { i }))
                .collect();
            let Ok(tasks) = tasks else { return 0 };
            total += loop_sync::gather(tasks).await.map_or(0, |v| v.len());
        }
        total
    })?;
    let took = t0.elapsed();
    lp.close()?;
    check(total, batches * super::GATHER_BATCH)?;
    Ok(Measure::per_op(took, total))
}
