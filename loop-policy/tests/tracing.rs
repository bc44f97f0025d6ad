//! With the `tracing` feature, on every backend (real and virtual clock): the loop's reports
//! (a slow callback, a task's panic) are `tracing` events when a subscriber is in place, each
//! task poll is a `poll` span with the task's id and name (a task's panic is reported inside
//! it), and making a loop says which backend it runs on and why; when `Auto` falls back
//! (io_uring turned off), the reason is a WARN event instead of a line on stderr.
//!
//! The subscriber is a small one written here that records everything, set for the test's
//! thread only (`tracing::subscriber::with_default`).
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt::Debug;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loop_api::{AnyTask, EventLoop, TaskError};
use loop_policy::Backend;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// An event: its target, level and fields (`message` too), and the fields of the span it was
/// made in.
#[derive(Clone, Debug)]
struct Recorded {
    target: String,
    level: Level,
    fields: HashMap<String, String>,
    span: Option<HashMap<String, String>>,
}

#[derive(Default)]
struct State {
    events: Vec<Recorded>,
    /// Each span's name and fields, by id (ids are never reused here).
    spans: HashMap<u64, (String, HashMap<String, String>)>,
    /// The spans entered on the (one) thread, innermost last.
    entered: Vec<u64>,
}

/// Records every span and event.
#[derive(Clone, Default)]
struct Collector {
    state: Arc<Mutex<State>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = HashMap::new();
        span.record(&mut Fields(&mut fields));
        let name = span.metadata().name().to_string();
        self.state.lock().unwrap().spans.insert(id, (name, fields));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let mut state = self.state.lock().unwrap();
        let span = state.entered.last().map(|id| state.spans[id].1.clone());
        state.events.push(Recorded {
            target: event.metadata().target().to_string(),
            level: *event.metadata().level(),
            fields,
            span,
        });
    }
    fn enter(&self, span: &Id) {
        self.state.lock().unwrap().entered.push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut state = self.state.lock().unwrap();
        let at = state.entered.iter().rposition(|&s| s == span.into_u64());
        at.map(|i| state.entered.remove(i));
    }
}

impl Collector {
    fn events(&self, report: &str) -> Vec<Recorded> {
        let state = self.state.lock().unwrap();
        let of = |e: &&Recorded| e.fields.get("report").map(String::as_str) == Some(report);
        state.events.iter().filter(of).cloned().collect()
    }

    /// The `poll` spans of the task with id `id`.
    fn poll_spans(&self, id: u64) -> Vec<HashMap<String, String>> {
        let state = self.state.lock().unwrap();
        let of = |(name, f): &&(String, HashMap<String, String>)| {
            name == "poll" && f.get("task.id") == Some(&id.to_string())
        };
        state
            .spans
            .values()
            .filter(of)
            .map(|(_, f)| f.clone())
            .collect()
    }
}

/// A slow callback and a panicking task on `lp` (debug mode on), seen by `c`.
fn reports_and_spans(lp: &EventLoop, c: &Collector, on: &str) {
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(10));
    lp.call_soon(|| std::thread::sleep(Duration::from_millis(30)))
        .expect("call_soon");
    let task = lp
        .create_task_named("traced-0x5eed", async {
            loop_api::yield_now().await;
            panic!("boom-0x5eed");
        })
        .expect("create_task");
    let id = AnyTask::from(&task).id();
    let out = lp.run_until_complete(task).expect("run");
    assert!(
        matches!(out, Err(TaskError::Panicked(_))),
        "{out:?} on {on}"
    );

    let slow = c.events("slow_callback");
    assert_eq!(slow.len(), 1, "one slow callback on {on}: {slow:?}");
    assert_eq!(
        (slow[0].target.as_str(), slow[0].level),
        ("loop_core", Level::WARN)
    );
    assert!(slow[0].fields.contains_key("callback"), "{slow:?}");
    assert!(slow[0].fields.contains_key("duration_secs"), "{slow:?}");

    let panics = c.events("panic");
    assert_eq!(panics.len(), 1, "one panic on {on}: {panics:?}");
    let p = &panics[0];
    assert_eq!(p.level, Level::ERROR, "{p:?}");
    assert_eq!(
        p.fields.get("task").map(String::as_str),
        Some("traced-0x5eed")
    );
    assert_eq!(
        p.fields.get("panic").map(String::as_str),
        Some("boom-0x5eed")
    );
    let span = p
        .span
        .as_ref()
        .expect("the panic is reported inside the task's poll span");
    assert_eq!(span.get("task.id"), Some(&id.to_string()), "{p:?}");

    let polls = c.poll_spans(id);
    assert_eq!(
        polls.len(),
        2,
        "a span per poll (two polls) on {on}: {polls:?}"
    );
    for f in &polls {
        assert_eq!(
            f.get("task.name").map(String::as_str),
            Some("traced-0x5eed")
        );
    }
}

