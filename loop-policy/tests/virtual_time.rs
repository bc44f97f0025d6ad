//! The virtual-time test loop: auto-advance keeps a real loop's order, manual control,
//! real work stops the jumps, seeded task order is reproducible, and a property test drives
//! random call_soon / call_later / cancel / advance sequences against a reference model.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use loop_api::{EventLoop, TimerHandle};
use loop_policy::testing::{TestLoop, run_on};
use loop_policy::{Backend, TestLoopPolicy};
use proptest::prelude::*;

fn test_loop() -> EventLoop {
    loop_mio::new_event_loop_with(loop_mio::LoopConfig::virtual_time()).expect("test loop")
}

/// One iteration (stop before run_forever).
fn run_once(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().expect("run_forever");
}

#[test]
fn an_hour_of_sleep_passes_at_once_in_order() {
    let lp = test_loop();
    let clock = lp.virtual_clock().expect("virtual clock");
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.run_until_complete(async move {
        let lp = loop_api::get_running_loop().unwrap();
        let mut tasks = Vec::new();
        for (i, secs) in [3600u64, 60, 1800, 60, 1].into_iter().enumerate() {
            let l = l.clone();
            tasks.push(
                lp.create_task(async move {
                    loop_api::sleep(Duration::from_secs(secs)).await;
                    l.borrow_mut().push(i);
                })
                .unwrap(),
            );
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .unwrap();
    // Earliest deadline first; equal deadlines in creation order.
    assert_eq!(*log.borrow(), [4, 1, 3, 2, 0]);
    assert!(clock.elapsed() >= Duration::from_secs(3600));
    assert!(
        clock.elapsed() < Duration::from_secs(3700),
        "time jumped further than needed"
    );
    lp.close().unwrap();
}

#[test]
fn an_executor_job_in_flight_stops_the_jump() {
    let lp = test_loop();
    let clock = lp.virtual_clock().unwrap();
    let (job_done_at, timer_at) = lp
        .run_until_complete(async move {
            let lp = loop_api::get_running_loop().unwrap();
            let fired_at = Rc::new(RefCell::new(None));
            let f = fired_at.clone();
            let l2 = lp.clone();
            lp.call_later(Duration::from_secs(3600), move || {
                *f.borrow_mut() = Some(l2.time())
            })
            .unwrap();
            let t0 = lp.time();
            // The job takes 50 ms of real time; meanwhile the hour-long timer must not fire.
            lp.run_in_executor(|| std::thread::sleep(Duration::from_millis(50)))
                .await
                .unwrap();
            let job_done_at = lp.time() - t0;
            let still_pending = fired_at.borrow().is_none();
            assert!(still_pending, "the clock jumped while the job was running");
            loop_api::sleep(Duration::from_secs(7200)).await;
            (job_done_at, fired_at.borrow().map(|t| t - t0))
        })
        .unwrap();
    assert!(
        job_done_at < Duration::from_secs(60),
        "virtual time flowed as real time: {job_done_at:?}"
    );
    assert!(timer_at.unwrap() >= Duration::from_secs(3600));
    assert!(clock.elapsed() >= Duration::from_secs(7200));
    lp.close().unwrap();
}

#[test]
fn a_socket_operation_in_flight_stops_the_jump() {
    let lp = test_loop();
    let (c, s) = std::os::unix::net::UnixStream::pair().unwrap();
    c.set_nonblocking(true).unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        std::io::Write::write_all(&mut &s, b"x").unwrap();
        s
    });
    let elapsed = lp
        .run_until_complete(async move {
            let lp = loop_api::get_running_loop().unwrap();
            let t0 = lp.time();
            // A timer far away must not be jumped to while the receive waits for real data.
            let far = lp
                .call_later(Duration::from_secs(3600), || {
                    panic!("jumped to the far timer")
                })
                .unwrap();
            let (n, _) = lp.sock_recvfrom(&c, Vec::with_capacity(4)).await;
            let n = n.map(|(n, _)| n);
            assert_eq!(n.unwrap(), 1);
            far.cancel();
            lp.time() - t0
        })
        .unwrap();
    writer.join().unwrap();
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    lp.close().unwrap();
}

/// With an idle-I/O grace, a receive whose data comes within the grace still stops the jump
/// to a far timer: the loop's wait reported I/O (its task was woken), so it was not quiet.
/// On every backend, a registered socket (on a readiness backend its receive waits parked,
/// and the driver queues its task at once).
#[test]
fn io_within_the_grace_stops_the_jump_on_every_backend() {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        let Ok(lp) = backend.new_event_loop_with(loop_policy::LoopConfig::virtual_time()) else {
            eprintln!("{backend:?} cannot run here: skipped");
            continue;
        };
        let clock = lp.virtual_clock().expect("virtual clock");
        clock.set_idle_io_grace(Some(Duration::from_secs(5)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            std::io::Write::write_all(&mut &client, b"x").unwrap();
            client
        });
        let elapsed = lp
            .run_until_complete(async move {
                let lp = loop_api::get_running_loop().unwrap();
                let server = lp.register_socket(server).unwrap();
                let t0 = lp.time();
                let far = lp
                    .call_later(Duration::from_secs(3600), || {
                        panic!("jumped to the far timer")
                    })
                    .unwrap();
                let (n, _) = lp.sock_recv(&server, Vec::with_capacity(4)).await;
                assert_eq!(n.unwrap(), 1);
                far.cancel();
                lp.time() - t0
            })
            .unwrap();
        writer.join().unwrap();
        assert!(
            elapsed < Duration::from_secs(60),
            "{backend:?}: {elapsed:?}"
        );
        lp.close().unwrap();
    }
}

