//! When io_uring cannot run, `Auto` falls back to mio, says why in one log line, and a program
//! written against the policy runs unchanged; demanding uring is `Unavailable` with the cause.
//!
//! Each scenario runs in a child process (this test binary again, with `FALLBACK_CHILD` naming
//! the scenario), because it changes the process: a seccomp filter that makes io_uring_setup
//! fail with EPERM, as container runtimes' default profiles do, or `LOOP_URING=off`. Linux only
//! (io_uring and seccomp are Linux's).
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::Duration;

use loop_api::LoopError;
use loop_policy::Backend;

const CHILD_VAR: &str = "FALLBACK_CHILD";

/// Runs this test binary again, only `test`, with `CHILD_VAR=scenario`; gives stdout + stderr.
fn run_child(test: &str, scenario: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, scenario)
        .env_remove("LOOP_BACKEND")
        .env_remove("LOOP_URING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {scenario} failed:\n{text}");
    text
}

/// Makes io_uring_setup fail with EPERM in this thread (a seccomp filter, as in containers).
fn block_io_uring_setup() {
    const SYS_IO_URING_SETUP: u32 = 425; // the same number on every architecture
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        // A = the syscall number
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // if A == io_uring_setup, go on to the errno return, else skip it
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: SYS_IO_URING_SETUP,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain prctl calls; `prog` points to a valid filter for the duration of the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let p: *const libc::sock_fprog = &prog;
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, p),
            0
        );
    }
}

/// A program written against the policy: an echo over a socket pair on whatever loop it gets.
fn program_on_the_policy() -> (String, Vec<u8>) {
    loop_policy::run(async {
        let lp = loop_api::get_running_loop().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = lp.create_task({
            let lp = lp.clone();
            async move {
                let (s, _) = lp.sock_accept(&listener).await.unwrap();
                let (r, buf) = lp.sock_recv(&s, Vec::with_capacity(64)).await;
                r.unwrap();
                lp.sock_sendall(&s, buf).await.0.unwrap();
            }
        });
        let c = lp.sock_connect(addr).await.unwrap();
        lp.sock_sendall(&c, b"still runs".to_vec()).await.0.unwrap();
        loop_api::sleep(Duration::from_millis(1)).await;
        let (r, buf) = lp.sock_recv(&c, Vec::with_capacity(64)).await;
        r.unwrap();
        server.unwrap().await.unwrap();
        (lp.backend_name().to_string(), buf)
    })
    .unwrap()
}

fn child_report() {
    let (backend, echoed) = program_on_the_policy();
    println!("BACKEND: {backend}");
    println!("ECHO: {}", String::from_utf8_lossy(&echoed));
    match Backend::Uring.new_event_loop() {
        Err(LoopError::Unavailable { reason, .. }) => println!("STRICT: {reason}"),
        Ok(lp) => println!("STRICT: ok {}", lp.backend_name()),
        Err(e) => println!("STRICT: other error {e}"),
    }
}

#[test]
fn auto_falls_back_to_mio_under_seccomp() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("seccomp") => {
            block_io_uring_setup();
            child_report();
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child("auto_falls_back_to_mio_under_seccomp", "seccomp", &[]);
            assert!(out.contains("BACKEND: mio"), "{out}");
            assert!(out.contains("ECHO: still runs"), "{out}");
            let blocked = "io_uring is blocked by seccomp (EPERM from io_uring_setup)";
            assert!(out.contains(&format!("STRICT: {blocked}")), "{out}");
            let log: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with("loop-policy: "))
                .collect();
            assert_eq!(log.len(), 1, "one log line, once: {out}");
            assert!(
                log[0].contains("auto chose mio") && log[0].contains(blocked),
                "{out}"
            );
        }
    }
}

#[test]
fn loop_uring_off_forces_the_fallback() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("off") => child_report(),
        Ok(_) => {}
        Err(_) => {
            let out = run_child(
                "loop_uring_off_forces_the_fallback",
                "off",
                &[("LOOP_URING", "off")],
            );
            assert!(out.contains("BACKEND: mio"), "{out}");
            assert!(out.contains("ECHO: still runs"), "{out}");
            assert!(
                out.contains("STRICT: io_uring is turned off by LOOP_URING=off"),
                "{out}"
            );
        }
    }
}

#[test]
fn auto_uses_uring_where_the_probe_passes() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("plain") => child_report(),
        Ok(_) => {}
        Err(_) => {
            let out = run_child("auto_uses_uring_where_the_probe_passes", "plain", &[]);
            // Whichever the probe allows here, Auto and the strict request agree with it.
            match loop_uring::probe() {
                Ok(_) => {
                    assert!(out.contains("BACKEND: uring"), "{out}");
                    assert!(out.contains("STRICT: ok uring"), "{out}");
                    assert!(
                        !out.contains("loop-policy: "),
                        "no fallback, no log line: {out}"
                    );
                }
                Err(why) => {
                    assert!(out.contains("BACKEND: mio"), "{out}");
                    assert!(out.contains(&format!("STRICT: {}", why.reason)), "{out}");
                }
            }
            assert!(out.contains("ECHO: still runs"), "{out}");
        }
    }
}
