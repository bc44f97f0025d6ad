//! `EventLoop::stats()`: a loop's counters say what it holds and has done.

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use loop_api::{EventLoop, ExceptionContext, IDLE_RECEIVE_AFTER, LoopStats};

use crate::Factory;
use crate::util::{Log, block_on, close, new_loop, run_once, socketpair, tcp_pair};

/// The sizes: callbacks queued, timers, readers and writers, tasks, operations in flight,
/// before and after they are gone; the backend's name; iterations counted.
pub fn stats_count_what_the_loop_holds(factory: Factory) {
    let lp = new_loop(factory);
    let fresh = lp.stats();
    assert_eq!(fresh.backend, lp.backend_name());
    assert_eq!(
        (fresh.iterations, fresh.ready, fresh.tasks),
        (0, 0, 0),
        "{fresh:?}"
    );
    for _ in 0..3 {
        lp.call_soon(|| {}).expect("call_soon");
    }
    let timers: Vec<_> = (0..2)
        .map(|_| {
            lp.call_later(Duration::from_secs(3600), || {})
                .expect("call_later")
        })
        .collect();
    let (r, _w) = socketpair();
    lp.add_reader(r.as_raw_fd(), || {}).expect("add_reader");
    let (c, _s) = tcp_pair();
    let lp2 = lp.clone();
    let waiting = lp
        .create_task(async move { lp2.sock_recv(&c, Vec::with_capacity(8)).await })
        .expect("create_task");
    let queued = lp.stats();
    assert!(
        queued.ready >= 4,
        "3 callbacks and a task queued: {queued:?}"
    );
    assert_eq!(
        (queued.timers, queued.watched_fds, queued.tasks),
        (2, 1, 1),
        "{queued:?}"
    );
    run_once(&lp);
    let running = lp.stats();
    assert_eq!(
        running.ops_in_flight, 1,
        "the task's receive waits: {running:?}"
    );
    assert_eq!(running.ready, 0, "{running:?}");
    assert!(running.iterations >= 1, "{running:?}");
    waiting.cancel();
    for t in &timers {
        t.cancel();
    }
    lp.remove_reader(r.as_raw_fd());
    run_once(&lp);
    run_once(&lp);
    let after = lp.stats();
    assert_eq!(
        (after.tasks, after.watched_fds, after.ops_in_flight),
        (0, 0, 0),
        "{after:?}"
    );
    assert!(after.iterations > running.iterations, "{after:?}");
    close(&lp);
}

/// Time: a run that sleeps shows time running plus time blocked for I/O at least as long as
/// the sleep (on a real clock, most of it blocked); debug mode's slow callbacks are counted.
pub fn stats_count_time_and_slow_callbacks(factory: Factory) {
    let lp = new_loop(factory);
    let virtual_time = lp.virtual_clock().is_some();
    block_on(&lp, loop_api::sleep(Duration::from_millis(30)));
    let s = lp.stats();
    if !virtual_time {
        assert!(
            s.io_wait + s.running >= Duration::from_millis(30),
            "a 30 ms sleep ran for less: {s:?}"
        );
        assert!(s.io_wait > Duration::ZERO, "the sleep never blocked: {s:?}");
    }
    let reports = Log::default();
    let log = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        log.push(ctx.message.clone());
    })));
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(1));
    lp.call_soon(|| std::thread::sleep(Duration::from_millis(5)))
        .expect("call_soon");
    run_once(&lp);
    assert_eq!(lp.stats().slow_callbacks, 1, "reports: {:?}", reports.get());
    close(&lp);
}

