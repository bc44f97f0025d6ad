//! The monitor's commands: each takes a line and gives the reply text (ended by an empty
//! line), reading what the loops published (`loop_api::introspect`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use loop_api::LoopStats;
use loop_api::introspect::{self, LoopRecord, TaskSnapshot};

/// How long `cancel` waits for the task's loop to carry it out before saying it is busy.
const CANCEL_WAIT: Duration = Duration::from_secs(1);

const HELP: &str = "commands:
  ps          the unfinished tasks of every loop
  where ID    where task ID was made, its state, last poll and what it awaits
  cancel ID   cancel task ID (on its loop's thread)
  stats       each loop's statistics, a `key value` line per field
  help        this list
  quit        close the connection";

/// What to send back.
pub(super) struct Reply {
    pub(super) text: String,
    pub(super) quit: bool,
}

impl Reply {
    fn lines(body: &str) -> Reply {
        let mut text = body.trim_end_matches('\n').to_string();
        text.push_str("\n\n");
        Reply { text, quit: false }
    }

    pub(super) fn error(message: impl std::fmt::Display) -> Reply {
        Reply::lines(&format!("error: {message}"))
    }
}

/// The first lines a connection gets.
pub(super) fn greeting() -> String {
    let n = introspect::loops().len();
    format!("asyncio-rs loop monitor: {n} loop(s); type help for the commands\n\n")
}

/// Runs one command line.
pub(super) fn run(line: &str) -> Reply {
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else {
        return Reply::lines("");
    };
    let arg = words.next();
    if let Some(extra) = words.next() {
        return Reply::error(format!("unexpected {extra:?} after {command} (try help)"));
    }
    match (command, arg) {
        ("ps", None) => Reply::lines(&ps()),
        ("stats", None) => Reply::lines(&stats()),
        ("help", None) => Reply::lines(HELP),
        ("quit" | "exit", None) => Reply {
            text: "bye\n\n".into(),
            quit: true,
        },
        ("where", Some(id)) => with_id(id, where_),
        ("cancel", Some(id)) => with_id(id, cancel),
        ("where" | "cancel", None) => Reply::error(format!("{command} needs a task id (see ps)")),
        ("ps" | "stats" | "help" | "quit" | "exit", Some(a)) => {
            Reply::error(format!("{command} takes no argument, got {a:?}"))
        }
        _ => Reply::error(format!("unknown command {command:?} (try help)")),
    }
}

fn with_id(text: &str, f: impl FnOnce(u64) -> Reply) -> Reply {
    match text.parse::<u64>() {
        Ok(id) => f(id),
        Err(_) => Reply::error(format!("{text:?} is not a task id (a number from ps)")),
    }
}

/// `1.25s`, `3.4ms`, `120us`.
fn duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.1}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{}us", d.as_micros())
    }
}

fn ps() -> String {
    let mut out = format!(
        "{:>6} {:>4} {:<9} {:>7} {:>9} {:>9}  {:<34} NAME\n",
        "ID", "LOOP", "STATE", "POLLS", "BUSY", "IDLE", "CREATED"
    );
    for lp in introspect::loops() {
        for t in lp.tasks() {
            let _ = writeln!(
                out,
                "{:>6} {:>4} {:<9} {:>7} {:>9} {:>9}  {:<34} {}",
                t.id,
                lp.id(),
                format!("{:?}", t.state),
                t.polls,
                duration(t.busy),
                duration(t.idle),
                t.created_at.to_string(),
                t.name
            );
        }
    }
    out
}

/// The loop that has (or recently had) task `id`, and the task.
fn find(id: u64) -> Option<(Arc<LoopRecord>, TaskSnapshot)> {
    introspect::loops()
        .into_iter()
        .find_map(|lp| lp.task(id).map(|t| (lp, t)))
}

fn no_task(id: u64) -> Reply {
    Reply::error(format!("no task with id {id} (ps lists the tasks)"))
}

