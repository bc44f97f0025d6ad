"""The micro-benchmarks of loop-bench (src/micro) in CPython asyncio or uvloop.

Usage: python3 micro.py --loop asyncio|uvloop --n N --k K --reps R
Prints a JSON list of rows {bench, subject, n, paired, runs: [{ns_per_op, p99_ns}]} on stdout,
in the shape loop-bench reads. Each benchmark is written as its Rust twin: see src/micro/ours.rs.
"""

import argparse
import asyncio
import json
import threading
import time
import queue

WAKE_GAP = 0.0003  # seconds, as WAKE_GAP in src/micro/mod.rs
QUEUE_SIZE = 128  # as QUEUE_SIZE in src/micro/mod.rs
GATHER_BATCH = 1000  # as GATHER_BATCH in src/micro/mod.rs


def timer_delay(i):
    """The same delays as timer_delay in src/micro/mod.rs, in seconds."""
    return 1.0 + ((i * 2654435761) % 60_000_000) / 1e6


def per_op(ns, n):
    return {"ns_per_op": ns / max(n, 1), "p99_ns": None}


def latency(samples):
    samples.sort()
    rank = lambda p: samples[max(1, -(-len(samples) * p // 100)) - 1]  # nearest rank
    return {"ns_per_op": float(rank(50)), "p99_ns": float(rank(99))}


def call_soon(new_loop, n):
    loop = new_loop()
    count = [0]

    def cb():
        count[0] += 1

    t0 = time.perf_counter_ns()
    for _ in range(n):
        loop.call_soon(cb)
    loop.call_soon(loop.stop)
    loop.run_forever()
    took = time.perf_counter_ns() - t0
    loop.close()
    assert count[0] == n
    return per_op(took, n)


def create_task(new_loop, n):
    loop = new_loop()
    count = [0]

    async def work():
        count[0] += 1

    async def main():
        for _ in range(n):
            loop.create_task(work())
        while count[0] < n:
            await asyncio.sleep(0)

    t0 = time.perf_counter_ns()
    loop.run_until_complete(main())
    took = time.perf_counter_ns() - t0
    loop.close()
    return per_op(took, n)


def timers(new_loop, n):
    loop = new_loop()
    delays = [timer_delay(i) for i in range(n)]

    def cb():
        pass

    t0 = time.perf_counter_ns()
    handles = [loop.call_later(d, cb) for d in delays]
    for h in handles:
        h.cancel()
    del handles
    loop.call_soon(loop.stop)
    loop.run_forever()
    took = time.perf_counter_ns() - t0
    loop.close()
    return per_op(took, n)


def threadsafe(new_loop, n, threads):
    loop = new_loop()
    per = n // threads
    total = per * threads
    count = [0]

    def cb():
        count[0] += 1
        if count[0] == total:
            loop.stop()

    def sender():
        for _ in range(per):
            loop.call_soon_threadsafe(cb)

    t0 = time.perf_counter_ns()
    ts = [threading.Thread(target=sender) for _ in range(threads)]
    for t in ts:
        t.start()
    loop.run_forever()
    took = time.perf_counter_ns() - t0
    for t in ts:
        t.join()
    loop.close()
    return per_op(took, total)


def wake_latency(new_loop, k, threads):
    loop = new_loop()
    results = []

    def cb(t0, q):
        q.put(time.perf_counter_ns() - t0)

    def worker():
        q = queue.SimpleQueue()
        lat = []
        for _ in range(k):
            time.sleep(WAKE_GAP)
            loop.call_soon_threadsafe(cb, time.perf_counter_ns(), q)
            lat.append(q.get())
        return lat

    def joiner():
        out = [[] for _ in range(threads)]
        ws = [threading.Thread(target=lambda i=i: out[i].extend(worker())) for i in range(threads)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        for o in out:
            results.extend(o)
        loop.call_soon_threadsafe(loop.stop)

    j = threading.Thread(target=joiner)
    j.start()
    loop.run_forever()
    j.join()
    loop.close()
    return latency(results)


def queue_bench(new_loop, n):
    """asyncio.Queue(QUEUE_SIZE): a producer task puts n items, a consumer task gets them."""
    loop = new_loop()

    async def main():
        q = asyncio.Queue(QUEUE_SIZE)

        async def consumer():
            total = 0
            for _ in range(n):
                total += await q.get()
            return total

        c = loop.create_task(consumer())
        for i in range(n):
            await q.put(i)
        return await c

    t0 = time.perf_counter_ns()
    total = loop.run_until_complete(main())
    took = time.perf_counter_ns() - t0
    loop.close()
    assert total == n * (n - 1) // 2
    return per_op(took, n)


def lock_bench(new_loop, n):
    """n times `async with lock` (acquire + release) in one task."""
    loop = new_loop()

    async def main():
        lock = asyncio.Lock()
        count = 0
        for _ in range(n):
            async with lock:
                count += 1
        return count

    t0 = time.perf_counter_ns()
    count = loop.run_until_complete(main())
    took = time.perf_counter_ns() - t0
    loop.close()
    assert count == n
    return per_op(took, n)


def event_bench(new_loop, n):
    """Ping-pong between two tasks with two asyncio.Events; one op is one round."""
    loop = new_loop()

    async def main():
        ping, pong = asyncio.Event(), asyncio.Event()

        async def other():
            for _ in range(n):
                await ping.wait()
                ping.clear()
                pong.set()

        o = loop.create_task(other())
        rounds = 0
        for _ in range(n):
            ping.set()
            await pong.wait()
            pong.clear()
            rounds += 1
        await o
        return rounds

    t0 = time.perf_counter_ns()
    rounds = loop.run_until_complete(main())
    took = time.perf_counter_ns() - t0
    loop.close()
    assert rounds == n
    return per_op(took, n)


def gather_bench(new_loop, n):
    """asyncio.gather of GATHER_BATCH tasks (each returns its index), n / batch times."""
    loop = new_loop()
    batches = max(1, n // GATHER_BATCH)

    async def work(i):
        return i

    async def main():
        total = 0
        for _ in range(batches):
            tasks = [loop.create_task(work(i)) for i in range(GATHER_BATCH)]
            total += len(await asyncio.gather(*tasks))
        return total

    t0 = time.perf_counter_ns()
    total = loop.run_until_complete(main())
    took = time.perf_counter_ns() - t0
    loop.close()
    assert total == batches * GATHER_BATCH
    return per_op(took, total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--timers-n", type=int, default=None, help="n of the timers bench (default: --n)")
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated bench names (default: all)")
    args = ap.parse_args()
    if args.loop == "uvloop":
        import uvloop

        new_loop = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop
    n, k = args.n, args.k
    tn = args.timers_n or n
    benches = [
        ("call_soon", n, lambda: call_soon(new_loop, n)),
        ("create_task", n, lambda: create_task(new_loop, n)),
        ("timers", tn, lambda: timers(new_loop, tn)),
        ("threadsafe_1", n, lambda: threadsafe(new_loop, n, 1)),
        ("threadsafe_4", n, lambda: threadsafe(new_loop, n, 4)),
        ("wake_1", k, lambda: wake_latency(new_loop, k, 1)),
        ("wake_4", k, lambda: wake_latency(new_loop, k, 4)),
        ("queue", n, lambda: queue_bench(new_loop, n)),
        ("lock", n, lambda: lock_bench(new_loop, n)),
        ("event", n, lambda: event_bench(new_loop, n)),
        ("gather_1000", n, lambda: gather_bench(new_loop, n)),
    ]
    only = [b for b in args.only.split(",") if b]
    if only:
        benches = [b for b in benches if b[0] in only]
    rows = []
    for name, size, fn in benches:
        runs = [fn() for _ in range(args.reps)]
        rows.append({"bench": name, "subject": args.loop, "n": size, "paired": False, "runs": runs})
    json.dump(rows, __import__("sys").stdout)


if __name__ == "__main__":
    main()