/// The default executor's threads and queued jobs.
pub fn stats_count_executor_threads_and_queue(factory: Factory) {
    let lp = new_loop(factory);
    let jobs = loop_core_workers() + 3;
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let futures: Vec<_> = (0..jobs)
        .map(|_| {
            let gate = gate.clone();
            lp.run_in_executor(move || {
                let (open, changed) = &*gate;
                let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
                while !*open {
                    open = changed.wait(open).unwrap_or_else(|p| p.into_inner());
                }
            })
        })
        .collect();
    let s = lp.stats();
    assert!(s.executor_threads >= 1, "{s:?}");
    assert!(
        s.executor_threads + s.executor_queued >= jobs,
        "{jobs} jobs are neither running nor queued: {s:?}"
    );
    assert!(
        s.executor_queued >= 3,
        "more jobs than threads, none queued: {s:?}"
    );
    *gate.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
    gate.1.notify_all();
    block_on(&lp, async move {
        for f in futures {
            f.await.expect("the job");
        }
    });
    assert_eq!(lp.stats().executor_queued, 0);
    close(&lp);
}

/// How many threads the loop's own pool may start (asyncio's `min(32, cpus + 4)`).
fn loop_core_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

/// While a monitor's publication is on, the loop keeps its record in the process's registry
/// current: inside a task's poll the record shows that task `Running` (the loop is in it);
/// after the poll, its name, creation site, polls, the named future it waits at (`sleep`), and
/// the loop's stats; a cancelled task's record ends `Cancelled`; a closed loop leaves the
/// registry.
pub fn loop_publishes_its_tasks_and_stats_for_a_monitor(factory: Factory) {
    use loop_api::introspect::{self, LoopRecord};
    use loop_api::{AnyTask, TaskError, TaskState};

    let record_of = |id: u64| -> Option<Arc<LoopRecord>> {
        introspect::loops()
            .into_iter()
            .find(|r| r.task(id).is_some())
    };
    let publication = introspect::Publication::start();
    let lp = new_loop(factory);
    let seen_inside = std::rc::Rc::new(std::cell::Cell::new(None));
    let seen = seen_inside.clone();
    let t = lp
        .create_task_named("published", async move {
            let me = loop_api::current_task().expect("inside a task").id();
            let inside = record_of(me).map(|r| {
                let state = r.task(me).map(|s| s.state);
                (state, r.running_task())
            });
            seen.set(Some(inside));
            loop_api::sleep(Duration::from_millis(1)).await;
            std::future::pending::<()>().await;
        })
        .expect("create_task");
    let id = AnyTask::from(&t).id();
    run_once(&lp);
    assert_eq!(
        seen_inside.get(),
        Some(Some((Some(TaskState::Running), Some(id)))),
        "inside its poll, the task is the one running"
    );
    let record = record_of(id).expect("the loop's record lists the task");
    let task = record.task(id).expect("published");
    assert_eq!(task.name, "published");
    assert_eq!(task.state, TaskState::Pending);
    assert_eq!(task.polls, 1);
    assert_eq!(task.created_at.file(), file!());
    assert_eq!(task.awaiting, ["sleep"], "{task:?}");
    assert!(task.last_poll.is_some());
    assert_eq!(record.running_task(), None, "between polls");
    let stats = record.stats();
    assert_eq!(stats.backend, lp.backend_name());
    assert!(stats.iterations >= 1 && stats.tasks >= 1, "{stats:?}");
    t.cancel();
    assert_eq!(block_on(&lp, t), Err(TaskError::Cancelled));
    assert_eq!(record.task(id).map(|s| s.state), Some(TaskState::Cancelled));
    assert!(
        record.tasks().iter().all(|s| s.id != id),
        "not listed once ended"
    );
    close(&lp);
    assert!(
        !introspect::loops().iter().any(|r| Arc::ptr_eq(r, &record)),
        "a closed loop leaves the registry"
    );
    drop(publication);
}