fn where_(id: u64) -> Reply {
    let Some((lp, t)) = find(id) else {
        return no_task(id);
    };
    let stats = lp.stats();
    let last_poll = match t.last_poll {
        Some(ago) => format!("started {} ago", duration(ago)),
        None => "not seen by the monitor".to_string(),
    };
    let awaiting = if t.awaiting.is_empty() {
        "unknown".to_string()
    } else {
        t.awaiting.join(" > ")
    };
    Reply::lines(&format!(
        "task {id} {:?} on loop {} ({}, thread {})\n\
         created at {}\n\
         state {:?}, {} polls, busy {}, idle {}\n\
         last poll {last_poll}\n\
         awaiting {awaiting}",
        t.name,
        lp.id(),
        stats.backend,
        lp.thread(),
        t.created_at,
        t.state,
        t.polls,
        duration(t.busy),
        duration(t.idle),
    ))
}

fn cancel(id: u64) -> Reply {
    let Some((lp, t)) = find(id) else {
        return no_task(id);
    };
    if !matches!(
        t.state,
        loop_api::TaskState::Pending | loop_api::TaskState::Running
    ) {
        return Reply::error(format!("task {id} has finished ({:?})", t.state));
    }
    let (tx, rx) = mpsc::channel();
    let sent = lp.handle().call_soon_threadsafe(move || {
        let found = loop_api::get_running_loop()
            .ok()
            .and_then(|lp| lp.all_tasks().into_iter().find(|t| t.id() == id))
            .map(|t| t.cancel());
        let _ = tx.send(found);
    });
    if let Err(e) = sent {
        return Reply::error(format!("task {id}: its loop cannot take the request: {e}"));
    }
    match rx.recv_timeout(CANCEL_WAIT) {
        Ok(Some(true)) => Reply::lines(&format!("task {id} cancelled")),
        Ok(_) => Reply::error(format!("task {id} has finished")),
        Err(_) => Reply::lines(&format!(
            "task {id}: cancel requested; its loop is busy (blocked?) and will have it \
             cancelled when it runs again"
        )),
    }
}

fn stats() -> String {
    let mut out = String::new();
    for lp in introspect::loops() {
        let LoopStats {
            backend,
            iterations,
            ready,
            timers,
            watched_fds,
            ops_in_flight,
            receive_buffers,
            tasks,
            executor_threads,
            executor_queued,
            slow_callbacks,
            io_wait,
            running,
        } = lp.stats();
        let running_task = lp
            .running_task()
            .map_or_else(|| "none".to_string(), |id| id.to_string());
        let _ = write!(
            out,
            "loop {}\nthread {}\nrunning_task {running_task}\nbackend {backend}\n\
             iterations {iterations}\nready {ready}\ntimers {timers}\n\
             watched_fds {watched_fds}\nops_in_flight {ops_in_flight}\n\
             receive_buffers {receive_buffers}\ntasks {tasks}\n\
             executor_threads {executor_threads}\nexecutor_queued {executor_queued}\n\
             slow_callbacks {slow_callbacks}\nio_wait {io_wait:?}\nrunning {running:?}\n",
            lp.id(),
            lp.thread(),
        );
    }
    if out.is_empty() {
        out.push_str("no loop");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_commands_get_an_error_line() {
        for line in [
            "frobnicate",
            "where",
            "where x",
            "cancel -1",
            "ps now",
            "where 1 2",
        ] {
            let reply = run(line);
            assert!(
                reply.text.starts_with("error: "),
                "{line:?}: {}",
                reply.text
            );
            assert!(reply.text.ends_with("\n\n"), "{line:?}");
            assert!(!reply.quit);
        }
        assert!(run("quit").quit);
        assert_eq!(run("   ").text, "\n\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(1500)), "1.50s");
        assert_eq!(duration(Duration::from_micros(3400)), "3.4ms");
        assert_eq!(duration(Duration::from_micros(120)), "120us");
    }
}
