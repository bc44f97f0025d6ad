//! Both ways of watching children run the process behaviours: the pidfd polled by the loop
//! (the default), and the thread-per-child fallback used where pidfds are unavailable
//! (forced here with `loop_core::set_child_watcher`, as `LOOP_CHILD_WATCHER=threaded` would).

use std::process::Stdio;

use loop_core::{ChildWatcher, child_watcher, set_child_watcher};

/// Open fds of this process that are pidfds.
fn pidfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| t.to_string_lossy().contains("pidfd"))
                .count()
        })
        .unwrap_or(0)
}

/// Spawns `sleep`, counts the pidfds while it runs, kills it.
fn pidfds_while_a_child_runs() -> usize {
    let lp = loop_mio::new_event_loop().unwrap();
    let mut cmd = loop_api::shell_command("exec sleep 5");
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let mut p = lp.subprocess_exec(cmd).unwrap();
    let n = pidfds();
    p.kill().unwrap();
    assert_eq!(lp.run_until_complete(p.wait()).unwrap().unwrap(), -9);
    lp.close().unwrap();
    n
}

fn run_process_behaviours() {
    let behaviours = loop_conformance::BEHAVIOURS
        .iter()
        .filter(|b| b.module == "processes");
    for b in behaviours {
        loop_conformance::run(loop_mio::new_event_loop, b);
    }
}

#[test]
fn pidfd_and_threaded_watchers_pass_the_process_behaviours() {
    // One test in this binary, so the process-wide setting never changes under another.
    assert_eq!(child_watcher(), ChildWatcher::Pidfd);
    if cfg!(target_os = "linux") && pidfds_while_a_child_runs() == 0 {
        eprintln!("note: pidfd_open is unavailable here; the pidfd watcher fell back to threads");
    }
    run_process_behaviours();

    set_child_watcher(ChildWatcher::Threaded);
    assert_eq!(
        pidfds_while_a_child_runs(),
        0,
        "the threaded watcher opened a pidfd"
    );
    run_process_behaviours();
    set_child_watcher(ChildWatcher::Pidfd);
}
