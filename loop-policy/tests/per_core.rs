//! `run_per_core` / `PerCore` on every backend: outputs in thread order, one loop per thread,
//! `SO_REUSEPORT` listeners on one address all reached by clients, and a failure (a panic, a
//! loop that cannot be made) stopping the whole group. Ctrl-C is in `ctrl_c.rs` (a process of
//! its own).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loop_api::{LoopError, LoopPolicy, get_running_loop, sleep};
use loop_policy::{Backend, DefaultLoopPolicy, PerCore};

/// Generous limit for anything the tests wait for (a watchdog, not a timing assertion).
const WATCHDOG: Duration = Duration::from_secs(60);

/// The backends that run here, each as a policy.
fn policies() -> Vec<(Backend, Arc<dyn LoopPolicy>)> {
    [Backend::Mio, Backend::Polling, Backend::Uring]
        .into_iter()
        .filter(|b| b.why_unavailable().is_none())
        .map(|b| {
            let p: Arc<dyn LoopPolicy> = Arc::new(DefaultLoopPolicy::with_backend(b));
            (b, p)
        })
        .collect()
}

#[test]
fn outputs_come_back_in_thread_order_each_from_its_own_loop_and_thread() {
    for (backend, policy) in policies() {
        let out = PerCore::new(4)
            .policy(policy)
            .run(|i| async move {
                // The last thread finishes first.
                sleep(Duration::from_millis(5 * (4 - i as u64))).await;
                let lp = get_running_loop().unwrap();
                (
                    i,
                    lp.backend_name(),
                    std::thread::current().name().map(String::from),
                )
            })
            .unwrap();
        let names: Vec<_> = (0..4).map(|i| Some(format!("loop-{i}"))).collect();
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            [0, 1, 2, 3],
            "{backend}"
        );
        assert!(
            out.iter().all(|o| o.1 == backend.to_string()),
            "{backend}: {out:?}"
        );
        assert_eq!(
            out.into_iter().map(|o| o.2).collect::<Vec<_>>(),
            names,
            "{backend}"
        );
    }
}

#[test]
fn the_free_function_uses_the_global_policy() {
    let out = loop_policy::run_per_core(2, |i| async move { i + 1 }).unwrap();
    assert_eq!(out, [1, 2]);
}

#[test]
fn zero_threads_is_a_clear_error() {
    let err = loop_policy::run_per_core(0, |_| async {}).unwrap_err();
    assert!(matches!(err, LoopError::InvalidArgument(_)), "{err:?}");
    assert!(err.to_string().contains("at least 1"), "{err}");
}

