//! Child processes: asyncio's returncodes, `communicate` without deadlock, pipes read as they
//! come, no zombie and no leaked pipe (CONFORMANCE 25).
//!
//! The children are standard Unix tools (`sh`, `cat`, `sleep`, `yes`, `head`).

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loop_api::{LoopError, Process, shell_command, sleep};

use crate::Factory;
use crate::fds::assert_no_new_fds;
use crate::util::{block_on, close, new_loop, open_fds, pattern, run_once, thread_sleep};

/// Generous: a loaded CI machine may take a while to start a process.
const REAP_LIMIT: Duration = Duration::from_secs(20);

/// `sh -c script` with the given stdio.
fn sh(script: &str, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Command {
    let mut cmd = shell_command(script);
    cmd.stdin(stdin).stdout(stdout).stderr(stderr);
    cmd
}

/// True once `pid` is no child of ours any more (it was reaped): `waitid` with `WNOWAIT`
/// looks without reaping and says ECHILD.
pub fn is_reaped(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain old data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid out-parameter; WNOWAIT leaves the child as it is.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// Waits (on this thread) until `pid` has been reaped by someone else.
///
/// # Panics
/// If it is not reaped within a generous limit: a zombie was left behind.
pub fn wait_until_reaped(pid: u32, what: &str) {
    let start = Instant::now();
    while !is_reaped(pid) {
        assert!(
            start.elapsed() < REAP_LIMIT,
            "{what}: child {pid} was never reaped (a zombie was left behind)"
        );
        thread_sleep(5);
    }
}

fn spawn(lp: &loop_api::EventLoop, cmd: Command) -> Process {
    lp.subprocess_exec(cmd)
        .unwrap_or_else(|e| panic!("subprocess_exec failed: {e}"))
}

/// `exit 7` gives 7 (again on a second wait); the child is reaped.
pub fn exit_code_is_returncode(factory: Factory) {
    let lp = new_loop(factory);
    let cmd = sh("exit 7", Stdio::null(), Stdio::null(), Stdio::null());
    let mut p = spawn(&lp, cmd);
    assert_eq!(
        p.returncode(),
        None,
        "returncode before the child was reaped"
    );
    let first = block_on(&lp, p.wait()).expect("wait");
    let second = block_on(&lp, p.wait()).expect("second wait");
    assert_eq!((first, second), (7, 7));
    assert_eq!(p.returncode(), Some(7));
    assert!(is_reaped(p.pid()), "wait() left a zombie");
    close(&lp);
}

/// A child killed with SIGKILL gives -9, with SIGTERM -15; a reaped child is never signalled.
pub fn killed_child_gives_minus_signal(factory: Factory) {
    let lp = new_loop(factory);
    let mut a = spawn(
        &lp,
        sh("exec sleep 30", Stdio::null(), Stdio::null(), Stdio::null()),
    );
    let mut b = spawn(
        &lp,
        sh("exec sleep 30", Stdio::null(), Stdio::null(), Stdio::null()),
    );
    a.kill().expect("kill");
    b.terminate().expect("terminate");
    let codes = block_on(&lp, async move {
        let ca = a.wait().await.expect("wait a");
        let cb = b.wait().await.expect("wait b");
        (
            ca,
            cb,
            a.kill().is_err(),
            b.send_signal(libc::SIGTERM).is_err(),
        )
    });
    assert_eq!(
        codes,
        (-libc::SIGKILL, -libc::SIGTERM, true, true),
        "(returncode after SIGKILL, after SIGTERM, kill after reaping refused, send_signal after reaping refused)"
    );
    close(&lp);
}

/// `communicate` feeds 4 MiB to `cat` and reads 4 MiB back, and copes with a child that
/// fills stderr before it reads stdin: no deadlock, byte-exact.
pub fn communicate_moves_megabytes_both_ways(factory: Factory) {
    const LEN: usize = 4 << 20;
    let lp = new_loop(factory);
    let input = pattern(LEN, 25);
    let cat = spawn(
        &lp,
        sh("exec cat", Stdio::piped(), Stdio::piped(), Stdio::piped()),
    );
    let stderr_first = spawn(
        &lp,
        sh(
            "head -c 3000000 /dev/zero >&2; exec cat",
            Stdio::piped(),
            Stdio::piped(),
            Stdio::piped(),
        ),
    );
    let expected = input.clone();
    let (a, b) = block_on(&lp, async move {
        let (mut cat, mut stderr_first) = (cat, stderr_first);
        let a = cat
            .communicate(input.clone())
            .await
            .expect("communicate with cat");
        let b = stderr_first.communicate(input).await.expect("communicate");
        (a, b)
    });
    assert_eq!(a.0, 0, "cat's returncode");
    assert!(
        a.1 == expected,
        "cat's output differs from its input ({} bytes)",
        a.1.len()
    );
    assert!(
        a.2.is_empty(),
        "cat wrote to stderr: {:?}",
        String::from_utf8_lossy(&a.2)
    );
    assert_eq!(b.0, 0);
    assert!(
        b.1 == expected,
        "the output differs from the input ({} bytes)",
        b.1.len()
    );
    assert_eq!(b.2.len(), 3_000_000);
    close(&lp);
}

/// After `communicate` and dropping the `Process`, no pipe, pidfd or zombie is left.
pub fn no_zombie_and_no_leaked_pipes(factory: Factory) {
    let lp = new_loop(factory);
    run_once(&lp);
    let before = open_fds();
    let mut pids = Vec::new();
    for script in ["exec cat", "echo out; echo err >&2; exit 3"] {
        let mut p = spawn(
            &lp,
            sh(script, Stdio::piped(), Stdio::piped(), Stdio::piped()),
        );
        pids.push(p.pid());
        let (code, out, _) = block_on(&lp, p.communicate(b"in\n".to_vec())).expect("communicate");
        assert!(code == 0 || code == 3, "returncode {code}");
        assert!(!out.is_empty());
        drop(p);
    }
    // A child whose pipes were taken and dropped unread, then waited for.
    let mut p = spawn(
        &lp,
        sh("exec cat", Stdio::piped(), Stdio::piped(), Stdio::piped()),
    );
    pids.push(p.pid());
    drop((p.take_stdin(), p.take_stdout(), p.take_stderr()));
    assert_eq!(block_on(&lp, p.wait()).expect("wait"), 0);
    drop(p);
    run_once(&lp);
    for pid in &pids {
        assert!(is_reaped(*pid), "child {pid} was left a zombie");
    }
    assert_no_new_fds(&before, &open_fds(), "running children");
    close(&lp);
}

/// A `Process` dropped without waiting (running or exited) is reaped in the background.
pub fn dropped_process_is_reaped(factory: Factory) {
    let lp = new_loop(factory);
    let running = spawn(
        &lp,
        sh(
            "exec sleep 0.2",
            Stdio::null(),
            Stdio::null(),
            Stdio::null(),
        ),
    );
    let exited = spawn(
        &lp,
        sh("exit 0", Stdio::null(), Stdio::null(), Stdio::null()),
    );
    let (a, b) = (running.pid(), exited.pid());
    thread_sleep(50);
    drop(running);
    drop(exited);
    wait_until_reaped(b, "an exited child whose Process was dropped");
    wait_until_reaped(a, "a running child whose Process was dropped");
    // Also once the loop is closed and gone while the child runs.
    let orphan = spawn(
        &lp,
        sh(
            "exec sleep 0.2",
            Stdio::null(),
            Stdio::null(),
            Stdio::null(),
        ),
    );
    let c = orphan.pid();
    close(&lp);
    drop(lp);
    drop(orphan);
    wait_until_reaped(c, "a child outliving its loop");
}

/// A child killed while its output pipe is full and unread gives -9 and leaves no zombie.
pub fn kill_while_output_unread(factory: Factory) {
    let lp = new_loop(factory);
    let mut p = spawn(
        &lp,
        sh("exec yes", Stdio::null(), Stdio::piped(), Stdio::null()),
    );
    let pid = p.pid();
    let code = block_on(&lp, async move {
        // `yes` fills the pipe and blocks writing to it.
        sleep(Duration::from_millis(50)).await;
        p.kill().expect("kill");
        p.wait().await.expect("wait")
    });
    assert_eq!(code, -libc::SIGKILL);
    assert!(is_reaped(pid), "the killed child was left a zombie");
    close(&lp);
}

/// stdout can be read line by line as the child writes it, while the loop runs timers.
pub fn pipe_read_line_by_line(factory: Factory) {
    let lp = new_loop(factory);
    let cmd = sh(
        "echo one; sleep 0.05; printf 'two\\nthree'",
        Stdio::null(),
        Stdio::piped(),
        Stdio::null(),
    );
    let mut p = spawn(&lp, cmd);
    let mut out = p.take_stdout().expect("stdout was piped");
    assert!(p.take_stdout().is_none(), "stdout could be taken twice");
    let (lines, code) = block_on(&lp, async move {
        let mut lines = Vec::new();
        loop {
            let line = out.readline().await.expect("read_line");
            if line.is_empty() {
                break;
            }
            lines.push(String::from_utf8(line).expect("utf-8"));
        }
        (lines, p.wait().await.expect("wait"))
    });
    assert_eq!(lines, ["one\n", "two\n", "three"]);
    assert_eq!(code, 0);
    close(&lp);
}

/// stdin written through its pipe, stdout read through its pipe; `Stdio::null()` is honoured.
pub fn pipes_and_null_stdio(factory: Factory) {
    let lp = new_loop(factory);
    let mut cat = spawn(
        &lp,
        sh("exec cat", Stdio::piped(), Stdio::piped(), Stdio::null()),
    );
    let mut null_in = spawn(
        &lp,
        sh("exec cat", Stdio::null(), Stdio::piped(), Stdio::null()),
    );
    assert!(null_in.take_stdin().is_none(), "stdin was null, not piped");
    let (echoed, empty) = block_on(&lp, async move {
        let mut stdin = cat.take_stdin().expect("stdin was piped");
        let (res, _) = stdin.send_all(b"hello pipe".to_vec()).await;
        res.expect("write_all");
        drop(stdin);
        let (code, out, err) = cat.communicate(Vec::new()).await.expect("communicate");
        assert_eq!((code, err.len()), (0, 0));
        let (code2, out2, _) = null_in.communicate(Vec::new()).await.expect("communicate");
        assert_eq!(code2, 0);
        (out, out2)
    });
    assert_eq!(echoed, b"hello pipe");
    assert!(empty.is_empty(), "cat < /dev/null printed {empty:?}");
    close(&lp);
}

/// stderr into stdout (asyncio's `stderr=STDOUT`) through one `std::io::pipe`, read with
/// `connect_read_pipe`; the `Command`'s copies of the pipe are closed by `subprocess_exec`.
pub fn stderr_into_stdout_pipe(factory: Factory) {
    let lp = new_loop(factory);
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut cmd = shell_command("echo out; echo err >&2");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone().expect("try_clone")))
        .stderr(Stdio::from(writer));
    let mut p = spawn(&lp, cmd);
    let mut merged = lp
        .connect_read_pipe(reader.into())
        .expect("connect_read_pipe");
    let (both, code) = block_on(&lp, async move {
        let both = merged.recv_to_end().await.expect("read_to_end");
        (both, p.wait().await.expect("wait"))
    });
    assert_eq!(both, b"out\nerr\n");
    assert_eq!(code, 0);
    close(&lp);
}