fn order_with_seed(seed: Option<u64>) -> Vec<usize> {
    let lp = test_loop();
    lp.virtual_clock().unwrap().set_seed(seed);
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..8 {
        let l = log.clone();
        lp.create_task(async move {
            l.borrow_mut().push(i);
            loop_api::yield_now().await;
            l.borrow_mut().push(100 + i);
        })
        .unwrap();
    }
    lp.run_until_complete(loop_api::sleep(Duration::from_secs(1)))
        .unwrap();
    lp.close().unwrap();
    log.take()
}

#[test]
fn a_seed_gives_a_reproducible_task_order() {
    let fifo = order_with_seed(None);
    assert_eq!(
        &fifo[..8],
        &[0, 1, 2, 3, 4, 5, 6, 7],
        "no seed: creation order"
    );
    for seed in 0..5 {
        assert_eq!(
            order_with_seed(Some(seed)),
            order_with_seed(Some(seed)),
            "seed {seed}"
        );
    }
    let differs = (0..10).any(|seed| order_with_seed(Some(seed)) != fifo);
    assert!(differs, "a seed never changed the order");
    let mut sorted = order_with_seed(Some(3));
    sorted.sort_unstable();
    let mut all = fifo.clone();
    all.sort_unstable();
    assert_eq!(sorted, all, "every task step ran exactly once");
}

#[test]
fn test_policy_gives_test_loops_on_worker_threads() {
    let policy = TestLoopPolicy::with_backend(Backend::Mio);
    let handle = std::thread::spawn(move || {
        let lp = loop_api::LoopPolicy::get_event_loop(&policy).expect("a loop on a worker thread");
        assert!(lp.virtual_clock().is_some());
        assert_eq!(
            lp,
            loop_api::LoopPolicy::get_event_loop(&policy).unwrap(),
            "the same loop again"
        );
        let fresh = loop_api::LoopPolicy::new_event_loop(&policy).unwrap();
        assert!(fresh.virtual_clock().is_some());
        fresh.close().unwrap();
        lp.close().unwrap();
    });
    handle.join().unwrap();
}

loop_policy::loop_test!(loop_test_runs_everywhere, |lp| async move {
    let t0 = lp.time();
    loop_api::sleep(Duration::from_millis(20)).await;
    assert!(lp.time() - t0 >= Duration::from_millis(20));
    let t = lp.create_task(async { 6 * 7 }).unwrap();
    assert_eq!(t.await.unwrap(), 42);
});

