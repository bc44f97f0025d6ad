//! The network half of the report (echo, syscalls, memory, HTTP) and the method notes.

use std::fmt::Write as _;

use crate::Results;
use crate::report::echo_cpu_ratio;

/// What the micro-benchmarks do, for the report.
pub const MICRO_METHOD: &str = "\
Each of ours runs beside its reference in the same process and round. `call_soon`: n callbacks \
(each bumps a counter) scheduled, then run, against a `VecDeque<Box<dyn FnOnce()>>` pushed and \
drained in order (the floor). `create_task`: n tasks created from a running task, run to \
completion, against tokio `spawn_local` on a current-thread runtime with a `LocalSet`. \
`timers`: n `call_later` (delays spread over 1-61 s) then n `cancel` and one loop iteration \
(which purges the heap), against n `tokio::time::sleep` futures each polled once (registered in \
the wheel) then dropped (cancelled). `threadsafe_T`: n callbacks from T threads with \
`call_soon_threadsafe` to a running loop, against tokio `Handle::spawn` into a current-thread \
runtime (and `tokio-mpsc`: an unbounded channel of boxed closures drained by a task). `wake_T`: \
T threads each wait 300 us (the loop blocks in its poll), send one callback and measure when it \
runs: p50 (the median column) and p99, against tokio `Handle::spawn` of a task. The ready-queue \
and timer benches touch no I/O and run on mio; the thread-safe ones run on every backend. \
asyncio and uvloop run the same benches (`loop-bench/py/micro.py`) with n/5 operations (timers: n, since a \
heap's cost grows with its size) in their own process. The `loop-sync` benches (issue 15) run \
on mio: `queue`: a producer task puts n items in a bounded `Queue` (128), a consumer task gets \
them (one op: a put and its get), against a tokio bounded `mpsc` channel (128) between two \
`spawn_local` tasks; `lock`: n `Lock::lock().await` + release in one task, against tokio's \
`Mutex`; `event`: two tasks play ping-pong with two `Event`s (one op: a round, two task \
switches), against the same ping-pong on two tokio `Notify`s; `gather_1000`: `gather` of 1,000 \
tasks that each return their index, n/1,000 times (one op: one task created and gathered), \
against a tokio `JoinSet` of 1,000 `spawn_local` tasks joined with `join_next`; asyncio and \
uvloop use `asyncio.Queue`, `asyncio.Lock`, `asyncio.Event`, `asyncio.gather`.";

/// Echo, syscall, memory and HTTP tables.
pub fn net_tables(res: &Results) -> String {
    let mut s = String::new();
    if !res.echo.is_empty() {
        s.push_str(&echo_tables(res));
    }
    s.push_str(&other_tables(res));
    s
}

fn echo_tables(res: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Echo server\n");
    let _ = writeln!(
        s,
        "uvloop's methodology: each connection sends a message, waits for the whole echo, and \
         repeats a fixed number of times (`loop-bench/src/client.rs`, one tokio current-thread \
         thread). Servers: ours is the echo example's connection code (`examples::echo`, \
         `sock_recv`/`sock_sendall` with a 64 KiB owned buffer) on each backend, and \
         *streams-mio* is its `loop-net` twin (`examples::echo_streams`) on mio; *raw-mio* and \
         *raw-uring-multishot* are the floors, servers with no runtime at all driving epoll \
         (`loop-bench/src/raw_echo.rs`) and io_uring (multishot receive into a provided-buffer \
         ring, `loop-bench/src/raw_uring.rs`) by hand: what the kernel costs plus the least user \
         space can add; tokio is the \
         same loop on a current-thread runtime (`loop-bench/src/servers.rs`); uvloop and \
         asyncio are `asyncio.Protocol` servers (`loop-bench/py/echo_server.py`); node is \
         `loop-bench/node/echo_server.js`. All set `TCP_NODELAY`. *CPU/req* is the server's CPU \
         time per request; *vs tokio* is tokio's CPU/req divided by the server's (above 1: less \
         CPU than tokio). At 1 connection every request wakes a blocked server, and that \
         wake-up is most of every server's CPU time. At 100 KiB the Python servers read up to \
         256 KiB per call where ours, tokio and node read 64 KiB, so they make fewer reads per \
         message.\n"
    );
    s.push_str(&echo_size_tables(&res.echo));
    s
}