/// `subprocess_shell` runs a shell command line.
pub fn subprocess_shell_runs_command_line(factory: Factory) {
    let lp = new_loop(factory);
    let mut p = lp
        .subprocess_shell("test 2 -gt 1 && exit 5")
        .expect("subprocess_shell");
    assert_eq!(block_on(&lp, p.wait()).expect("wait"), 5);
    close(&lp);
}

/// Bad input gives clear errors, never a panic: a missing program, input for an unpiped
/// stdin, a closed loop.
pub fn subprocess_errors_are_clear(factory: Factory) {
    let lp = new_loop(factory);
    match lp.subprocess_exec(Command::new("/nonexistent/loop-conformance-program")) {
        Err(LoopError::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
            assert!(e.to_string().contains("loop-conformance-program"), "{e}");
        }
        other => panic!("expected an Io(NotFound) error, got {other:?}"),
    }
    let mut p = spawn(
        &lp,
        sh("exit 0", Stdio::null(), Stdio::null(), Stdio::null()),
    );
    match block_on(&lp, p.communicate(b"input".to_vec())) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}"),
        Ok(v) => panic!("communicate with input but no stdin pipe gave {v:?}"),
    }
    assert_eq!(block_on(&lp, p.wait()).expect("wait"), 0);
    close(&lp);
    match lp.subprocess_exec(Command::new("true")) {
        Err(LoopError::Closed) => {}
        other => panic!("subprocess_exec on a closed loop gave {other:?}"),
    }
}