#[test]
fn run_on_reports_the_backend_it_ran() {
    let ran = Rc::new(RefCell::new(Vec::new()));
    for which in [TestLoop::Real(Backend::Mio), TestLoop::Virtual] {
        let r = ran.clone();
        run_on(which, move |lp| async move {
            r.borrow_mut()
                .push((lp.backend_name(), lp.virtual_clock().is_some()));
        });
    }
    assert_eq!(ran.borrow()[0], ("mio", false));
    assert!(ran.borrow()[1].1, "the virtual loop has a virtual clock");
}

/// What a test does to the loop, in the property test.
#[derive(Debug, Clone)]
enum Step {
    CallSoon,
    CallLater(u64),
    Cancel(usize),
    Advance(u64),
    RunOnce,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::CallSoon),
        3 => (0u64..50).prop_map(Step::CallLater),
        1 => (0usize..64).prop_map(Step::Cancel),
        2 => (0u64..40).prop_map(Step::Advance),
        3 => Just(Step::RunOnce),
    ]
}

/// asyncio's `_run_once` for callbacks that schedule nothing: due timers join the ready
/// queue (earliest first, then in scheduling order), then exactly the callbacks ready at
/// that point run, in FIFO order.
#[derive(Default)]
struct Model {
    now: u64,
    ready: VecDeque<usize>,
    timers: Vec<(u64, usize, usize)>, // (when, seq, id)
    cancelled: Vec<bool>,
    ran: Vec<usize>,
    seq: usize,
}

impl Model {
    fn run_once(&mut self) {
        self.timers.sort();
        let due: Vec<_> = self
            .timers
            .iter()
            .filter(|t| t.0 <= self.now)
            .cloned()
            .collect();
        self.timers.retain(|t| t.0 > self.now);
        self.ready.extend(due.into_iter().map(|t| t.2));
        for _ in 0..self.ready.len() {
            let id = self.ready.pop_front().unwrap();
            if !self.cancelled[id] {
                self.ran.push(id);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn virtual_loop_matches_the_reference_model(steps in proptest::collection::vec(step(), 1..60)) {
        let lp = test_loop();
        let clock = lp.virtual_clock().unwrap();
        let _manual = clock.pause_auto_advance();
        let ran = Rc::new(RefCell::new(Vec::new()));
        let mut handles: Vec<(Option<TimerHandle>, Option<loop_api::Handle>)> = Vec::new();
        let mut model = Model::default();
        for s in steps {
            match s {
                Step::CallSoon => {
                    let id = handles.len();
                    let r = ran.clone();
                    let h = lp.call_soon(move || r.borrow_mut().push(id)).unwrap();
                    handles.push((None, Some(h)));
                    model.cancelled.push(false);
                    model.ready.push_back(id);
                }
                Step::CallLater(ms) => {
                    let id = handles.len();
                    let r = ran.clone();
                    let h = lp.call_later(Duration::from_millis(ms), move || r.borrow_mut().push(id)).unwrap();
                    handles.push((Some(h), None));
                    model.cancelled.push(false);
                    model.timers.push((model.now + ms, model.seq, id));
                    model.seq += 1;
                }
                Step::Cancel(k) if !handles.is_empty() => {
                    let k = k % handles.len();
                    match &handles[k] {
                        (Some(t), _) => t.cancel(),
                        (_, Some(h)) => h.cancel(),
                        _ => {}
                    }
                    model.cancelled[k] = true;
                }
                Step::Cancel(_) => {}
                Step::Advance(ms) => {
                    clock.advance(Duration::from_millis(ms));
                    model.now += ms;
                }
                Step::RunOnce => {
                    run_once(&lp);
                    model.run_once();
                }
            }
        }
        run_once(&lp);
        model.run_once();
        prop_assert_eq!(&*ran.borrow(), &model.ran);
        lp.close().unwrap();
    }
}
