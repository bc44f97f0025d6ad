//! The child-process streamer: lines arrive one by one while the timer ticks, on every
//! backend; and the compiled example program does the same.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use examples::subprocess::{Event, stream_lines};
use loop_policy::Backend;

fn events_on(backend: Backend) -> Vec<Event> {
    let lp = backend.new_event_loop().unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    let e = events.clone();
    let script = "for i in 1 2 3; do echo line $i; sleep 0.1; done; exit 4";
    let code = lp
        .run_until_complete(stream_lines(
            lp.clone(),
            script,
            Duration::from_millis(10),
            move |ev| e.borrow_mut().push(ev),
        ))
        .unwrap()
        .unwrap();
    lp.close().unwrap();
    assert_eq!(code, 4);
    events.take()
}

fn check(events: &[Event]) {
    let lines: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Line(_)))
        .collect();
    assert_eq!(
        lines,
        [
            &Event::Line("line 1".into()),
            &Event::Line("line 2".into()),
            &Event::Line("line 3".into())
        ]
    );
    assert_eq!(events.last(), Some(&Event::Exit(4)));
    let first_line = events
        .iter()
        .position(|e| matches!(e, Event::Line(_)))
        .unwrap();
    let ticks_while_waiting = events[first_line..]
        .iter()
        .filter(|e| matches!(e, Event::Tick(_)))
        .count();
    assert!(
        ticks_while_waiting > 0,
        "the timer never ticked while the child's output was awaited: {events:?}"
    );
}

#[test]
fn lines_stream_while_the_timer_ticks_on_mio() {
    check(&events_on(Backend::Mio));
}

#[test]
fn lines_stream_while_the_timer_ticks_on_the_default_backend() {
    check(&events_on(Backend::Auto));
}

/// The compiled example program (cargo builds examples for `cargo test`).
#[test]
fn the_example_program_streams_a_command() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples").join("subprocess_stream"));
    let Some(bin) = bin.filter(|b| b.is_file()) else {
        eprintln!(
            "skipped: the subprocess_stream example is not built (run `cargo test -p examples`)"
        );
        return;
    };
    let out = Command::new(bin)
        .arg("echo alpha; sleep 0.3; echo beta; exit 3")
        .env("LOOP_BACKEND", "mio")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let alpha = stdout.find("child: alpha").expect("alpha");
    let beta = stdout.find("child: beta").expect("beta");
    let tick = stdout.find("tick 1").expect("a tick");
    assert!(alpha < tick && tick < beta, "{stdout}");
    assert!(stdout.contains("child exited with 3"), "{stdout}");
}