/// One table per message size of `rows` (echo cells): each server's CPU per request, its
/// ratio to tokio's in the same cell, req/s and latency, by connection count.
pub fn echo_size_tables(rows: &[crate::echo::EchoRow]) -> String {
    let mut s = String::new();
    for size in crate::echo::SIZES {
        let _ = writeln!(s, "### {} KiB messages\n", size / 1024);
        let _ = writeln!(
            s,
            "| conns | server | CPU/req | vs tokio | req/s | p50 | p99 |\n|---|---|---|---|---|---|---|"
        );
        for conns in crate::echo::CONNS {
            let tokio = rows
                .iter()
                .find(|r| r.server == "tokio" && r.size == size && r.conns == conns);
            for r in rows.iter().filter(|r| r.size == size && r.conns == conns) {
                let vs = tokio.map_or("-".into(), |t| format!("{:.2}x", echo_cpu_ratio(r, t)));
                let _ = writeln!(
                    s,
                    "| {conns} | {} | {:.1} us | {vs} | {:.0} | {:.0} us | {:.0} us |",
                    r.server,
                    r.median(|x| x.cpu_ns_per_req) / 1e3,
                    r.median(|x| x.req_per_s),
                    r.median(|x| x.p50_us),
                    r.median(|x| x.p99_us),
                );
            }
        }
        s.push('\n');
    }
    s
}

fn other_tables(res: &Results) -> String {
    let mut s = String::new();
    if !res.syscalls.is_empty() {
        let _ = writeln!(s, "## System calls per request\n");
        let _ = writeln!(
            s,
            "`strace -c -f -p PID` attached to the server over a fixed number of 1 KiB echo \
             requests (after the connections are open and warmed up). strace slows every call, \
             which lets more work gather per call: a completion backend batches at least this \
             well without it.\n"
        );
        let _ = writeln!(
            s,
            "| server | conns | requests | syscalls/req | vs tokio | most frequent |\n|---|---|---|---|---|---|"
        );
        for r in &res.syscalls {
            let tokio = res
                .syscalls
                .iter()
                .find(|t| t.server == "tokio" && t.conns == r.conns)
                .map(|t| t.per_request() / r.per_request());
            let top: Vec<String> = r
                .top
                .iter()
                .take(4)
                .map(|(n, c)| format!("{n} {:.2}", *c as f64 / r.requests.max(1) as f64))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {} | {} |",
                r.server,
                r.conns,
                r.requests,
                r.per_request(),
                tokio.map_or("-".into(), |v| format!("{v:.2}x")),
                top.join(", ")
            );
        }
        s.push('\n');
    }
    if !res.native_syscalls.is_empty() {
        s.push_str(&native_table(res));
    }
    if !res.memory.is_empty() {
        let _ = writeln!(s, "## Memory per idle connection\n");
        let _ = writeln!(
            s,
            "A fresh server; its RSS (`VmRSS`) before and after {} idle connections are open \
             (and accepted: its descriptor count grew by as much), divided by the count. \
             Kernel socket buffers are not in RSS, for anyone.\n",
            res.memory[0].conns
        );
        let _ = writeln!(
            s,
            "| server | bytes/conn | vs tokio | RSS before | RSS after |\n|---|---|---|---|---|"
        );
        let tokio = res.memory.iter().find(|r| r.server == "tokio");
        for r in &res.memory {
            let vs = tokio.map_or("-".into(), |t| {
                format!("{:.2}x", t.per_conn() / r.per_conn().max(1.0))
            });
            let _ = writeln!(
                s,
                "| {} | {:.0} | {vs} | {} KiB | {} KiB |",
                r.server,
                r.per_conn(),
                r.rss_before / 1024,
                r.rss_after / 1024
            );
        }
        s.push('\n');
    }
    if !res.http.is_empty() {
        let _ = writeln!(s, "## HTTP (wrk)\n");
        let _ = writeln!(
            s,
            "`loop-bench/wrk.sh` (wrk -t1 --latency, 64 connections, pinned like the echo runs) \
             against `examples/http_hello` on each backend and a tokio hello server with the \
             same logic (`loop-bench serve http tokio`). One run each.\n"
        );
        http_rows(&mut s, &res.http);
    }
    if !res.per_core.is_empty() {
        s.push_str(&per_core_section(&res.per_core));
    }
    if !res.hyper.is_empty() {
        let _ = writeln!(s, "## hyper (wrk)\n");
        let _ = writeln!(
            s,
            "The same hyper 1.x HTTP/1.1 server (one handler, keep-alive, no timer) on each backend \
             through `loop-hyper`, and on tokio's current-thread runtime \
             (`loop-bench serve hyper mio|polling|uring|tokio`), loaded by `WRK_KIND=hyper \
             loop-bench/wrk.sh` (wrk -t1 --latency, 64 connections, server and wrk pinned apart). \
             Three rounds of 10 s runs, each round running every server once (the order \
             rotating); each row is the server's median round by CPU per request (`--quick`: one \
             round of 3 s).\n"
        );
        http_rows(&mut s, &res.hyper);
    }
    s
}

