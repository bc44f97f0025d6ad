//! When io_uring cannot run, `Auto` falls back to mio, says why in one log line, and a program
//! written against the policy runs unchanged; demanding uring is `Unavailable` with the cause.
//! The fallback is decided per loop: a ring that cannot be made after the probe passed gives a
//! mio loop, and a passing cause (no fd left, no memory) does not keep later loops off io_uring.
//!
//! Each scenario runs in a child process (this test binary again, with `FALLBACK_CHILD` naming
//! the scenario), because it changes the process: a seccomp filter that makes io_uring_setup
//! fail (with EPERM, as container runtimes' default profiles do, or ENOMEM), no file descriptor
//! left, or `LOOP_URING=off`. Linux only (io_uring and seccomp are Linux's).
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

/// Makes io_uring_setup fail with `errno` in this thread and the threads it starts from now on
/// (a seccomp filter, as in containers; other threads are not affected).
fn block_io_uring_setup(errno: i32) {
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
            k: SECCOMP_RET_ERRNO | errno as u32,
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
            block_io_uring_setup(libc::EPERM);
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
        Ok("plain") => {
            // The child's own probe: the parent's environment may turn io_uring off
            // (LOOP_URING=off cargo test), the child's does not.
            match loop_uring::probe() {
                Ok(_) => println!("PROBE: ok"),
                Err(why) => println!("PROBE: {why}"),
            }
            child_report();
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child("auto_uses_uring_where_the_probe_passes", "plain", &[]);
            // Whichever the probe allows here, Auto and the strict request agree with it.
            let (_, probe) = out.lines().find_map(|l| l.split_once("PROBE: ")).unwrap();
            if probe == "ok" {
                assert!(out.contains("BACKEND: uring"), "{out}");
                assert!(out.contains("STRICT: ok uring"), "{out}");
                assert!(
                    !out.contains("loop-policy: "),
                    "no fallback, no log line: {out}"
                );
            } else {
                assert!(out.contains("BACKEND: mio"), "{out}");
                assert!(out.contains(&format!("STRICT: {probe}")), "{out}");
            }
            assert!(out.contains("ECHO: still runs"), "{out}");
        }
    }
}

/// The lines `Auto`'s fallback notice wrote to stderr.
fn notices(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("loop-policy: "))
        .collect()
}

/// In a child: prints `SKIP: why` and returns true when io_uring cannot run on this machine.
fn skipped_without_io_uring() -> bool {
    match loop_uring::probe_uncached() {
        Ok(_) => false,
        Err(why) => {
            println!("SKIP: {why}");
            true
        }
    }
}

/// In the parent: true (after saying why) if the child found io_uring unusable here.
fn child_skipped(test: &str, out: &str) -> bool {
    let Some(line) = out.lines().find(|l| l.starts_with("SKIP: ")) else {
        return false;
    };
    eprintln!("{test}: skipped, io_uring cannot run on this machine: {line}");
    true
}

/// Opens /dev/null until the process has no file descriptor left (EMFILE), after lowering the
/// soft RLIMIT_NOFILE to 256 so that takes few opens. Dropping the files gives them back.
fn exhaust_fds() -> Vec<std::fs::File> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill and setrlimit to read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_cur.min(256);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
    }
}

/// What making a strict uring loop gives, in one line.
fn strict_uring() -> String {
    match Backend::Uring.new_event_loop() {
        Err(LoopError::Unavailable { reason, .. }) => reason,
        Ok(lp) => format!("ok {}", lp.backend_name()),
        Err(e) => format!("other error {e}"),
    }
}

/// The backend of a new `Auto` loop (closed again), or the error.
fn auto_loop() -> String {
    match Backend::Auto.new_event_loop() {
        Ok(lp) => {
            let name = lp.backend_name().to_string();
            assert_eq!(lp.run_until_complete(async { 6 * 7 }).unwrap(), 42);
            lp.close().unwrap();
            name
        }
        Err(e) => format!("error {e:?}"),
    }
}

