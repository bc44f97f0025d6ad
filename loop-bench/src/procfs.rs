//! What the harness reads about a server process from `/proc`, and how it starts one: CPU time,
//! resident memory, open descriptors; CPU pinning and the descriptor limit.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// CPU time (user + system) of every thread of `pid`, in nanoseconds.
///
/// Sums `/proc/PID/task/*/schedstat` (nanosecond resolution); if that is unavailable, falls back
/// to `utime + stime` of `/proc/PID/stat` (clock-tick resolution, which includes threads that
/// have exited).
///
/// # Errors
/// The process is gone, or `/proc` is not mounted.
pub fn cpu_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in dir.flatten() {
            let path = entry.path().join("schedstat");
            if let Ok(text) = std::fs::read_to_string(path)
                && let Some(ns) = text
                    .split_whitespace()
                    .next()
                    .and_then(|t| t.parse::<u64>().ok())
            {
                total += ns;
                any = true;
            }
        }
    }
    if any {
        return Ok(total);
    }
    stat_cpu_ns(pid)
}

/// `utime + stime` of `/proc/PID/stat`, in nanoseconds (all threads, tick resolution).
///
/// # Errors
/// The process is gone, or the file does not parse.
pub fn stat_cpu_ns(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad /proc/PID/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("bad /proc/PID/stat"))
    };
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok((tick(11)? + tick(12)?) * 1_000_000_000 / hz)
}

/// Resident set size of `pid` in bytes (`VmRSS` of `/proc/PID/status`).
///
/// # Errors
/// The process is gone.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc/PID/status"))
}

/// Number of open file descriptors of `pid`.
///
/// # Errors
/// The process is gone.
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Raises this process's soft descriptor limit to its hard limit; gives the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit; raising the soft limit to the hard one is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    lim.rlim_cur
}

/// Pins the calling thread to CPU `cpu` (ignored if the machine has no such CPU).
pub fn pin_current_thread(cpu: usize) {
    if cpu >= num_cpus() {
        return;
    }
    set_affinity(cpu);
}

/// Binds the calling thread to CPU `cpu` (one async-signal-safe syscall, so it may run between
/// fork and exec). Linux only: elsewhere (macOS has no such call) it does nothing.
#[cfg(target_os = "linux")]
fn set_affinity(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// No CPU affinity outside Linux: runs are not pinned there.
#[cfg(not(target_os = "linux"))]
fn set_affinity(_cpu: usize) {}

/// Online CPUs.
pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Starts `cmd` pinned to CPU `cpu` (if there is more than one), with the descriptor limit
/// raised to the hard limit, output to `log` (a file path).
///
/// # Errors
/// The spawn failing or the log file not opening.
pub fn spawn_server(mut cmd: Command, cpu: Option<usize>, log: &str) -> io::Result<Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let pin = cpu.filter(|&c| c < num_cpus() && num_cpus() > 1);
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe system calls (getrlimit, setrlimit, sched_setaffinity) on stack data.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            if let Some(cpu) = pin {
                set_affinity(cpu);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(fd_count(pid).unwrap() >= 3);
        // Counters only; no timing is asserted.
        cpu_ns(pid).unwrap();
        stat_cpu_ns(pid).unwrap();
    }
}
