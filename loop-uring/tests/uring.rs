//! io_uring-specific behaviour: the probe's reasons, closing with operations in flight, fds.
//! (The seccomp block and Auto's fallback are tested in loop-policy's tests/fallback.rs.)
//!
//! Tests that change the process (the environment, fd counts) run in a child process:
//! the test binary re-runs itself with `URING_TEST_CHILD` naming the scenario.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

const CHILD_VAR: &str = "URING_TEST_CHILD";

/// Runs this test binary again, only `test`, with `CHILD_VAR=scenario`; returns its stdout.
fn run_child(test: &str, scenario: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, scenario);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "child {scenario} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn probe_honours_loop_uring_off() {
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("off") => {
            let err = loop_uring::new_event_loop().unwrap_err();
            println!("ERR: {err}");
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child(
                "probe_honours_loop_uring_off",
                "off",
                &[("LOOP_URING", "off")],
            );
            assert!(out.contains("ERR: event loop backend 'uring' is unavailable: io_uring is turned off by LOOP_URING=off"), "{out}");
        }
    }
}

/// Opens /dev/null until no file descriptor is left (EMFILE), after lowering the soft
/// RLIMIT_NOFILE to 64 so that takes few opens. Dropping the files gives them back.
fn exhaust_fds() -> Vec<std::fs::File> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill and setrlimit to read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_cur.min(64);
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

/// A probe that fails for a passing cause (no fd left) is not kept: once fds are free again,
/// the next probe passes and rings are made.
#[test]
fn probe_tries_again_after_running_out_of_fds() {
    if turned_off("probe_tries_again_after_running_out_of_fds") {
        return;
    }
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("emfile") => {
            if let Err(why) = loop_uring::probe_uncached() {
                println!("SKIP: {why}");
                return;
            }
            let held = exhaust_fds();
            let why = loop_uring::probe().unwrap_err();
            println!("STARVED: {:?} transient={}", why.errno, why.is_transient());
            println!("REASON: {why}");
            drop(held);
            println!("THEN: {:?}", loop_uring::probe().map(drop));
            let lp = loop_uring::new_event_loop().unwrap();
            println!("LOOP: {}", lp.backend_name());
            lp.close().unwrap();
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child("probe_tries_again_after_running_out_of_fds", "emfile", &[]);
            if let Some(line) = out.lines().find(|l| l.contains("SKIP: ")) {
                eprintln!("skipped, io_uring cannot run on this machine: {line}");
                return;
            }
            let starved = format!("STARVED: Some({}) transient=true", libc::EMFILE);
            assert!(out.contains(&starved), "{out}");
            assert!(out.contains("(EMFILE from io_uring_setup"), "{out}");
            assert!(out.contains("ulimit -n"), "{out}");
            assert!(out.contains("THEN: Ok(())"), "the EMFILE was kept: {out}");
            assert!(out.contains("LOOP: uring"), "{out}");
        }
    }
}

