//! The peers' section of `BENCHMARKS.md`, made from [`PeersResults`].

use std::fmt::Write as _;

use loop_bench::echo::{CONNS, EchoRow, SIZES};
use loop_bench::report::echo_cpu_ratio;
use loop_bench::stats::median;

use crate::runner::{FileRow, PEERS, PeersResults};

/// The line the section starts with (`BENCHMARKS.md` is spliced from it to [`END`]).
pub const BEGIN: &str =
    "<!-- loop-bench/peers: written by loop-bench/peers/run.sh; edits are overwritten -->";
/// The line the section ends with.
pub const END: &str = "<!-- end of loop-bench/peers -->";

fn cell<'a>(res: &'a PeersResults, server: &str, size: usize, conns: usize) -> Option<&'a EchoRow> {
    res.echo
        .iter()
        .find(|r| r.server == server && r.size == size && r.conns == conns)
}

/// Every server's ratio to tokio in each cell (size-major), for the ranking.
pub fn ratios(res: &PeersResults, server: &str) -> Vec<Option<f64>> {
    let mut v = Vec::new();
    for size in SIZES {
        for conns in CONNS {
            v.push(
                cell(res, server, size, conns)
                    .zip(cell(res, "tokio", size, conns))
                    .map(|(s, t)| echo_cpu_ratio(s, t)),
            );
        }
    }
    v
}

/// The geometric mean of the ratios that exist.
pub fn geomean(xs: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = xs.iter().flatten().copied().filter(|x| *x > 0.0).collect();
    (!v.is_empty()).then(|| (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp())
}

fn servers(res: &PeersResults) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &res.echo {
        if !v.contains(&r.server) {
            v.push(r.server.clone());
        }
    }
    v
}

fn ranking(res: &PeersResults, s: &mut String) {
    let mut rows: Vec<(String, Vec<Option<f64>>, f64)> = servers(res)
        .into_iter()
        .map(|name| {
            let r = ratios(res, &name);
            let g = geomean(&r).unwrap_or(0.0);
            (name, r, g)
        })
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let _ = writeln!(s, "### Ranking\n");
    let _ = writeln!(
        s,
        "Server CPU time per request against tokio's in each cell (above 1: less CPU than tokio), \
         and their geometric mean, which ranks the servers.\n"
    );
    let mut head = String::from("| rank | server | geo-mean |");
    let mut rule = String::from("|---|---|---|");
    for size in SIZES {
        for conns in CONNS {
            let _ = write!(head, " {} KiB x {conns} |", size / 1024);
            rule.push_str("---|");
        }
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (i, (name, r, g)) in rows.iter().enumerate() {
        let _ = write!(s, "| {} | {name} | {g:.2}x |", i + 1);
        for x in r {
            let _ = write!(s, " {} |", x.map_or("-".into(), |x| format!("{x:.2}x")));
        }
        s.push('\n');
    }
    s.push('\n');
}

fn echo_tables(res: &PeersResults, s: &mut String) {
    s.push_str(&loop_bench::report_text::echo_size_tables(&res.echo));
}

fn memory_table(res: &PeersResults, s: &mut String) {
    if res.memory.is_empty() {
        return;
    }
    let n = res.memory[0].conns;
    let _ = writeln!(
        s,
        "### Memory per idle connection\n\nA fresh server each; its RSS before and after {n} idle \
         connections are open and accepted (`loop_bench::sys::memory_table`, as in the section \
         above), divided by the count. Every server allocates its 64 KiB buffer at accept and \
         touches it only when data comes (smol and glommio read through `AsyncRead`, which wants \
         initialized memory: they zero-fill it at the first data).\n"
    );
    let _ = writeln!(
        s,
        "| server | bytes/conn | vs tokio | RSS before | RSS after |\n|---|---|---|---|---|"
    );
    let tokio = res.memory.iter().find(|m| m.server == "tokio");
    for m in &res.memory {
        let vs = tokio.map_or("-".into(), |t| {
            format!("{:.2}x", t.per_conn() / m.per_conn())
        });
        let _ = writeln!(
            s,
            "| {} | {:.0} | {vs} | {} KiB | {} KiB |",
            m.server,
            m.per_conn(),
            m.rss_before / 1024,
            m.rss_after / 1024
        );
    }
    s.push('\n');
}

/// `subject / pread` round by round (the same round's runs), their median.
fn vs_pread(row: &FileRow, pread: &FileRow) -> f64 {
    let r: Vec<f64> = row
        .runs
        .iter()
        .zip(&pread.runs)
        .map(|(a, b)| a.0 / b.0)
        .collect();
    median(&r)
}

fn file_tables(res: &PeersResults, s: &mut String) {
    if res.files.is_empty() {
        return;
    }
    let rounds = res.files[0].runs.len();
    let _ = writeln!(
        s,
        "### Files: io_uring peers\n\nMeasured {}, `loop-bench/peers/run.sh` (the file step: \
         `peers-bench file`). A 256 MiB file in the page cache (written once, read through before \
         the runs; ext4). `rand4k`: 262,144 reads of 4 KiB at random 4 KiB-aligned offsets, 64 in \
         flight (64 tasks, one buffer each; the same offsets for every subject); `seqread`: 4 \
         passes over the file in 1 MiB reads, one at a time; `seqwrite`: 256 MiB in 1 MiB writes \
         to a new file (created or truncated first, no sync). Each program prints one line per \
         run, `SUBJECT OPS/S MIB/S`; each figure is the median of {rounds} rounds, every subject \
         once a round (a process each, the order rotating), unpinned. *pread* is the baseline: \
         plain `pread`/`pwrite` on one thread, one at a time (`peers-bench pread`); *vs pread* is \
         the median of the per-round ratios of operations per second. monoio, compio and \
         tokio-uring read into and write from one owned buffer per task; glommio's \
         `BufferedFile::read_at` returns a buffer of its own per read and its `write_at` takes a \
         `Vec` it does not give back, so its writes copy the 1 MiB block each time. smol has no \
         file I/O of its own (`smol::fs` is a thread pool) and no row.\n",
        res.files_date
    );
    let _ = writeln!(
        s,
        "| workload | subject | ops/s | MiB/s | vs pread |\n|---|---|---|---|---|"
    );
    for f in &res.files {
        let pread = res
            .files
            .iter()
            .find(|p| p.workload == f.workload && p.subject == "pread");
        let vs = pread.map_or("-".into(), |p| format!("{:.2}x", vs_pread(f, p)));
        let ops: Vec<f64> = f.runs.iter().map(|r| r.0).collect();
        let mib: Vec<f64> = f.runs.iter().map(|r| r.1).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.1} | {vs} |",
            f.workload,
            f.subject,
            median(&ops),
            median(&mib)
        );
    }
    s.push('\n');
}