#[test]
fn reports_are_events_and_polls_are_spans_on_every_backend() {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if !backend.is_available() {
            eprintln!("{backend}: skipped ({:?})", backend.why_unavailable());
            continue;
        }
        for virtual_time in [false, true] {
            let c = Collector::default();
            let on = format!("{backend} (virtual time: {virtual_time})");
            tracing::subscriber::with_default(c.clone(), || {
                let lp = if virtual_time {
                    backend.new_virtual_event_loop()
                } else {
                    backend.new_event_loop()
                }
                .expect("new loop");
                let chosen = c.state.lock().unwrap().events.clone();
                let chosen: Vec<_> = chosen
                    .iter()
                    .filter(|e| e.target == "loop_policy")
                    .collect();
                assert_eq!(
                    chosen.len(),
                    1,
                    "one backend-chosen event on {on}: {chosen:?}"
                );
                assert_eq!(chosen[0].level, Level::DEBUG);
                assert_eq!(chosen[0].fields["backend"], backend.name(), "{chosen:?}");
                assert_eq!(
                    chosen[0].fields["reason"],
                    format!("{backend} was asked for")
                );
                reports_and_spans(&lp, &c, &on);
                lp.close().expect("close");
            });
        }
    }
}

const CHILD_VAR: &str = "TRACING_FALLBACK_CHILD";

/// With io_uring turned off, `Auto` says why it chose mio: a WARN event (and nothing on
/// stderr) under a subscriber, and the reason in the DEBUG event of the loop's backend.
#[test]
fn auto_fallback_reason_is_an_event() {
    if std::env::var_os(CHILD_VAR).is_some() {
        let c = Collector::default();
        tracing::subscriber::with_default(c.clone(), || {
            let lp = Backend::Auto.new_event_loop().expect("new loop");
            lp.close().expect("close");
        });
        let state = c.state.lock().unwrap();
        for e in state.events.iter().filter(|e| e.target == "loop_policy") {
            println!("event {} {:?}", e.level, e.fields.get("reason"));
        }
        return;
    }
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["auto_fallback_reason_is_an_event", "--exact", "--nocapture"])
        .env(CHILD_VAR, "1")
        .env("LOOP_URING", "off")
        .env_remove(loop_policy::ENV_VAR)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let warn = stdout
        .lines()
        .filter(|l| l.contains("event WARN") && l.contains("auto chose mio: uring is unavailable"));
    assert_eq!(warn.count(), 1, "one fallback warning:\n{stdout}");
    let chosen = stdout.lines().filter(|l| {
        l.contains("event DEBUG") && l.contains("auto chose mio: uring is unavailable")
    });
    assert_eq!(
        chosen.count(),
        1,
        "the backend-chosen event says why:\n{stdout}"
    );
    assert!(
        !stderr.contains("loop-policy: auto chose"),
        "the fallback went to tracing, not to stderr:\n{stderr}"
    );
}