/// True (after saying so) when `LOOP_URING=off` turns io_uring off for this run: the tests that
/// need a ring are then skipped, as the whole conformance suite is.
fn turned_off(test: &str) -> bool {
    let Some(why) = loop_uring::disabled_by_env() else {
        return false;
    };
    eprintln!("{test}: skipped: {why}");
    true
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Closing a loop with receives and accepts in flight cancels and drains them: the loop's own
/// fds are released and nothing hangs. Runs in a child so no other test's fds interfere.
#[test]
fn close_with_operations_in_flight() {
    if turned_off("close_with_operations_in_flight") {
        return;
    }
    match std::env::var(CHILD_VAR).as_deref() {
        Ok("close") => {
            let before = open_fds();
            for _ in 0..20 {
                let lp = loop_uring::new_event_loop().unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let client = TcpStream::connect(addr).unwrap();
                let (server, _) = listener.accept().unwrap();
                let lp2 = lp.clone();
                let server2 = server.try_clone().unwrap();
                let recv = lp.create_task(async move {
                    lp2.sock_recv(&server2, Vec::with_capacity(64))
                        .await
                        .0
                        .is_ok()
                });
                let lp3 = lp.clone();
                let accept =
                    lp.create_task(async move { lp3.sock_accept(&listener).await.is_ok() });
                let lp4 = lp.clone();
                lp.run_until_complete(async move {
                    loop_api::sleep(Duration::from_millis(2)).await;
                    drop(lp4)
                })
                .unwrap();
                assert!(!recv.as_ref().unwrap().done());
                lp.close().unwrap();
                assert!(recv.unwrap().done());
                assert!(accept.unwrap().done());
                drop((client, server));
            }
            let after = open_fds();
            println!("FDS: {before} {after}");
        }
        Ok(_) => {}
        Err(_) => {
            let out = run_child("close_with_operations_in_flight", "close", &[]);
            let at = out.find("FDS: ").unwrap_or_else(|| panic!("{out}"));
            let line = out[at + 5..].lines().next().unwrap_or_default();
            let nums: Vec<usize> = line.split(' ').map(|n| n.trim().parse().unwrap()).collect();
            assert_eq!(
                nums[0], nums[1],
                "fds before and after 20 loops closed with ops in flight"
            );
        }
    }
}

/// A receive cancelled while in flight, with data arriving around the cancellation, loses no
/// byte: the next receive gets everything, in order.
#[test]
fn cancelled_recv_loses_no_bytes() {
    if turned_off("cancelled_recv_loses_no_bytes") {
        return;
    }
    let lp = loop_uring::new_event_loop().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let lp2 = lp.clone();
    let got = lp
        .run_until_complete(async move {
            let mut expected = Vec::new();
            let mut got = Vec::new();
            for round in 0..50u8 {
                let s = server.try_clone().unwrap();
                let lp3 = lp2.clone();
                let t = lp2
                    .create_task(async move { lp3.sock_recv(&s, Vec::with_capacity(16)).await })
                    .unwrap();
                loop_api::yield_now().await;
                // Data arrives and the receive is cancelled in the same iteration.
                std::io::Write::write_all(&mut client, &[round]).unwrap();
                expected.push(round);
                t.cancel();
                if let Ok((Ok(_), buf)) = t.await {
                    got.extend_from_slice(&buf);
                }
                if got.len() < expected.len() {
                    let (r, buf) = lp2.sock_recv(&server, Vec::with_capacity(16)).await;
                    r.unwrap();
                    got.extend_from_slice(&buf);
                }
            }
            (expected, got)
        })
        .unwrap();
    assert_eq!(got.0, got.1);
    lp.close().unwrap();
}

/// More operations in one iteration than the submission queue holds (256), and more
/// completions than the completion queue holds (512): all are submitted, none is lost.
#[test]
fn more_ops_than_the_rings_hold() {
    if turned_off("more_ops_than_the_rings_hold") {
        return;
    }
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    const N: usize = 700;
    let lp = loop_uring::new_event_loop().unwrap();
    let pairs: Vec<(UnixStream, UnixStream)> =
        (0..N).map(|_| UnixStream::pair().unwrap()).collect();
    let lp2 = lp.clone();
    let total = lp
        .run_until_complete(async move {
            let mut tasks = Vec::new();
            for (i, (a, _)) in pairs.iter().enumerate() {
                let a = a.try_clone().unwrap();
                let lp = lp2.clone();
                tasks.push(
                    lp2.create_task(async move {
                        let (r, buf) = lp.sock_recvfrom(&a, Vec::with_capacity(8)).await;
                        let r = r.map(|(n, _)| n);
                        assert_eq!(r.unwrap(), 2);
                        assert_eq!(buf, (i as u16).to_le_bytes());
                        1usize
                    })
                    .unwrap(),
                );
            }
            // Every receive is now in flight; answer them all at once.
            loop_api::yield_now().await;
            loop_api::yield_now().await;
            for (i, (_, b)) in pairs.iter().enumerate() {
                (&*b).write_all(&(i as u16).to_le_bytes()).unwrap();
            }
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        })
        .unwrap();
    assert_eq!(total, N);
    lp.close().unwrap();
}

/// The io_uring loop runs file operations natively when the kernel has every opcode loop-fs
/// needs (OPENAT, READ, WRITE, FSYNC, STATX, UNLINKAT, RENAMEAT, MKDIRAT, CLOSE), so loop-fs
/// uses them rather than the executor.
#[test]
fn file_ops_run_natively_when_the_kernel_has_the_opcodes() {
    let Ok(lp) = loop_uring::new_event_loop() else {
        return;
    };
    let ring = io_uring::IoUring::new(4).unwrap();
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe).unwrap();
    use io_uring::opcode::*;
    let all = [
        OpenAt::CODE,
        Read::CODE,
        Write::CODE,
        Fsync::CODE,
        Statx::CODE,
        UnlinkAt::CODE,
        RenameAt::CODE,
        MkDirAt::CODE,
        Close::CODE,
    ]
    .iter()
    .all(|&c| probe.is_supported(c));
    assert_eq!(lp.runs_file_ops(), all);
    lp.close().unwrap();
}
