//! The loop monitor over TCP (and a Unix socket), on every backend: `ps`, `where`, `cancel`,
//! `stats` and bad commands against a loop with named tasks on another thread, and `ps`
//! answered while that loop is blocked inside a task.
//!
//! The tests of this file share the process's registry of loops: each looks only at the
//! lines of its own tasks (ids are unique in the process).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loop_api::TaskError;
use loop_policy::Backend;
use loop_policy::monitor::{self, Monitor};

/// Generous limit for what should take milliseconds (the machine is shared and noisy).
const WATCHDOG: Duration = Duration::from_secs(30);

fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Mio, Backend::Polling];
    if Backend::Uring.why_unavailable().is_none() {
        all.push(Backend::Uring);
    }
    all
}

/// A monitor connection: sends a line, reads the reply (lines up to an empty one).
struct Client<S: std::io::Read + Write> {
    reader: BufReader<S>,
}

impl<S: std::io::Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        let mut c = Client {
            reader: BufReader::new(stream),
        };
        let greeting = c.reply();
        assert!(greeting[0].contains("loop monitor"), "{greeting:?}");
        c
    }

    fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "the monitor closed the connection after {lines:?}");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                return lines;
            }
            lines.push(line.to_string());
        }
    }

    fn ask(&mut self, command: &str) -> Vec<String> {
        let stream = self.reader.get_mut();
        stream.write_all(format!("{command}\n").as_bytes()).unwrap();
        self.reply()
    }

    /// Asks `command` until `ok` holds for the reply (the loops publish as they run).
    fn ask_until(&mut self, command: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let reply = self.ask(command);
            if ok(&reply) {
                return reply;
            }
            assert!(
                start.elapsed() < WATCHDOG,
                "{command}: never got it: {reply:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn connect(m: &Monitor) -> Client<TcpStream> {
    Client::new(TcpStream::connect(m.local_addr()).unwrap())
}

/// The `ps` line of task `id`, split in columns.
fn ps_line(ps: &[String], id: u64) -> Option<Vec<String>> {
    ps.iter()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(&id.to_string()))
}

/// What the monitored program says: its tasks' ids, then how the sleeper ended.
enum Said {
    Ids { sleeper: u64, watcher: u64 },
    SleeperEnded(Result<(), TaskError>),
}

/// A loop on its own thread with two named tasks: `sleeper` (sleeps forever, 5 ms at a time)
/// and `watcher` (awaits the sleeper's task); the loop ends when told.
fn program(
    backend: Backend,
) -> (
    mpsc::Receiver<Said>,
    mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let lp = backend.new_event_loop().unwrap();
        let l = lp.clone();
        lp.run_until_complete(async move {
            let sleeper = l
                .create_task_named("sleeper", async {
                    loop {
                        loop_api::sleep(Duration::from_millis(5)).await;
                    }
                })
                .unwrap();
            let sleeper_id = loop_api::AnyTask::from(&sleeper).id();
            let watcher = l.create_task_named("watcher", sleeper).unwrap();
            let watcher_id = loop_api::AnyTask::from(&watcher).id();
            tx.send(Said::Ids {
                sleeper: sleeper_id,
                watcher: watcher_id,
            })
            .unwrap();
            let ended = watcher.await.unwrap();
            tx.send(Said::SleeperEnded(ended)).unwrap();
            // Holds the loop (blocked) until the test has looked at the ended task.
            let _ = done_rx.recv();
        })
        .unwrap();
        lp.close().unwrap();
    });
    (rx, done_tx, t)
}

