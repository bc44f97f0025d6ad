//! An hour of a rate-limited client (one request every 10 s, 360 requests) against a real
//! echo server, on a virtual-time test loop: the sleeps jump, the real socket round trips
//! still happen (each one stops the jumps until its answer is back), and the test takes
//! milliseconds.
//!
//! The server listens on the same test loop, so an accept is always in flight: the loop's
//! idle-I/O grace (`VirtualClock::set_idle_io_grace`) lets time jump once no I/O has
//! happened for a moment. A second test runs the server on its own thread instead, where
//! the default strict rule applies.

use std::time::{Duration, Instant};

use loop_policy::testing::{TestLoop, run_on};

#[test]
fn an_hour_of_rate_limited_requests_in_milliseconds() {
    let started = Instant::now();
    run_on(TestLoop::Virtual, |lp| async move {
        let clock = lp.virtual_clock().expect("a test loop");
        clock.set_idle_io_grace(Some(Duration::from_micros(200)));
        let listener = loop_net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = lp
            .create_task(examples::echo_streams::serve(lp.clone(), listener))
            .unwrap();
        let t0 = lp.time();
        let answers = examples::rate_limit::fetch_all(addr, 360, Duration::from_secs(10))
            .await
            .unwrap();
        let virtual_elapsed = lp.time() - t0;
        assert_eq!(answers, (0..360).collect::<Vec<u32>>());
        // 359 waits of 10 s between 360 requests: just under an hour of virtual time.
        assert!(
            virtual_elapsed >= Duration::from_secs(3590),
            "{virtual_elapsed:?}"
        );
        assert!(clock.elapsed() >= Duration::from_secs(3590));
        server.cancel();
    });
    // Not asserted (tests never assert a duration): shown for the reader.
    eprintln!(
        "an hour of virtual time took {:?} of real time",
        started.elapsed()
    );
}

#[test]
fn an_hour_against_a_server_on_another_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lp = loop_policy::Backend::Mio.new_event_loop().unwrap();
        let listener =
            loop_net::TcpListener::bind_on(&lp, "127.0.0.1:0".parse().unwrap(), Default::default())
                .unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        let _ = lp.run_until_complete(examples::echo_streams::serve(lp.clone(), listener));
    });
    let addr = rx.recv().unwrap();
    run_on(TestLoop::Virtual, move |lp| async move {
        let t0 = lp.time();
        let answers = examples::rate_limit::fetch_all(addr, 360, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(answers.len(), 360);
        assert!(lp.time() - t0 >= Duration::from_secs(3590));
    });
}
