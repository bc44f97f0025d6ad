//! No SIGPIPE death (CONFORMANCE 30): writing to a connection or a pipe whose other end is
//! gone is an `io::Error` on that write only, whatever the process's SIGPIPE disposition.
//!
//! The Rust runtime ignores SIGPIPE before `main`, but a program may set it back to
//! `SIG_DFL` (a CLI that wants to die quietly in a broken shell pipeline does), and removing a
//! loop's SIGPIPE handler restores what was in force before. Each behaviour here sets
//! `SIG_DFL` itself (restored afterwards) so the loop's own protection is what is tested:
//! sends use `MSG_NOSIGNAL`, and `sendfile(2)`/`write(2)`, which have no such flag, must not
//! let the signal through. A failure kills the whole test process with signal 13.
//!
//! Dispositions are process-wide, so these behaviours run alone ([`Isolation::Exclusive`]).
//!
//! [`Isolation::Exclusive`]: crate::Isolation::Exclusive

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;

use loop_api::{EventLoop, shell_command};

use crate::Factory;
use crate::signals::{SavedDisposition, current_handler};
use crate::util::{block_on, close, new_loop, pipe, tcp_pair};

/// How many writes to a closed peer may still succeed (filling the socket's buffer, before
/// the peer's reset is seen) before one must fail.
const WRITES_BEFORE_ERROR: usize = 64;

/// A broken connection or pipe, as the loop may report it.
fn is_broken(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// A small file to send.
fn file_with(data: &[u8]) -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "loop-conformance-sigpipe-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::File::create(&path).expect("create temp file");
    f.write_all(data).expect("write temp file");
    let f = std::fs::File::open(&path).expect("open temp file");
    let _ = std::fs::remove_file(&path);
    f
}

/// `sock_sendfile` over a connection whose peer closed, until it fails: the error must be
/// `BrokenPipe` in the end (the write that raises SIGPIPE), and the process must be alive.
fn sendfile_until_broken(lp: &EventLoop) {
    let (client, server) = tcp_pair();
    let file = file_with(&[7u8; 4096]);
    drop(server);
    let lp2 = lp.clone();
    let errors = block_on(lp, async move {
        let mut errors = Vec::new();
        for _ in 0..WRITES_BEFORE_ERROR {
            if let Err(e) = lp2.sock_sendfile(&client, &file, 0, None).await {
                assert!(is_broken(&e), "sock_sendfile to a closed peer: {e}");
                let done = e.kind() == io::ErrorKind::BrokenPipe;
                errors.push(e.kind());
                if done {
                    break;
                }
            }
        }
        errors
    });
    assert_eq!(
        errors.last(),
        Some(&io::ErrorKind::BrokenPipe),
        "sock_sendfile to a closed peer never failed with BrokenPipe (errors: {errors:?})"
    );
}

/// With SIGPIPE at `SIG_DFL`, `sock_sendfile` (sendfile(2), which has no `MSG_NOSIGNAL`) to
/// a peer that closed fails with `BrokenPipe`; the process lives on, the loop too.
pub fn sendfile_to_closed_peer_is_an_error_not_sigpipe(factory: Factory) {
    let _restore = SavedDisposition::set(libc::SIGPIPE, libc::SIG_DFL);
    let lp = new_loop(factory);
    sendfile_until_broken(&lp);
    // The loop still works.
    assert_eq!(block_on(&lp, async { 5 }), 5);
    close(&lp);
}

/// With SIGPIPE at `SIG_DFL`, `sock_sendall` to a peer that closed fails with `BrokenPipe`
/// or `ConnectionReset`; the process lives on.
pub fn sendall_to_closed_peer_is_an_error_not_sigpipe(factory: Factory) {
    let _restore = SavedDisposition::set(libc::SIGPIPE, libc::SIG_DFL);
    let lp = new_loop(factory);
    let (client, server) = tcp_pair();
    drop(server);
    let lp2 = lp.clone();
    let errors = block_on(&lp, async move {
        let mut errors = Vec::new();
        for _ in 0..WRITES_BEFORE_ERROR {
            if let (Err(e), _) = lp2.sock_sendall(&client, vec![1u8; 4096]).await {
                assert!(is_broken(&e), "sock_sendall to a closed peer: {e}");
                let done = e.kind() == io::ErrorKind::BrokenPipe;
                errors.push(e.kind());
                if done {
                    break;
                }
            }
        }
        errors
    });
    assert_eq!(
        errors.last(),
        Some(&io::ErrorKind::BrokenPipe),
        "sock_sendall to a closed peer never failed with BrokenPipe (errors: {errors:?})"
    );
    close(&lp);
}

/// With SIGPIPE at `SIG_DFL`, a `PipeWriter` (`connect_write_pipe`) whose reader is closed
/// fails with `BrokenPipe`, and so does a child's stdin once the child has exited.
pub fn pipe_write_to_closed_reader_is_an_error_not_sigpipe(factory: Factory) {
    let _restore = SavedDisposition::set(libc::SIGPIPE, libc::SIG_DFL);
    let lp = new_loop(factory);
    let (reader, writer) = pipe();
    drop(reader);
    let mut writer = lp
        .connect_write_pipe(OwnedFd::from(writer))
        .expect("connect_write_pipe");
    let mut cmd = shell_command("exit 0");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = lp.subprocess_exec(cmd).expect("subprocess_exec");
    let mut stdin = child.take_stdin().expect("stdin was piped");
    let (pipe_res, stdin_res) = block_on(&lp, async move {
        let (pipe_res, _) = writer.send_all(b"nobody reads this".to_vec()).await;
        assert_eq!(child.wait().await.expect("wait"), 0);
        let (stdin_res, _) = stdin.send_all(vec![0u8; 4096]).await;
        (pipe_res, stdin_res)
    });
    for (what, res) in [("the pipe", pipe_res), ("the child's stdin", stdin_res)] {
        match res {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            other => panic!("writing to {what} with its reader closed gave {other:?}"),
        }
    }
    close(&lp);
}

/// Adding then removing a SIGPIPE handler puts back the disposition found (the runtime's
/// `SIG_IGN` here), not `SIG_DFL`; `sock_sendfile` to a closed peer afterwards is an error.
pub fn removed_sigpipe_handler_leaves_sendfile_safe(factory: Factory) {
    let _restore = SavedDisposition::set(libc::SIGPIPE, libc::SIG_IGN);
    let lp = new_loop(factory);
    lp.add_signal_handler(libc::SIGPIPE, || {})
        .expect("add_signal_handler(SIGPIPE)");
    assert!(lp.remove_signal_handler(libc::SIGPIPE));
    assert_eq!(
        current_handler(libc::SIGPIPE),
        libc::SIG_IGN,
        "removing the SIGPIPE handler did not restore SIG_IGN"
    );
    sendfile_until_broken(&lp);
    close(&lp);
}