/// Idle connections hold no receive buffer: 32 receives of 64 KiB each wait for data on
/// registered sockets, and once they have waited `IDLE_RECEIVE_AFTER` (50 ms) the loop holds a few
/// buffers' worth (its spares), not 2 MiB. Data then arriving is received whole into a buffer
/// of the capacity asked for; once the receives wait again and the loop has gone round a few
/// times with nothing to receive, it is back to a few buffers (a loop may keep, for a while,
/// as many as receives needed at once).
pub fn idle_receives_hold_no_buffers(factory: Factory) {
    const CONNS: usize = 32;
    const BUF: usize = 64 * 1024;
    let lp = new_loop(factory);
    let got: Log<(usize, Vec<u8>, usize)> = Log::new();
    let mut clients = Vec::new();
    for i in 0..CONNS {
        let (client, server) = tcp_pair();
        clients.push(client);
        let (lp2, got) = (lp.clone(), got.clone());
        lp.create_task(async move {
            let server = lp2.register_socket(server).expect("register_socket");
            loop {
                let (n, buf) = lp2.sock_recv(&server, Vec::with_capacity(BUF)).await;
                if n.expect("sock_recv") == 0 {
                    return;
                }
                got.push((i, buf.clone(), buf.capacity()));
            }
        })
        .expect("create_task");
    }
    let settle = |lp: &EventLoop| {
        for _ in 0..1000 {
            if lp.stats().ops_in_flight == CONNS {
                return;
            }
            run_once(lp);
        }
        panic!("the receives never all waited: {:?}", lp.stats());
    };
    settle(&lp);
    // A few spare buffers at most (whatever the loop keeps for the next receive).
    let limit = 8 * BUF;
    let idle = run_until_buffers_at_most(&lp, limit);
    assert!(
        idle.receive_buffers <= limit,
        "{CONNS} idle receives hold {} bytes of buffers (at most {limit} expected): {idle:?}",
        idle.receive_buffers
    );
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("ping {i}").as_bytes()).expect("write");
    }
    for _ in 0..1000 {
        if got.len() == CONNS {
            break;
        }
        run_once(&lp);
    }
    let mut got = got.get();
    got.sort();
    let expected: Vec<_> = (0..CONNS)
        .map(|i| (i, format!("ping {i}").into_bytes(), BUF))
        .collect();
    assert_eq!(got, expected, "each connection's bytes, in a 64 KiB buffer");
    settle(&lp);
    for _ in 0..64 {
        run_once(&lp);
    }
    let again = run_until_buffers_at_most(&lp, limit);
    assert!(
        again.receive_buffers <= limit,
        "after a round: {} bytes held: {again:?}",
        again.receive_buffers
    );
    end_connections(&lp, clients);
}

/// A loop blocked in its wait, with no timer and nothing else to do, still lends the buffers of
/// the receives that wait long: the wait ends at each lending round (see
/// [`IDLE_RECEIVE_AFTER`]) while a receive holds a buffer.
pub fn blocked_loop_lends_idle_receive_buffers(factory: Factory) {
    const CONNS: usize = 32;
    const BUF: usize = 64 * 1024;
    let lp = new_loop(factory);
    let clients = receives_waiting_on_new_sockets(&lp, CONNS, BUF);
    // Blocked for many rounds (real time: the driver measures the receives' wait so).
    run_for_ten_rounds(&lp);
    let idle = lp.stats();
    let limit = 8 * BUF;
    assert!(
        idle.receive_buffers <= limit,
        "{CONNS} receives idle for {:?} while the loop waited hold {} bytes of buffers (at \
         most {limit} expected): {idle:?}",
        10 * IDLE_RECEIVE_AFTER,
        idle.receive_buffers
    );
    end_connections(&lp, clients);
}

/// The lending rounds end once no receive holds a buffer it could lend: a receive of a
/// connection in use waits holding its buffer, lends it at a round's end, and from then on
/// the loop, with nothing to do, stays in its wait instead of waking at every round: over ten
/// rounds' time it goes round a few times, not once a round.
pub fn lending_rounds_stop_once_nothing_holds(factory: Factory) {
    let lp = new_loop(factory);
    let (mut client, server) = tcp_pair();
    let received: Log<usize> = Log::new();
    let (lp2, got) = (lp.clone(), received.clone());
    lp.create_task(async move {
        let sock = lp2.register_socket(server).expect("register_socket");
        loop {
            let (n, _) = lp2.sock_recv(&sock, Vec::with_capacity(64 * 1024)).await;
            match n.expect("sock_recv") {
                0 => return,
                n => got.push(n),
            }
        }
    })
    .expect("create_task");
    client.write_all(b"first").expect("write");
    for _ in 0..1000 {
        if received.len() == 1 && lp.stats().ops_in_flight == 1 {
            break;
        }
        run_once(&lp);
    }
    assert_eq!(received.get(), vec![5], "the first message");
    let before = lp.stats().iterations;
    run_for_ten_rounds(&lp);
    let rounds = lp.stats().iterations - before;
    // Two round ends (the receive waited a whole round), its task lending the buffer, the
    // stop: a few iterations, and ten or more if every round still woke the loop.
    assert!(
        rounds <= 8,
        "the loop went round {rounds} times in {:?} with nothing to do",
        10 * IDLE_RECEIVE_AFTER
    );
    end_connections(&lp, vec![client]);
}

