//! The Selector contract on this backend, in whichever mode it was built (epoll, or poll(2)
//! with `--cfg polling_test_poll_backend`): what `ReadinessDriver` relies on.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use loop_core::{Event, Interest, Readiness, Registration, Selector};
use loop_polling::{Mechanism, PollingSelector};

const NOW: Option<Duration> = Some(Duration::ZERO);

/// The tests open and close fds; one at a time, so no test sees another's fd reuse a number.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn select(sel: &mut PollingSelector) -> Vec<Event> {
    let mut events = Vec::new();
    sel.select(&mut events, NOW).unwrap();
    events
}

/// Asserts that a select of `wait` reports nothing and is not woken early: a stale fd that
/// kept waking the poller (poll(2)'s POLLHUP/POLLNVAL) would make the loop spin.
fn assert_quiet_for(sel: &mut PollingSelector, wait: Duration) {
    let mut events = Vec::new();
    let start = Instant::now();
    sel.select(&mut events, Some(wait)).unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert!(start.elapsed() >= wait, "woken after {:?}", start.elapsed());
}

/// `LOOP_POLLING_EXPECT` (CI sets it for the poll(2) run) names the mechanism this build must
/// use, so a switch that silently stopped working fails here.
#[test]
fn mechanism_is_the_expected_one() {
    let _serial = serial();
    let m = loop_polling::mechanism().unwrap();
    let sel = PollingSelector::new().unwrap();
    assert_eq!(sel.mechanism(), m);
    println!("mechanism: {m}");
    match std::env::var("LOOP_POLLING_EXPECT") {
        Ok(want) => assert_eq!(m.name(), want),
        Err(_) if cfg!(target_os = "linux") => {
            assert!(matches!(m, Mechanism::Epoll | Mechanism::Poll), "{m}")
        }
        Err(_) => {}
    }
}

/// The answers `ReadinessDriver` acts on are typed, in every mode (epoll gives errno values,
/// polling's poll(2) set bare `ErrorKind`s: the selector never has to fabricate either).
#[test]
fn registration_answers_are_typed() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let token = fd as usize;
    let r = Interest::READABLE;
    assert!(matches!(
        sel.reregister(fd, token, r),
        Registration::NotRegistered
    ));
    assert!(matches!(sel.register(fd, token, r), Registration::Done));
    let again = sel.register(fd, token, r);
    assert!(
        matches!(again, Registration::AlreadyRegistered),
        "{again:?}"
    );
    assert!(matches!(sel.reregister(fd, token, r), Registration::Done));
    assert!(matches!(sel.deregister(fd), Registration::Done));
    assert!(matches!(sel.deregister(fd), Registration::NotRegistered));
    match sel.register(-1, 0, r) {
        Registration::Refused(e) => assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}"),
        other => panic!("register(-1) answered {other:?}"),
    }
}

#[test]
fn one_shot_and_reregister_reports_current_readiness() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    assert!(sel.is_oneshot());
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    assert!(matches!(
        sel.register(fd, 7, Interest::READABLE),
        Registration::Done
    ));
    assert!(select(&mut sel).is_empty());
    b.write_all(b"x").unwrap();
    let events = select(&mut sel);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].token, 7);
    assert!(events[0].ready.is_readable());
    // Disarmed now, though still readable.
    assert!(select(&mut sel).is_empty());
    // Re-arming (NotRegistered then register, in poll(2) mode) reports the readiness again.
    match sel.reregister(fd, 7, Interest::READABLE) {
        Registration::Done => {}
        Registration::NotRegistered => {
            assert!(matches!(
                sel.register(fd, 7, Interest::READABLE),
                Registration::Done
            ));
        }
        other => panic!("reregister answered {other:?}"),
    }
    let events = select(&mut sel);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].token, 7);
}

#[test]
fn hang_up_is_reported_once_and_counts_as_both() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    sel.register(a.as_raw_fd(), 3, Interest::WRITABLE)
        .into_result()
        .unwrap();
    let _ = select(&mut sel); // writable at once
    drop(b);
    // A disarmed fd whose peer hung up stays quiet (poll(2) would report POLLHUP forever).
    assert_quiet_for(&mut sel, Duration::from_millis(30));
}

#[test]
fn closed_fd_does_not_wake_every_wait() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    sel.register(a.as_raw_fd(), 5, Interest::READABLE)
        .into_result()
        .unwrap();
    drop(a); // closed while still registered, as a user may do
    // poll(2) reports POLLNVAL at most once (as both directions); epoll forgets it at once.
    let first = select(&mut sel);
    assert!(first.len() <= 1, "{first:?}");
    if let Some(ev) = first.first() {
        assert_eq!(ev.token, 5);
        assert_eq!(ev.ready, Readiness::READABLE.union(Readiness::WRITABLE));
    }
    assert_quiet_for(&mut sel, Duration::from_millis(30));
}

#[test]
fn waker_ends_a_blocked_select() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    let wake = sel.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        wake();
    });
    let mut events = Vec::new();
    sel.select(&mut events, None).unwrap();
    assert!(events.is_empty(), "the waker's own event is left out");
    t.join().unwrap();
}

/// `register_socket`: on epoll/kqueue an fd stays armed after it reports (edge mode: a new
/// edge is reported again without re-arming); poll(2) answers `Unsupported` (one-shot only).
#[test]
fn register_socket_is_edge_triggered_where_the_os_can() {
    let _serial = serial();
    let mut sel = PollingSelector::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let answer = sel.register_socket(fd, 7);
    if sel.mechanism() == Mechanism::Poll {
        assert!(
            matches!(answer, Registration::Unsupported),
            "poll(2) has no edge mode: {answer:?}"
        );
        return;
    }
    assert!(matches!(answer, Registration::Done), "{answer:?}");
    let again = sel.register_socket(fd, 7);
    assert!(
        matches!(again, Registration::AlreadyRegistered),
        "{again:?}"
    );
    assert!(matches!(sel.reregister_socket(fd, 7), Registration::Done));
    // Writable at once (registration reports the current state).
    let first = select(&mut sel);
    assert!(
        first.iter().any(|e| e.token == 7 && e.ready.is_writable()),
        "{first:?}"
    );
    // No new edge: quiet, not re-reported as a level-triggered fd would be.
    assert_quiet_for(&mut sel, Duration::from_millis(20));
    // Two edges in a row with no re-arm between them.
    for _ in 0..2 {
        b.write_all(b"x").unwrap();
        let evs = select(&mut sel);
        assert!(
            evs.iter().any(|e| e.token == 7 && e.ready.is_readable()),
            "{evs:?}"
        );
    }
    assert!(matches!(sel.deregister(fd), Registration::Done));
}
