//! The Selector contract on mio: what `ReadinessDriver` relies on, with typed registration
//! answers (epoll's `EEXIST`/`ENOENT` become `AlreadyRegistered`/`NotRegistered`; kqueue's
//! `EV_ADD` modifies a known fd, so there `register` of a known fd is simply `Done`).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use loop_core::{Interest, Readiness, Registration, Selector};
use loop_mio::MioSelector;

fn select(sel: &mut MioSelector) -> Vec<loop_core::Event> {
    let mut events = Vec::new();
    sel.select(&mut events, Some(Duration::ZERO)).unwrap();
    events
}

#[test]
fn registration_answers_are_typed() {
    let mut sel = MioSelector::new().unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let token = fd as usize;
    let r = Interest::READABLE;
    let linux = cfg!(any(target_os = "linux", target_os = "android"));
    if linux {
        let answer = sel.reregister(fd, token, r);
        assert!(matches!(answer, Registration::NotRegistered), "{answer:?}");
    }
    assert!(matches!(sel.register(fd, token, r), Registration::Done));
    if linux {
        let again = sel.register(fd, token, r);
        assert!(
            matches!(again, Registration::AlreadyRegistered),
            "{again:?}"
        );
    }
    assert!(matches!(sel.reregister(fd, token, r), Registration::Done));
    assert!(matches!(sel.deregister(fd), Registration::Done));
    if linux {
        // A regular file: epoll refuses it, and says why.
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        match sel.register(file.as_raw_fd(), 9, r) {
            Registration::Refused(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}")
            }
            other => panic!("register(regular file) answered {other:?}"),
        }
    }
}

/// mio is edge-triggered: `register_socket` (the default) registers for both directions and
/// reports each new edge with no re-arm; a hang-up is reported as both directions plus
/// `Readiness::CLOSED`.
#[test]
fn register_socket_is_edge_triggered_and_reports_closed() {
    let mut sel = MioSelector::new().unwrap();
    assert!(!sel.is_oneshot());
    assert!(sel.reports_read_closed());
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    assert!(matches!(sel.register_socket(fd, 7), Registration::Done));
    let first = select(&mut sel);
    assert!(
        first.iter().any(|e| e.token == 7 && e.ready.is_writable()),
        "{first:?}"
    );
    for _ in 0..2 {
        b.write_all(b"x").unwrap();
        let evs = select(&mut sel);
        assert!(
            evs.iter().any(|e| e.token == 7 && e.ready.is_readable()),
            "{evs:?}"
        );
    }
    drop(b);
    let evs = select(&mut sel);
    let ev = evs.iter().find(|e| e.token == 7).expect("hang-up event");
    assert!(ev.ready.is_closed(), "{ev:?}");
    assert!(ev.ready.is_readable(), "{ev:?}");
    assert_ne!(ev.ready, Readiness::NONE);
    assert!(matches!(sel.deregister(fd), Registration::Done));
}
