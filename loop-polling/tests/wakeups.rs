//! Wake-ups from other threads reach a loop blocked in its wait, every one of them. In
//! polling's poll(2) mode (CI runs these tests with `--cfg polling_test_poll_backend`) a wait
//! racing a `notify()` used to leave polling's `notified` flag set, after which no
//! notification woke the loop again (see `PollingSelector::wait`); executor jobs then hung.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Threads that each hand the loop a callback and wait until it ran, many times over: each
/// callback arrives while the loop waits with nothing else to do, so each needs its wake-up.
#[test]
fn every_wake_up_from_another_thread_reaches_a_blocked_loop() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 3000;
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        let lp = loop_polling::new_event_loop().expect("a loop");
        let handle = lp.handle();
        let senders: Vec<_> = (0..THREADS)
            .map(|_| {
                let handle = handle.clone();
                thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let (ran_tx, ran_rx) = mpsc::channel();
                        handle
                            .call_soon_threadsafe(move || {
                                let _ = ran_tx.send(());
                            })
                            .expect("call_soon_threadsafe");
                        if ran_rx.recv_timeout(Duration::from_secs(30)).is_err() {
                            return false;
                        }
                    }
                    true
                })
            })
            .collect();
        let stopper = thread::spawn(move || {
            let all = senders.into_iter().all(|s| s.join().expect("a sender"));
            handle.stop();
            all
        });
        lp.run_forever().expect("run_forever");
        let all = stopper.join().expect("the stopper");
        lp.close().expect("close");
        let _ = done_tx.send(all);
    });
    let all = done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the loop stayed blocked: a wake-up from another thread was lost");
    assert!(all, "a callback did not run within 30 s of its wake-up");
    runner.join().expect("the loop's thread");
}