/// A receive that waited long enough to lend its buffer (see [`IDLE_RECEIVE_AFTER`]) and is
/// then dropped (`wait_for` gave up) leaves the socket as it was: the bytes sent next reach the
/// next receive, whole and in order.
pub fn dropped_idle_receive_loses_no_bytes(factory: Factory) {
    let lp = new_loop(factory);
    let (mut client, server) = tcp_pair();
    let lp2 = lp.clone();
    let got = block_on(&lp, async move {
        let server = lp2.register_socket(server).expect("register_socket");
        let idle = lp2.sock_recv(&server, Vec::with_capacity(64 * 1024));
        let timed_out = loop_api::wait_for(3 * IDLE_RECEIVE_AFTER, idle).await;
        assert!(
            timed_out.is_err(),
            "nothing was sent, yet the receive finished"
        );
        client.write_all(b"after the idle wait").expect("write");
        let mut got = Vec::new();
        while got.len() < b"after the idle wait".len() {
            let recv = lp2.sock_recv(&server, Vec::with_capacity(64 * 1024));
            let (n, buf) = loop_api::wait_for(Duration::from_secs(20), recv)
                .await
                .expect("the bytes arrive well before 20 s");
            assert!(n.expect("sock_recv") > 0, "the peer did not close");
            got.extend_from_slice(&buf);
        }
        got
    });
    assert_eq!(got, b"after the idle wait");
    close(&lp);
}

/// A receive of a connection in use whose data comes before it has waited
/// `IDLE_RECEIVE_AFTER` gets back the very buffer it gave: two connections receive a first
/// message each, then two receives of 64 KiB wait on them, data soon comes for the second
/// only, and it returns in its own allocation (the loop hands no buffer from one busy
/// connection to another). An attempt in which the receive did wait that long (a stalled
/// machine) proves nothing and is made again.
pub fn busy_receives_keep_their_buffers(factory: Factory) {
    const BUF: usize = 64 * 1024;
    let lp = new_loop(factory);
    for _attempt in 0..5 {
        let (mut idle_client, idle_server) = tcp_pair();
        let (mut client, server) = tcp_pair();
        let got: Log<(usize, usize)> = Log::new();
        let firsts: Log<usize> = Log::new();
        for (i, sock) in [idle_server, server].into_iter().enumerate() {
            let (lp2, got, firsts) = (lp.clone(), got.clone(), firsts.clone());
            lp.create_task(async move {
                let sock = lp2.register_socket(sock).expect("register_socket");
                let (n, buf) = lp2.sock_recv(&sock, Vec::with_capacity(BUF)).await;
                assert_eq!(n.expect("sock_recv"), 5, "the first message");
                firsts.push(i);
                let given = buf.as_ptr() as usize;
                let (n, buf) = lp2.sock_recv(&sock, buf).await;
                n.expect("sock_recv");
                got.push((i, usize::from(buf.as_ptr() as usize == given)));
            })
            .expect("create_task");
        }
        idle_client.write_all(b"first").expect("write");
        client.write_all(b"first").expect("write");
        for _ in 0..1000 {
            if firsts.len() == 2 && lp.stats().ops_in_flight == 2 {
                break;
            }
            run_once(&lp);
        }
        let parked = std::time::Instant::now();
        client.write_all(b"soon").expect("write");
        while got.is_empty() && parked.elapsed() < 20 * IDLE_RECEIVE_AFTER {
            run_once(&lp);
        }
        if parked.elapsed() >= IDLE_RECEIVE_AFTER {
            continue;
        }
        assert_eq!(
            got.get(),
            vec![(1, 1)],
            "the busy receive came back in its own buffer (1: the same allocation)"
        );
        close(&lp);
        return;
    }
    panic!("every attempt took longer than IDLE_RECEIVE_AFTER: the machine is too slow");
}

