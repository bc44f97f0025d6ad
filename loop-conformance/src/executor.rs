//! `run_in_executor`: blocking work on the loop's thread pool or a given executor,
//! `set_default_executor`, `shutdown_default_executor` (CONFORMANCE 24).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::Poll;
use std::thread;
use std::time::Duration;

use loop_api::{TaskError, yield_now};

use crate::Factory;
use crate::util::{block_on, close, new_loop, poll_once, thread_sleep};

/// Long enough never to fire on a working backend; turns a deadlock into a clear failure.
const RENDEZVOUS: Duration = Duration::from_secs(30);

/// `run_in_executor` runs the job on another thread and gives its value.
pub fn run_in_executor_returns_value_from_other_thread(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let (job_thread, value) = block_on(&lp, async move {
        lp2.run_in_executor(|| (thread::current().id(), 6 * 7))
            .await
            .expect("executor job")
    });
    assert_eq!(value, 42);
    assert_ne!(
        job_thread,
        thread::current().id(),
        "the job ran on the loop's thread"
    );
    close(&lp);
}

/// A job that panics gives `Panicked(message)`; the loop and the executor go on.
pub fn run_in_executor_reports_panic(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let (failed, after) = block_on(&lp, async move {
        let failed = lp2
            .run_in_executor(|| {
                if thread::current().name() != Some("never") {
                    panic!("executor-boom");
                }
                1
            })
            .await;
        let after = lp2.run_in_executor(|| 2).await;
        (failed, after)
    });
    match failed {
        Err(TaskError::Panicked(m)) => assert!(m.contains("executor-boom"), "message: {m}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(
        after,
        Ok(2),
        "the executor stopped working after a job panicked"
    );
    close(&lp);
}

/// On a closed loop the job does not run and the future gives `Cancelled`.
pub fn run_in_executor_on_closed_loop_is_cancelled(factory: Factory) {
    let lp = new_loop(factory);
    close(&lp);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    match poll_once(lp.run_in_executor(move || r.store(true, Ordering::SeqCst))) {
        Poll::Ready(Err(TaskError::Cancelled)) => {}
        other => panic!("run_in_executor on a closed loop gave {other:?}, expected Cancelled"),
    }
    thread_sleep(10);
    assert!(
        !ran.load(Ordering::SeqCst),
        "a job given to a closed loop ran"
    );
}

/// Signals on a channel when dropped (the job's result is dropped after it was delivered).
struct SignalOnDrop(mpsc::Sender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A job that finishes after its awaiting task was cancelled and the loop closed (and
/// dropped) does not crash or touch the dead loop.
pub fn executor_job_outliving_cancelled_task_is_safe(factory: Factory) {
    for drop_loop in [false, true] {
        let lp = new_loop(factory);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let job = lp.run_in_executor(move || {
            let _ = release_rx.recv_timeout(RENDEZVOUS);
            SignalOnDrop(dropped_tx)
        });
        let task = lp.create_task(job).expect("create_task");
        let lp2 = lp.clone();
        let outcome = block_on(&lp, async move {
            yield_now().await; // the task awaits the job and stores its waker
            yield_now().await;
            task.cancel();
            let outcome = task.await;
            lp2.stop();
            outcome.map(drop)
        });
        assert_eq!(outcome, Err(TaskError::Cancelled));
        // Release the job a little after close() began (close does not wait for it).
        let releaser = thread::spawn(move || {
            thread_sleep(30);
            let _ = release_tx.send(());
        });
        close(&lp);
        if drop_loop {
            drop(lp);
        }
        releaser.join().expect("releaser thread");
        dropped_rx
            .recv_timeout(RENDEZVOUS)
            .expect("the job's result was never delivered and dropped");
    }
}

thread_local! {
    /// Set by a job on its worker thread: signals when that thread exits.
    static ON_THREAD_EXIT: std::cell::RefCell<Option<SignalOnDrop>> =
        const { std::cell::RefCell::new(None) };
}

/// `close()` does not wait for a running executor job (asyncio shuts the default executor down
/// with `wait=False`): it returns while the job is still blocked; once released, the job ends
/// and its worker thread exits on its own.
pub fn close_does_not_wait_for_a_running_job(factory: Factory) {
    let lp = new_loop(factory);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (exited_tx, exited_rx) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let job = lp.run_in_executor(move || {
        ON_THREAD_EXIT.with(|e| *e.borrow_mut() = Some(SignalOnDrop(exited_tx)));
        let _ = started_tx.send(());
        let _ = release_rx.recv_timeout(RENDEZVOUS);
        f.store(true, Ordering::SeqCst);
    });
    drop(job);
    started_rx
        .recv_timeout(RENDEZVOUS)
        .expect("the executor job did not start");
    close(&lp);
    assert!(
        !finished.load(Ordering::SeqCst),
        "close() waited for a running executor job (it must shut the executor down with wait=False)"
    );
    release_tx.send(()).expect("the job stopped waiting");
    exited_rx
        .recv_timeout(RENDEZVOUS)
        .expect("the worker thread did not exit after its job ended (a leaked thread)");
    assert!(finished.load(Ordering::SeqCst));
}

/// The job starts at once, without the future being awaited or the loop running.
pub fn executor_job_starts_without_being_awaited(factory: Factory) {
    let lp = new_loop(factory);
    let (tx, rx) = mpsc::channel();
    let fut = lp.run_in_executor(move || tx.send(()).expect("send"));
    rx.recv_timeout(RENDEZVOUS)
        .expect("a job did not start until its future was awaited");
    assert_eq!(block_on(&lp, fut), Ok(()));
    close(&lp);
}

/// A blocking job does not block the loop: a job waits for a message that a loop timer sends.
pub fn executor_does_not_block_loop(factory: Factory) {
    let lp = new_loop(factory);
    let (tx, rx) = mpsc::channel::<()>();
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let job = lp2.run_in_executor(move || rx.recv_timeout(RENDEZVOUS).is_ok());
        lp2.call_later(Duration::from_millis(5), move || tx.send(()).expect("send"))
            .expect("call_later");
        job.await.expect("executor job")
    });
    assert!(
        got,
        "the loop did not run its timer while a job was blocked"
    );
    close(&lp);
}

/// The executor runs jobs in parallel: two jobs that wait for each other both finish.
pub fn executor_runs_jobs_in_parallel(factory: Factory) {
    let lp = new_loop(factory);
    let (a_tx, a_rx) = mpsc::channel::<()>();
    let (b_tx, b_rx) = mpsc::channel::<()>();
    let lp2 = lp.clone();
    let (a, b) = block_on(&lp, async move {
        let a = lp2.run_in_executor(move || {
            a_tx.send(()).is_ok() && b_rx.recv_timeout(RENDEZVOUS).is_ok()
        });
        let b = lp2.run_in_executor(move || {
            b_tx.send(()).is_ok() && a_rx.recv_timeout(RENDEZVOUS).is_ok()
        });
        (a.await.expect("job a"), b.await.expect("job b"))
    });
    assert!(a && b, "two executor jobs could not run at the same time");
    close(&lp);
}

/// A thousand jobs all complete with their own values.
pub fn many_executor_jobs_all_complete(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let outs = block_on(&lp, async move {
        let futs: Vec<_> = (0..1000u64)
            .map(|i| lp2.run_in_executor(move || i * 2))
            .collect();
        let mut outs = Vec::new();
        for f in futs {
            outs.push(f.await.expect("job"));
        }
        outs
    });
    assert_eq!(outs, (0..1000u64).map(|i| i * 2).collect::<Vec<_>>());
    close(&lp);
}

/// An executor that runs each job on a new thread with a given name.
struct NamedThreads(&'static str);

impl loop_api::Executor for NamedThreads {
    fn submit(&self, job: loop_api::Job) -> Result<(), loop_api::LoopError> {
        thread::Builder::new()
            .name(self.0.to_string())
            .spawn(job)
            .map(drop)
            .map_err(loop_api::LoopError::from)
    }
}

/// An executor that drops every job without running it.
struct Discards;

impl loop_api::Executor for Discards {
    fn submit(&self, job: loop_api::Job) -> Result<(), loop_api::LoopError> {
        drop(job);
        Ok(())
    }
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_string()
}

/// `run_in_executor_on` runs the job on the executor given; an executor that drops the job
/// makes the future `Cancelled`, not hang.
pub fn run_in_executor_on_uses_given_executor(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let (name, dropped) = block_on(&lp, async move {
        let name = lp2
            .run_in_executor_on(&NamedThreads("explicit-executor"), thread_name)
            .await;
        let dropped = lp2.run_in_executor_on(&Discards, || 1).await;
        (name, dropped)
    });
    assert_eq!(name.as_deref(), Ok("explicit-executor"));
    assert_eq!(dropped, Err(TaskError::Cancelled));
    close(&lp);
}

/// `set_default_executor` replaces the executor `run_in_executor` uses.
pub fn set_default_executor_is_used(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let (before, after) = block_on(&lp, async move {
        let before = lp2.run_in_executor(thread_name).await.expect("job");
        lp2.set_default_executor(Arc::new(NamedThreads("my-default")))
            .expect("set_default_executor");
        let after = lp2.run_in_executor(thread_name).await.expect("job");
        (before, after)
    });
    assert_ne!(before, "my-default");
    assert_eq!(after, "my-default");
    close(&lp);
}

/// `shutdown_default_executor` waits for the running job without blocking the loop (the job
/// itself waits for a timer of the loop); afterwards `run_in_executor` gives `Cancelled`.
pub fn shutdown_default_executor_waits_for_jobs(factory: Factory) {
    let lp = new_loop(factory);
    let finished = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<()>();
    let lp2 = lp.clone();
    let f = finished.clone();
    let (shut, later) = block_on(&lp, async move {
        let job = lp2.run_in_executor(move || {
            let released = rx.recv_timeout(RENDEZVOUS).is_ok();
            thread_sleep(20);
            f.store(released, Ordering::SeqCst);
        });
        drop(job); // not awaited: the shutdown must still wait for it
        lp2.call_later(Duration::from_millis(20), move || {
            let _ = tx.send(());
        })
        .expect("call_later");
        let shut = lp2.shutdown_default_executor().await;
        let later = lp2.run_in_executor(|| 1).await;
        (shut, later)
    });
    assert!(shut.is_ok(), "shutdown_default_executor: {shut:?}");
    assert!(
        finished.load(Ordering::SeqCst),
        "shutdown_default_executor returned before the job finished (or the loop was blocked)"
    );
    assert_eq!(later, Err(TaskError::Cancelled));
    close(&lp);
}

/// The default executor is bounded (asyncio's `min(32, cpus + 4)` workers at most).
pub fn default_executor_is_bounded(factory: Factory) {
    let lp = new_loop(factory);
    let lp2 = lp.clone();
    let names = block_on(&lp, async move {
        let jobs: Vec<_> = (0..100)
            .map(|_| {
                lp2.run_in_executor(|| {
                    thread_sleep(2);
                    thread::current().id()
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for j in jobs {
            ids.insert(j.await.expect("job"));
        }
        ids.len()
    });
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        names <= (cpus + 4).min(32),
        "{names} worker threads for {cpus} cpus"
    );
    close(&lp);
}
