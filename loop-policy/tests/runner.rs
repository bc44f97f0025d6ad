//! `run` (asyncio.run) and `Runner` (asyncio.Runner) on the mio backend.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use loop_api::{LoopError, get_running_loop};
use loop_policy::{Backend, Runner};

/// `run` and `Runner::new` use the global policy: these tests install mio there, one at a time.
static GLOBAL: Mutex<()> = Mutex::new(());

fn with_mio_policy() -> MutexGuard<'static, ()> {
    let guard = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    loop_policy::install(Backend::Mio);
    guard
}

/// Sets its flag when dropped: shows that a future was dropped (cancelled).
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn run_returns_the_value_and_closes_the_loop() {
    let _g = with_mio_policy();
    let (value, lp) = loop_policy::run(async {
        loop_api::sleep(Duration::from_millis(1)).await;
        (42, get_running_loop().unwrap())
    })
    .unwrap();
    assert_eq!(value, 42);
    assert!(lp.is_closed());
    assert_eq!(lp.backend_name(), "mio");
}

#[test]
fn run_makes_the_loop_current_then_unsets_it() {
    let _g = with_mio_policy();
    let same = loop_policy::run(async {
        loop_policy::get_event_loop().unwrap() == get_running_loop().unwrap()
    })
    .unwrap();
    assert!(same);
    assert!(matches!(
        loop_policy::get_event_loop(),
        Err(LoopError::NoCurrentLoop { .. })
    ));
}

#[test]
fn run_inside_a_running_loop_is_refused() {
    let _g = with_mio_policy();
    let inner = loop_policy::run(async { loop_policy::run(async { 1 }) }).unwrap();
    assert!(
        matches!(inner, Err(LoopError::AnotherLoopRunning)),
        "{inner:?}"
    );
}

#[test]
fn run_reports_a_panic() {
    let _g = with_mio_policy();
    let r = loop_policy::run(async {
        if true {
            panic!("boom");
        }
    });
    match r {
        Err(LoopError::Panicked(msg)) => assert!(msg.contains("boom"), "{msg}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[test]
fn run_cancels_leftover_tasks_promptly() {
    let _g = with_mio_policy();
    let leftover = Rc::new(Cell::new(false));
    let cancelled = Rc::new(Cell::new(false));
    let (l, c) = (leftover.clone(), cancelled.clone());
    loop_policy::run(async move {
        let lp = get_running_loop().unwrap();
        let flag = DropFlag(l);
        lp.create_task(async move {
            let _flag = flag;
            loop_api::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
        let flag = DropFlag(c);
        let t = lp
            .create_task(async move {
                let _flag = flag;
                loop_api::sleep(Duration::from_secs(3600)).await;
            })
            .unwrap();
        loop_api::yield_now().await;
        t.cancel();
    })
    .unwrap();
    assert!(leftover.get(), "the leftover task was dropped");
    assert!(cancelled.get(), "the cancelled task was dropped");
}

#[test]
fn run_in_executor_inside_run() {
    let _g = with_mio_policy();
    let v = loop_policy::run(async {
        let lp = get_running_loop().unwrap();
        lp.run_in_executor(|| (1..=10u64).product::<u64>()).await
    })
    .unwrap();
    assert_eq!(v, Ok(3_628_800));
}

#[test]
fn runner_reuses_its_loop() {
    let mut runner = Runner::with_factory(|| Backend::Mio.new_event_loop());
    let lp = runner.get_loop().unwrap();
    let first = runner.run(async { get_running_loop().unwrap() }).unwrap();
    // A task started in one run goes on in the next.
    let counter = Rc::new(Cell::new(0));
    let c = counter.clone();
    let ticker = lp
        .create_task(async move {
            for _ in 0..3 {
                c.set(c.get() + 1);
                loop_api::yield_now().await;
            }
        })
        .unwrap();
    runner.run(loop_api::yield_now()).unwrap();
    assert!(counter.get() >= 1, "the task ran during the first run");
    let second = runner.run(ticker).unwrap();
    assert_eq!(second, Ok(()));
    assert_eq!(counter.get(), 3);
    assert_eq!(first, lp);
    assert_eq!(
        runner.run(async { get_running_loop().unwrap() }).unwrap(),
        lp
    );
    runner.close().unwrap();
    assert!(lp.is_closed());
    runner.close().unwrap();
    assert!(matches!(runner.run(async {}), Err(LoopError::Closed)));
    assert!(matches!(runner.get_loop(), Err(LoopError::Closed)));
}

#[test]
fn runner_with_factory_does_not_set_the_current_loop() {
    let _g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut runner = Runner::with_factory(|| Backend::Mio.new_event_loop());
    let current = runner
        .run(async { loop_policy::get_event_loop().is_ok() })
        .unwrap();
    assert!(!current);
}

#[test]
fn runner_new_sets_the_current_loop_until_closed() {
    let _g = with_mio_policy();
    let mut runner = Runner::new().debug(true);
    let lp = runner.get_loop().unwrap();
    assert!(lp.get_debug());
    assert_eq!(loop_policy::get_event_loop().unwrap(), lp);
    assert!(
        runner
            .run(async { loop_policy::get_event_loop().unwrap() == get_running_loop().unwrap() })
            .unwrap()
    );
    drop(runner);
    assert!(lp.is_closed(), "dropping the runner closes it");
    assert!(loop_policy::get_event_loop().is_err());
}

#[test]
fn runner_factory_error_is_returned() {
    let mut runner = Runner::with_factory(|| {
        Err(LoopError::Unavailable {
            backend: "test".into(),
            reason: "this factory always fails".into(),
        })
    });
    assert!(matches!(
        runner.run(async {}),
        Err(LoopError::Unavailable { .. })
    ));
    runner.close().unwrap();
}

/// Records whether it was dropped inside the running loop.
struct DropInLoop(Rc<Cell<Option<bool>>>);

impl Drop for DropInLoop {
    fn drop(&mut self) {
        self.0.set(Some(get_running_loop().is_ok()));
    }
}

#[test]
fn run_cancels_leftover_tasks_inside_the_running_loop() {
    let _g = with_mio_policy();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let pending = loop_policy::run(async move {
        let lp = get_running_loop().unwrap();
        let flag = DropInLoop(s);
        lp.create_task(async move {
            let _flag = flag;
            loop_api::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
        loop_api::yield_now().await;
        lp.all_tasks().len()
    })
    .unwrap();
    assert_eq!(
        pending, 2,
        "all_tasks lists the main task and the leftover one"
    );
    assert_eq!(
        seen.get(),
        Some(true),
        "the leftover task finished its cancellation in the running loop, as asyncio.run does"
    );
}