fn intro(res: &PeersResults, s: &mut String) {
    let m = &res.machine;
    let versions: Vec<String> = res
        .versions
        .iter()
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "## io_uring and polling peers\n\nMeasured {} at commit {} with `{}` (its own run: the \
         figures above are from another). {} CPUs ({}), Linux {}, {}; {}.\n",
        m.date,
        m.commit,
        res.command,
        m.nproc,
        m.cpu,
        m.kernel,
        m.rustc,
        versions.join(", ")
    );
    let _ = writeln!(
        s,
        "The io_uring runtimes monoio (its `IoUringDriver`), compio (its io_uring driver), glommio \
         (one `LocalExecutor`, its buffered files) and tokio-uring, and smol (`async-io`'s reactor \
         on the `polling` crate, epoll here, with a `LocalExecutor`), each serving echo as \
         loop-bench's servers do (`loop-bench/peers/src/bin/*.rs`): one thread, accept, per \
         connection read up to 64 KiB into one buffer and write it all back, `TCP_NODELAY`, a \
         listener with a backlog of 4096. Ours (mio, polling, uring) and tokio run in the same run \
         from the root's `loop-bench` binary, with the same harness as the echo section above \
         (`loop_bench::echo::run_matrix`: every server started once, {} rounds per cell, each \
         round every server once with the order rotating; servers pinned to CPU 0, the load \
         generator to CPU 1). *CPU/req* is the server's CPU time per request (all its threads); \
         *vs tokio* is the median of the per-round ratios tokio's CPU/req / the server's.\n",
        res.reps
    );
}

/// The whole section, from [`BEGIN`] to [`END`].
pub fn markdown(res: &PeersResults) -> String {
    let mut s = format!("{BEGIN}\n");
    if !res.echo.is_empty() {
        intro(res, &mut s);
        ranking(res, &mut s);
        echo_tables(res, &mut s);
    }
    memory_table(res, &mut s);
    file_tables(res, &mut s);
    let _ = writeln!(s, "Notes:\n");
    if !res
        .notes
        .iter()
        .any(|n| PEERS.iter().any(|p| n.starts_with(&format!("{p}:"))))
    {
        let _ = writeln!(
            s,
            "- Every peer built (`{}`) and ran here.",
            res.machine.rustc
        );
    }
    for n in &res.notes {
        let _ = writeln!(s, "- {n}");
    }
    s.push('\n');
    s.push_str(END);
    s.push('\n');
    s
}

/// `doc` with the section replaced by `section` (or appended if it has none).
pub fn splice(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let rest = doc[e + END.len()..].trim_start_matches('\n');
            format!("{}{section}{rest}", &doc[..b])
        }
        _ => format!("{}\n\n{section}", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_once() {
        let a = splice("# B\n\ntext\n", &format!("{BEGIN}\nx\n{END}\n"));
        assert_eq!(a, format!("# B\n\ntext\n\n{BEGIN}\nx\n{END}\n"));
        let b = splice(&a, &format!("{BEGIN}\ny\n{END}\n"));
        assert_eq!(b, format!("# B\n\ntext\n\n{BEGIN}\ny\n{END}\n"));
        assert_eq!(geomean(&[Some(2.0), None, Some(0.5)]), Some(1.0));
    }
}