#[test]
fn ps_where_cancel_stats_and_bad_commands_on_every_backend() {
    let m = monitor::start("127.0.0.1:0").unwrap();
    for backend in backends() {
        let (said, done, thread) = program(backend);
        let Said::Ids { sleeper, watcher } = said.recv().unwrap() else {
            panic!("ids first");
        };
        let mut c = connect(&m);

        let ps = c.ask_until("ps", |r| {
            ps_line(r, sleeper).is_some_and(|cols| cols[3] != "0") && ps_line(r, watcher).is_some()
        });
        let header: Vec<&str> = ps[0].split_whitespace().collect();
        assert_eq!(
            header,
            [
                "ID", "LOOP", "STATE", "POLLS", "BUSY", "IDLE", "CREATED", "NAME"
            ]
        );
        let cols = ps_line(&ps, sleeper).unwrap();
        assert_eq!(cols.last().unwrap(), "sleeper", "{backend:?}: {cols:?}");
        assert!(
            ["Pending", "Running"].contains(&cols[2].as_str()),
            "{cols:?}"
        );
        assert!(cols[6].contains("monitor.rs"), "creation site: {cols:?}");
        let loop_id = cols[1].clone();
        assert_eq!(ps_line(&ps, watcher).unwrap()[1], loop_id);

        let w = c.ask_until(&format!("where {sleeper}"), |r| {
            r.iter().any(|l| l == "awaiting sleep")
        });
        assert!(w[0].contains("\"sleeper\""), "{w:?}");
        assert!(w[0].contains(backend.name()), "{w:?}");
        assert!(
            w.iter()
                .any(|l| l.starts_with("created at") && l.contains("monitor.rs")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|l| l.starts_with("last poll started")),
            "{w:?}"
        );
        let w = c.ask_until(&format!("where {watcher}"), |r| {
            r.iter().any(|l| l.starts_with("awaiting"))
        });
        assert!(w.contains(&format!("awaiting task {sleeper}")), "{w:?}");

        let stats = c.ask("stats");
        let start = stats
            .iter()
            .position(|l| *l == format!("loop {loop_id}"))
            .unwrap_or_else(|| panic!("no loop {loop_id} in {stats:?}"));
        let block: Vec<&String> = stats[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("loop "))
            .collect();
        assert!(block.contains(&&format!("backend {}", backend.name())));
        let value = |key: &str| {
            block
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{key} ")))
                .unwrap_or_else(|| panic!("no {key} in {block:?}"))
                .to_string()
        };
        assert!(value("iterations").parse::<u64>().unwrap() > 0);
        assert!(value("tasks").parse::<u64>().unwrap() >= 2);
        for key in [
            "ready",
            "timers",
            "watched_fds",
            "ops_in_flight",
            "executor_threads",
        ] {
            value(key).parse::<u64>().unwrap();
        }
        for key in ["io_wait", "running", "slow_callbacks", "executor_queued"] {
            value(key);
        }

        for bad in ["bogus", "where", "where x", "cancel abc", "ps please"] {
            let r = c.ask(bad);
            assert_eq!(r.len(), 1, "{bad}: {r:?}");
            assert!(r[0].starts_with("error: "), "{bad}: {r:?}");
        }
        let r = c.ask("cancel 999999999999");
        assert!(
            r[0].starts_with("error: ") && r[0].contains("999999999999"),
            "{r:?}"
        );
        assert!(c.ask("help").iter().any(|l| l.contains("cancel ID")));
        assert!(ps_line(&c.ask("ps"), sleeper).is_some(), "still usable");

        let r = c.ask(&format!("cancel {sleeper}"));
        assert!(r[0].contains("cancelled"), "{r:?}");
        match said.recv_timeout(WATCHDOG).unwrap() {
            Said::SleeperEnded(Err(TaskError::Cancelled)) => {}
            Said::SleeperEnded(other) => panic!("{backend:?}: the sleeper ended {other:?}"),
            Said::Ids { .. } => panic!("ids twice"),
        }
        let w = c.ask(&format!("where {sleeper}"));
        assert!(w.iter().any(|l| l.starts_with("state Cancelled")), "{w:?}");
        assert_eq!(c.ask("quit"), ["bye"]);
        done.send(()).unwrap();
        thread.join().unwrap();
    }
}

#[test]
fn ps_is_answered_while_the_loop_is_blocked_in_a_task() {
    let m = monitor::start("127.0.0.1:0").unwrap();
    for backend in backends() {
        let (ids_tx, ids_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let lp = backend.new_event_loop().unwrap();
            let l = lp.clone();
            lp.run_until_complete(async move {
                let bystander = l
                    .create_task_named("bystander", loop_api::sleep(Duration::from_secs(3600)))
                    .unwrap();
                let blocker = l
                    .create_task_named("blocker", async move {
                        // A slow, blocking callback: the loop cannot run meanwhile.
                        go_rx.recv().unwrap();
                    })
                    .unwrap();
                let ids = [
                    loop_api::AnyTask::from(&bystander).id(),
                    loop_api::AnyTask::from(&blocker).id(),
                ];
                ids_tx.send(ids).unwrap();
                blocker.await.unwrap();
                bystander.cancel();
            })
            .unwrap();
            lp.close().unwrap();
        });
        let [bystander, blocker] = ids_rx.recv().unwrap();
        let mut c = connect(&m);
        let ps = c.ask_until("ps", |r| {
            ps_line(r, blocker).is_some_and(|cols| cols[2] == "Running")
        });
        assert_eq!(
            ps_line(&ps, blocker).unwrap()[3],
            "1",
            "in its first poll: {ps:?}"
        );
        let bystander_line = ps_line(&ps, bystander).unwrap();
        assert_eq!(bystander_line[2], "Pending", "{ps:?}");
        let w = c.ask(&format!("where {blocker}"));
        assert!(w.iter().any(|l| l.starts_with("state Running")), "{w:?}");
        let stats = c.ask("stats");
        assert!(
            stats.contains(&format!("running_task {blocker}")),
            "{stats:?}"
        );
        go_tx.send(()).unwrap();
        thread.join().unwrap();
    }
}

#[test]
fn serves_on_a_unix_socket_and_stops_when_dropped() {
    let path = std::env::temp_dir().join(format!("loop-monitor-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let m = monitor::start(&format!("unix:{}", path.display())).unwrap();
    assert_eq!(m.local_addr(), format!("unix:{}", path.display()));
    let mut c = Client::new(UnixStream::connect(&path).unwrap());
    assert!(c.ask("ps")[0].starts_with("    ID"));
    drop(m);
    assert!(!path.exists(), "the socket file is removed");
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn bad_addresses_are_refused_with_a_clear_error() {
    for bad in ["", "unix:", "not an address", "127.0.0.1:99999"] {
        let e = monitor::start(bad).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}: {e}");
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
    }
    // Bound elsewhere already: the error names the address.
    let m = monitor::start("127.0.0.1:0").unwrap();
    let e = monitor::start(m.local_addr()).unwrap_err();
    assert!(e.to_string().contains(m.local_addr()), "{e}");
}