/// A bound, not listening, `SO_REUSEPORT` socket on a free port: it keeps the port for the
/// test's listeners and takes no connections itself.
fn reserve_port() -> (socket2::Socket, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_port(true).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

/// Connects until every one of `threads` servers answered a quit request (each answers with
/// its index and stops listening); gives the order they answered in.
fn quit_every_server(addr: SocketAddr, threads: usize, listening: &AtomicUsize) -> Vec<u8> {
    let deadline = Instant::now() + WATCHDOG;
    while listening.load(Ordering::SeqCst) < threads {
        assert!(Instant::now() < deadline, "the servers did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut quit = Vec::new();
    while quit.len() < threads {
        assert!(
            Instant::now() < deadline,
            "only {quit:?} of {threads} servers were reached"
        );
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut who = [0u8; 1];
        // A connection queued on a listener that just closed is reset: try again.
        if s.write_all(b"q").is_ok() && s.read_exact(&mut who).is_ok() {
            quit.push(who[0]);
        }
    }
    quit
}

#[test]
fn reuse_port_listeners_on_one_address_are_each_reached() {
    const THREADS: usize = 3;
    for (backend, policy) in policies() {
        let (_reserved, addr) = reserve_port();
        let listening = Arc::new(AtomicUsize::new(0));
        let client = {
            let listening = listening.clone();
            std::thread::spawn(move || quit_every_server(addr, THREADS, &listening))
        };
        let out = PerCore::new(THREADS)
            .policy(policy)
            .run(move |i| {
                let listening = listening.clone();
                async move {
                    let lp = get_running_loop().unwrap();
                    let opts = loop_net::BindOptions {
                        reuse_port: true,
                        ..Default::default()
                    };
                    let l = loop_net::TcpListener::bind_on(&lp, addr, opts).unwrap();
                    listening.fetch_add(1, Ordering::SeqCst);
                    let mut served = 0;
                    loop {
                        let (conn, _) = l.accept().await.unwrap();
                        served += 1;
                        let (n, buf) = conn.recv(Vec::with_capacity(1)).await;
                        let _ = conn.send_all(vec![i as u8]).await;
                        if n.is_ok() && buf == b"q" {
                            return (i, served);
                        }
                    }
                }
            })
            .unwrap();
        let quit = client.join().unwrap();
        assert_eq!(
            quit.iter().copied().collect::<BTreeSet<u8>>(),
            (0..THREADS as u8).collect(),
            "{backend}"
        );
        assert_eq!(
            out.iter().map(|o| o.0).collect::<Vec<_>>(),
            (0..THREADS).collect::<Vec<_>>(),
            "{backend}"
        );
        assert!(out.iter().all(|o| o.1 >= 1), "{backend}: {out:?}");
    }
}

/// Counts the futures dropped before they finished.
struct CountDrop(Arc<AtomicUsize>);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panicking_thread_stops_the_others_and_its_panic_is_returned() {
    for (backend, policy) in policies() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let started = Instant::now();
        let err = PerCore::new(3)
            .policy(policy)
            .run(move |i| {
                let guard = CountDrop(d.clone());
                async move {
                    if i == 1 {
                        sleep(Duration::from_millis(20)).await;
                        panic!("thread one gives up");
                    }
                    let _guard = guard;
                    sleep(WATCHDOG * 2).await;
                }
            })
            .unwrap_err();
        assert!(
            matches!(&err, LoopError::Panicked(m) if m == "thread one gives up"),
            "{backend}: {err:?}"
        );
        // Threads 0 and 2 were cancelled (their futures dropped), and thread 1's guard went
        // with its panicking future.
        assert_eq!(dropped.load(Ordering::SeqCst), 3, "{backend}");
        assert!(started.elapsed() < WATCHDOG, "{backend}: the others ran on");
    }
}

#[test]
fn a_loop_that_cannot_be_made_stops_the_others_and_its_error_is_returned() {
    for (backend, _) in policies() {
        let made = Arc::new(AtomicUsize::new(0));
        let policy = DefaultLoopPolicy::with_factory(move || {
            if made.fetch_add(1, Ordering::SeqCst) == 2 {
                return Err(LoopError::Unavailable {
                    backend: "test".into(),
                    reason: "the third loop is refused".into(),
                });
            }
            backend.new_event_loop()
        });
        let dropped = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let (d, m) = (dropped.clone(), made.clone());
        let started = Instant::now();
        let err = PerCore::new(3)
            .policy(Arc::new(policy))
            .run(move |_| {
                m.fetch_add(1, Ordering::SeqCst);
                let guard = CountDrop(d.clone());
                async move {
                    let _guard = guard;
                    sleep(WATCHDOG * 2).await;
                }
            })
            .unwrap_err();
        assert!(
            matches!(&err, LoopError::Unavailable { reason, .. } if reason.contains("third")),
            "{backend}: {err:?}"
        );
        // The loops that were made were stopped: every future one of them made (none, one or
        // both, depending on how far they got before the third failed) was dropped.
        let made = made.load(Ordering::SeqCst);
        assert!(made <= 2, "{backend}: the third loop ran a future");
        assert_eq!(dropped.load(Ordering::SeqCst), made, "{backend}");
        assert!(started.elapsed() < WATCHDOG, "{backend}: the others ran on");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn pinned_threads_each_run_on_one_cpu_of_the_process() {
    fn cpus_of_this_thread() -> Vec<usize> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable cpu_set_t of the size given.
        let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        assert_eq!(got, 0);
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect()
    }
    let allowed = cpus_of_this_thread();
    let out = PerCore::new(3)
        .pin(true)
        .run(|_| async { cpus_of_this_thread() })
        .unwrap();
    for (i, cpus) in out.iter().enumerate() {
        assert_eq!(cpus, &[allowed[i % allowed.len()]], "thread {i}");
    }
    // The caller's own affinity is untouched.
    assert_eq!(cpus_of_this_thread(), allowed);
}
