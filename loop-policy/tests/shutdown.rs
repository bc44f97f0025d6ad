//! The graceful shutdown of `Runner::close` (and so `run`): cancelled tasks settle, tasks a
//! destructor spawned get a bounded time, stragglers are reported, the default executor's jobs
//! are awaited within a bound.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use loop_api::{EventLoop, ExceptionContext, get_running_loop, sleep};
use loop_policy::{Backend, Runner};

fn mio_runner() -> Runner {
    Runner::with_factory(|| Backend::Mio.new_event_loop())
}

/// Records what the loop reports to its exception handler.
fn record_reports(lp: &EventLoop) -> Rc<RefCell<Vec<String>>> {
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.borrow_mut().push(ctx.message.clone());
    })));
    reports
}

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn close_cancels_tasks_and_waits_for_executor_jobs() {
    let mut runner = mio_runner();
    let lp = runner.get_loop().unwrap();
    let reports = record_reports(&lp);
    let cancelled = Rc::new(Cell::new(false));
    let job_done = Arc::new(AtomicBool::new(false));
    let (c, j) = (cancelled.clone(), job_done.clone());
    runner
        .run(async move {
            let lp = get_running_loop().unwrap();
            let flag = OnDrop(move || c.set(true));
            lp.create_task(async move {
                let _flag = flag;
                sleep(Duration::from_secs(3600)).await;
            })
            .unwrap();
            drop(lp.run_in_executor(move || {
                std::thread::sleep(Duration::from_millis(50));
                j.store(true, Ordering::SeqCst);
            }));
        })
        .unwrap();
    runner.close().unwrap();
    assert!(cancelled.get(), "the pending task was not cancelled");
    assert!(
        job_done.load(Ordering::SeqCst),
        "close did not wait for the executor job"
    );
    assert!(lp.is_closed());
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn cleanup_task_spawned_by_a_destructor_gets_to_finish() {
    let mut runner = mio_runner();
    let lp = runner.get_loop().unwrap();
    let reports = record_reports(&lp);
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    runner
        .run(async move {
            let cleanup = OnDrop(move || {
                let c = c.clone();
                let lp = get_running_loop().unwrap();
                lp.create_task(async move {
                    sleep(Duration::from_millis(20)).await;
                    c.set(true);
                })
                .unwrap();
            });
            get_running_loop()
                .unwrap()
                .create_task(async move {
                    let _cleanup = cleanup;
                    sleep(Duration::from_secs(3600)).await;
                })
                .unwrap();
        })
        .unwrap();
    runner.close().unwrap();
    assert!(
        cleaned.get(),
        "the cleanup task was not given time to finish"
    );
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
}

#[test]
fn stragglers_are_reported_and_the_loop_closed_anyway() {
    let mut runner = mio_runner().shutdown_timeout(Duration::from_millis(100));
    let lp = runner.get_loop().unwrap();
    let reports = record_reports(&lp);
    let straggler_dropped = Rc::new(Cell::new(false));
    let s = straggler_dropped.clone();
    runner
        .run(async move {
            // Cancelled at shutdown, the task's destructor spawns a task that never ends.
            let spawner = OnDrop(move || {
                let s = s.clone();
                let flag = OnDrop(move || s.set(true));
                let lp = get_running_loop().unwrap();
                lp.create_task_named("straggler", async move {
                    let _flag = flag;
                    sleep(Duration::from_secs(3600)).await;
                })
                .unwrap();
            });
            get_running_loop()
                .unwrap()
                .create_task(async move {
                    let _spawner = spawner;
                    sleep(Duration::from_secs(3600)).await;
                })
                .unwrap();
        })
        .unwrap();
    runner.close().unwrap();
    assert!(lp.is_closed());
    assert!(
        straggler_dropped.get(),
        "the straggler was not cancelled at close"
    );
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("straggler"), "{}", reports[0]);
}

#[test]
fn executor_wait_is_bounded() {
    let mut runner = mio_runner().executor_shutdown_timeout(Duration::from_millis(50));
    let lp = runner.get_loop().unwrap();
    let reports = record_reports(&lp);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    runner
        .run(async move {
            drop(get_running_loop().unwrap().run_in_executor(move || {
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
                let _ = done_tx.send(());
            }));
        })
        .unwrap();
    runner.close().unwrap();
    assert!(lp.is_closed());
    {
        let reports = reports.borrow();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("did not finish"), "{}", reports[0]);
    }
    // The job goes on in the background and finishes normally.
    release_tx.send(()).unwrap();
    done_rx.recv_timeout(Duration::from_secs(30)).unwrap();
}