/// A new connection's receive waits holding no buffer from the start: 32 registered sockets
/// that have received nothing yet each get a receive of 64 KiB, and as soon as they all wait
/// the loop holds a few buffers' worth, not 2 MiB (connections accepted in a burst and left
/// idle cost no buffer even for `IDLE_RECEIVE_AFTER`).
pub fn new_connections_wait_without_buffers(factory: Factory) {
    const CONNS: usize = 32;
    const BUF: usize = 64 * 1024;
    let lp = new_loop(factory);
    let clients = receives_waiting_on_new_sockets(&lp, CONNS, BUF);
    let stats = lp.stats();
    assert!(
        stats.receive_buffers <= 8 * BUF,
        "{CONNS} new connections' receives hold {} bytes: {stats:?}",
        stats.receive_buffers
    );
    end_connections(&lp, clients);
}

/// `conns` tasks on `lp`, each receiving into a buffer of `buf` bytes on a registered socket
/// of a new connection whose peer only closes; runs the loop until every receive waits.
/// Gives the peers.
fn receives_waiting_on_new_sockets(lp: &EventLoop, conns: usize, buf: usize) -> Vec<TcpStream> {
    let mut clients = Vec::new();
    for _ in 0..conns {
        let (client, server) = tcp_pair();
        clients.push(client);
        let lp2 = lp.clone();
        lp.create_task(async move {
            let server = lp2.register_socket(server).expect("register_socket");
            let (n, _) = lp2.sock_recv(&server, Vec::with_capacity(buf)).await;
            assert_eq!(n.expect("sock_recv"), 0, "the peer only closes");
        })
        .expect("create_task");
    }
    for _ in 0..1000 {
        if lp.stats().ops_in_flight == conns {
            break;
        }
        run_once(lp);
    }
    let stats = lp.stats();
    assert_eq!(stats.ops_in_flight, conns, "every receive waits: {stats:?}");
    clients
}

/// Runs `lp` for ten lending rounds (10 x [`IDLE_RECEIVE_AFTER`] of real time), then stops
/// it from another thread.
fn run_for_ten_rounds(lp: &EventLoop) {
    let handle = lp.handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(10 * IDLE_RECEIVE_AFTER);
        handle.stop();
    });
    crate::util::run_forever(lp);
    stopper.join().expect("the stopping thread");
}

/// Closes the peers of `lp`'s connections and runs it until every connection's task saw its
/// end, then closes it.
fn end_connections(lp: &EventLoop, clients: Vec<TcpStream>) {
    drop(clients);
    for _ in 0..1000 {
        if lp.stats().tasks == 0 {
            break;
        }
        run_once(lp);
    }
    assert_eq!(lp.stats().tasks, 0, "every connection saw its end");
    close(lp);
}

/// Runs `lp` (whose receives wait for data that does not come) until it holds at most `limit`
/// bytes of receive buffers, or for 20 times [`IDLE_RECEIVE_AFTER`] of real time (the loop's
/// driver measures how long a receive has waited in real time, also under a virtual clock);
/// gives the last stats.
fn run_until_buffers_at_most(lp: &EventLoop, limit: usize) -> LoopStats {
    let deadline = std::time::Instant::now() + 20 * IDLE_RECEIVE_AFTER;
    loop {
        let stats = lp.stats();
        if stats.receive_buffers <= limit || std::time::Instant::now() >= deadline {
            return stats;
        }
        // Nothing else happens: the loop's wait ends when a waiting receive's time is up.
        std::thread::sleep(IDLE_RECEIVE_AFTER / 4);
        run_once(lp);
    }
}
