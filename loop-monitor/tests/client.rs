//! The `loop-monitor` binary against a monitor serving a loop with a named task.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn the_client_sends_commands_with_history_and_prints_the_replies() {
    let m = loop_policy::monitor::start("127.0.0.1:0").unwrap();
    let (id_tx, id_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let program = std::thread::spawn(move || {
        let lp = loop_policy::Backend::Mio.new_event_loop().unwrap();
        let l = lp.clone();
        lp.run_until_complete(async move {
            let t = l
                .create_task_named("napper", async {
                    loop {
                        loop_api::sleep(Duration::from_millis(2)).await;
                    }
                })
                .unwrap();
            id_tx.send(loop_api::AnyTask::from(&t).id()).unwrap();
            // Give the monitor a few iterations to see the task, then hold the loop.
            loop_api::sleep(Duration::from_millis(50)).await;
            let _ = done_rx.recv();
            t.cancel();
        })
        .unwrap();
        lp.close().unwrap();
    });
    let id = id_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let mut client = Command::new(env!("CARGO_BIN_EXE_loop-monitor"))
        .arg(m.local_addr())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("ps\n!!\nwhere {id}\nbogus\nhistory\n!3\nquit\nps\n");
    client
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = client.wait_with_output().unwrap();
    done_tx.send(()).unwrap();
    program.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("asyncio-rs loop monitor"), "{stdout}");
    assert_eq!(
        stdout.matches("> ps\n").count(),
        2,
        "ps, then !! again: {stdout}"
    );
    assert_eq!(stdout.matches(" napper\n").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches(&format!("task {id} \"napper\"")).count(),
        2,
        "where, then !3 again: {stdout}"
    );
    assert!(
        stdout.contains("error: unknown command \"bogus\""),
        "{stdout}"
    );
    assert!(stdout.contains("   4  bogus\n"), "history: {stdout}");
    assert!(
        stdout.trim_end().ends_with("bye"),
        "quit ends the session: {stdout}"
    );
}

#[test]
fn a_bad_address_is_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_loop-monitor"))
        .arg("unix:/nonexistent/monitor.sock")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/monitor.sock"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_loop-monitor"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