/// Our echo server on one loop and on one loop per CPU (`loop_policy::run_per_core`).
fn per_core_section(rows: &[crate::echo::EchoRow]) -> String {
    let mut s = String::new();
    let (conns, size) = crate::echo::PER_CORE_LOAD;
    let _ = writeln!(s, "## One loop per core (`run_per_core`)\n");
    let _ = writeln!(
        s,
        "Our echo server (the echo example's connection code) on one loop pinned to CPU {}, \
         then on one loop per CPU (`loop_policy::PerCore::new(n).pin(true)`, each loop with its \
         own `SO_REUSEPORT` listener on the address: `loop-bench serve echo mio@2 ADDR`, as \
         `echo_server --threads 2 --pin` does), under the same load: {conns} connections x \
         {size} B, the load generator pinned to CPU {}. `cargo run --release -p loop-bench -- \
         per-core`; median of the runs. CPU/request is the server's, all its threads.\n",
        crate::echo::SERVER_CPU,
        crate::echo::CLIENT_CPU
    );
    let _ = writeln!(
        s,
        "| server | req/s | CPU/req | p50 | p99 | runs |\n|---|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.1} us | {:.0} us | {:.0} us | {} |",
            r.server,
            r.median(|x| x.req_per_s),
            r.median(|x| x.cpu_ns_per_req) / 1e3,
            r.median(|x| x.p50_us),
            r.median(|x| x.p99_us),
            r.runs.len()
        );
    }
    let _ = writeln!(s, "\n{PER_CORE_NOTE}\n");
    s
}

/// How to read the per-core rows, and how they scale past two cores.
const PER_CORE_NOTE: &str = "How to read them on a 2-core machine: the load generator needs \
a core as much as the server does, so with two loops the second loop shares CPU 1 with it; \
what two loops can show here is that spreading connections over loops costs nothing per \
request (no lock and no queue between the loops: the CPU per request stays that of one loop), \
and how much of a busy machine a server of two threads gets. Past two cores it scales with \
the cores given to the loops: they share nothing but the policy that made them (each has its \
own epoll instance or ring, timers, tasks, spare buffers and listener; the kernel's \
`SO_REUSEPORT` hashing spreads the connections), so N loops on N otherwise idle cores serve \
about N times one loop's requests, until the kernel's loopback TCP or the clients are the \
limit. The one thing they share on purpose is stopping: a loop that fails, or Ctrl-C, stops \
all of them.";

fn http_rows(s: &mut String, rows: &[crate::http::HttpRow]) {
    let _ = writeln!(
        s,
        "| server | req/s | vs tokio | CPU/req | vs tokio | p50 | p99 | errors |\n|---|---|---|---|---|---|---|---|"
    );
    let tokio = rows.iter().find(|r| r.server == "tokio");
    for r in rows {
        let (vs_rps, vs_cpu) = tokio.map_or(("-".into(), "-".into()), |t| {
            (
                format!("{:.2}x", r.req_per_s / t.req_per_s),
                format!("{:.2}x", t.cpu_ns_per_req() / r.cpu_ns_per_req()),
            )
        });
        let _ = writeln!(
            s,
            "| {} | {:.0} | {vs_rps} | {:.1} us | {vs_cpu} | {:.0} us | {:.0} us | {} |",
            r.server,
            r.req_per_s,
            r.cpu_ns_per_req() / 1e3,
            r.p50_us,
            r.p99_us,
            if r.errors { "yes" } else { "no" }
        );
    }
    s.push('\n');
}

fn native_table(res: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### System calls per request at full speed\n");
    let _ = writeln!(
        s,
        "`strace -c -p` stops the server at every call, so data is always waiting when it reads: \
         a readiness server then never meets `EAGAIN` and never re-arms its fd, and looks ideal. \
         Here each class of calls is counted in a run of its own, the server started under \
         `strace -f --seccomp-bpf -e trace=CLASS`, so only that class stops and the rest run at \
         full speed; the total is the sum (`loop-bench/src/native.rs`). Set-up (accept, \
         registration, one warm-up round trip per connection) is counted too.\n"
    );
    let labels: Vec<&str> = crate::native::CLASSES.iter().map(|c| c.0).collect();
    let _ = writeln!(
        s,
        "| server | conns | requests | total/req | vs tokio | {} |\n|---|---|---|---|---|{}",
        labels.join(" | "),
        "---|".repeat(labels.len())
    );
    for r in &res.native_syscalls {
        let vs = res
            .native_syscalls
            .iter()
            .find(|t| t.server == "tokio" && t.conns == r.conns)
            .map_or("-".into(), |t| {
                format!("{:.2}x", t.per_request() / r.per_request())
            });
        let classes: Vec<String> = labels
            .iter()
            .map(|l| format!("{:.2}", r.class(l)))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {vs} | {} |",
            r.server,
            r.conns,
            r.requests,
            r.per_request(),
            classes.join(" | ")
        );
    }
    s.push('\n');
    s
}