#[test]
fn auto_tries_uring_again_after_running_out_of_fds() {
    const TEST: &str = "auto_tries_uring_again_after_running_out_of_fds";
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("emfile") => {
            if skipped_without_io_uring() {
                return;
            }
            let held = exhaust_fds();
            let (chosen, why) = Backend::Auto.resolve_with_reason();
            println!("CHOSEN: {chosen}: {why}");
            println!("STRICT: {}", strict_uring());
            // mio needs file descriptors too: a clear error, not a panic.
            println!("STARVED: {}", auto_loop());
            drop(held);
            println!("AFTER: {}", auto_loop());
            println!("AGAIN: {}", auto_loop());
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child(TEST, "emfile", &[]);
            if child_skipped(TEST, &out) {
                return;
            }
            let emfile = "no file descriptor is left for the ring (EMFILE";
            let chosen = out.lines().find(|l| l.contains("CHOSEN: ")).unwrap();
            assert!(chosen.contains("CHOSEN: mio: auto chose mio"), "{out}");
            assert!(chosen.contains(emfile), "{out}");
            let strict = out.lines().find(|l| l.contains("STRICT: ")).unwrap();
            assert!(
                strict.contains(emfile) && strict.contains("ulimit -n"),
                "{out}"
            );
            assert!(out.contains("STARVED: error Io("), "{out}");
            assert!(out.contains("AFTER: uring"), "the EMFILE was kept: {out}");
            assert!(out.contains("AGAIN: uring"), "{out}");
            let log = notices(&out);
            assert_eq!(log.len(), 1, "one notice for the one reason: {out}");
            assert!(
                log[0].contains("auto chose mio") && log[0].contains(emfile),
                "{out}"
            );
        }
    }
}

#[test]
fn auto_falls_back_per_loop_when_the_ring_cannot_be_made() {
    const TEST: &str = "auto_falls_back_per_loop_when_the_ring_cannot_be_made";
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("late-enomem") => {
            if skipped_without_io_uring() {
                return;
            }
            println!("BEFORE: {}", auto_loop());
            // From here on the kernel refuses ring memory, on one thread only (seccomp filters
            // are per thread): what many rings or a small RLIMIT_MEMLOCK do after the probe.
            std::thread::spawn(|| {
                block_io_uring_setup(libc::ENOMEM);
                let (backend, echoed) = program_on_the_policy();
                println!("FAULTY: {backend} {}", String::from_utf8_lossy(&echoed));
                println!("FAULTY AGAIN: {}", auto_loop());
                println!("STRICT: {}", strict_uring());
            })
            .join()
            .unwrap();
            println!("AFTER: {}", auto_loop());
        }
        Ok("late-eperm") => {
            if skipped_without_io_uring() {
                return;
            }
            println!("BEFORE: {}", auto_loop());
            // A seccomp filter installed after the probe passed: lasting.
            block_io_uring_setup(libc::EPERM);
            let (backend, echoed) = program_on_the_policy();
            println!("FAULTY: {backend} {}", String::from_utf8_lossy(&echoed));
            println!("FAULTY AGAIN: {}", auto_loop());
            println!("STRICT: {}", strict_uring());
            println!("RESOLVES: {}", Backend::Auto.resolve());
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child(TEST, "late-enomem", &[]);
            if child_skipped(TEST, &out) {
                return;
            }
            let enomem = "the kernel refused the ring's memory (ENOMEM from io_uring_setup)";
            assert!(out.contains("BEFORE: uring"), "{out}");
            assert!(out.contains("FAULTY: mio still runs"), "{out}");
            assert!(out.contains("FAULTY AGAIN: mio"), "{out}");
            assert!(out.contains(&format!("STRICT: {enomem}")), "{out}");
            assert!(out.contains("AFTER: uring"), "the ENOMEM was kept: {out}");
            let log = notices(&out);
            assert_eq!(log.len(), 1, "one notice for the one reason: {out}");
            assert!(
                log[0].contains("auto chose mio") && log[0].contains(enomem),
                "{out}"
            );

            let out = run_child(TEST, "late-eperm", &[]);
            let blocked = "io_uring is blocked by seccomp (EPERM from io_uring_setup)";
            assert!(out.contains("BEFORE: uring"), "{out}");
            assert!(out.contains("FAULTY: mio still runs"), "{out}");
            assert!(out.contains("FAULTY AGAIN: mio"), "{out}");
            assert!(out.contains(&format!("STRICT: {blocked}")), "{out}");
            assert!(
                out.contains("RESOLVES: mio"),
                "a lasting cause is kept: {out}"
            );
            let log = notices(&out);
            assert_eq!(log.len(), 1, "one notice for the one reason: {out}");
            assert!(
                log[0].contains("auto chose mio") && log[0].contains(blocked),
                "{out}"
            );
        }
    }
}
