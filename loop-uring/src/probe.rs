//! Can io_uring run here, and if not, exactly why.
//!
//! The probe creates a small ring, checks the kernel features the driver relies on, probes
//! every opcode it uses and runs a NOP through the ring. Reasons name the cause and what to
//! do: blocked by seccomp (EPERM), disabled by `kernel.io_uring_disabled` (with its value), not
//! in this kernel (ENOSYS), ring memory refused (ENOMEM, RLIMIT_MEMLOCK), no file descriptor
//! left (EMFILE, ENFILE), a missing feature or opcode, or `LOOP_URING=off`.
//!
//! The answer is kept for the life of the process once it is final: a success, or a failure
//! that will not go away by itself (see [`Unavailable::is_transient`]). A transient failure is
//! not kept, so the next probe tries again; and a ring that later fails to be made for a lasting
//! reason (a seccomp filter installed after the probe) replaces a kept success.

use std::fmt;
use std::sync::{PoisonError, RwLock};

/// What the kernel's io_uring offers this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` are accepted (Linux 6.1+):
    /// completions are processed only when the loop asks, on the loop's thread.
    pub defer_taskrun: bool,
    /// The kernel's `IORING_FEAT_*` bits that the driver checked (all present).
    pub features: Vec<&'static str>,
}

/// Why io_uring cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What happened and what to do, in one sentence.
    pub reason: String,
    /// The errno that `io_uring_setup` failed with, if that was the cause.
    pub errno: Option<i32>,
}

impl Unavailable {
    /// True if the cause may pass by itself, so trying again later can succeed: the process or
    /// the system is out of file descriptors (EMFILE, ENFILE) or of memory (ENOMEM), or the
    /// kernel said to try again (EAGAIN). False for lasting causes: seccomp or
    /// `kernel.io_uring_disabled` (EPERM), no io_uring in the kernel (ENOSYS), a missing feature
    /// or opcode, `LOOP_URING=off`.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self.errno,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN)
        )
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unavailable {}

impl From<Unavailable> for loop_api::LoopError {
    fn from(u: Unavailable) -> Self {
        loop_api::LoopError::Unavailable {
            backend: "uring".into(),
            reason: u.reason,
        }
    }
}

/// The environment variable that turns io_uring off (`off`, `0`, `false`, `no`), so that
/// `Backend::Auto` falls back and the fallback path can be tested on Linux.
pub const DISABLE_VAR: &str = "LOOP_URING";

/// Why [`DISABLE_VAR`] turns io_uring off in this process, or `None` when it does not (unset, or
/// any value other than `off`, `0`, `false`, `no`).
#[must_use]
pub fn disabled_by_env() -> Option<String> {
    let v = std::env::var(DISABLE_VAR).ok()?;
    let off = matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "off" | "0" | "false" | "no"
    );
    off.then(|| format!("io_uring is turned off by {DISABLE_VAR}={v}; unset it to use io_uring"))
}

/// The probe's final answer, once there is one (see the module's documentation).
static PROBE: RwLock<Option<Result<Capabilities, Unavailable>>> = RwLock::new(None);

/// Whether io_uring can run here, and if not, why.
///
/// A success or a lasting failure is kept for the life of the process; a
/// [transient](Unavailable::is_transient) failure is not, so the next call probes again.
///
/// # Errors
/// [`Unavailable`] with the precise reason.
pub fn probe() -> Result<Capabilities, Unavailable> {
    if let Some(kept) = &*PROBE.read().unwrap_or_else(PoisonError::into_inner) {
        return kept.clone();
    }
    let fresh = probe_uncached();
    if fresh.as_ref().map_or_else(|u| !u.is_transient(), |_| true) {
        let mut kept = PROBE.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have kept an answer meanwhile; the first one stays.
        return kept.get_or_insert(fresh).clone();
    }
    fresh
}

/// Records that making a ring failed after the probe passed: a lasting cause (a seccomp filter
/// installed since, say) becomes the probe's answer, so later probes say so at once.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn ring_failed(why: &Unavailable) {
    if !why.is_transient() {
        *PROBE.write().unwrap_or_else(PoisonError::into_inner) = Some(Err(why.clone()));
    }
}

/// True if [`probe`] succeeds.
pub fn is_supported() -> bool {
    probe().is_ok()
}

/// Runs the probe without the process-wide cache (for tests that change the environment).
///
/// # Errors
/// [`Unavailable`] with the precise reason.
pub fn probe_uncached() -> Result<Capabilities, Unavailable> {
    if let Some(reason) = disabled_by_env() {
        return Err(Unavailable {
            reason,
            errno: None,
        });
    }
    imp::probe()
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn probe() -> Result<Capabilities, Unavailable> {
        Err(Unavailable {
            reason: "io_uring exists only on Linux; use the mio or polling backend".into(),
            errno: None,
        })
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use io_uring::{IoUring, Probe, opcode};
    use std::io;

    /// Every opcode the driver submits.
    const REQUIRED: &[(u8, &str)] = &[
        (opcode::Nop::CODE, "NOP"),
        (opcode::Accept::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::Read::CODE, "READ"),
    ];

    pub(crate) fn setup_error(e: &io::Error) -> Unavailable {
        let errno = e.raw_os_error();
        let reason = match errno {
            Some(libc::EPERM) => match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| s.trim().to_string())
            {
                Ok(v) if v == "2" => "io_uring is disabled by sysctl kernel.io_uring_disabled=2 (EPERM from io_uring_setup); set LOOP_BACKEND=mio, or set the sysctl to 0".to_string(),
                Ok(v) if v == "1" => "io_uring is restricted by sysctl kernel.io_uring_disabled=1 to the group in kernel.io_uring_group, and this process is not in it (EPERM from io_uring_setup); set LOOP_BACKEND=mio or join that group".to_string(),
                _ => "io_uring is blocked by seccomp (EPERM from io_uring_setup); set LOOP_BACKEND=mio or allow io_uring in the container profile".to_string(),
            },
            Some(libc::ENOSYS) => "io_uring is not in this kernel (ENOSYS from io_uring_setup; it needs Linux 5.11 or later built with CONFIG_IO_URING); set LOOP_BACKEND=mio".to_string(),
            Some(libc::ENOMEM) => "the kernel refused the ring's memory (ENOMEM from io_uring_setup): raise RLIMIT_MEMLOCK (ulimit -l; kernels before 5.12 charge rings to it), free memory, or set LOOP_BACKEND=mio".to_string(),
            Some(libc::EMFILE) => "no file descriptor is left for the ring (EMFILE from io_uring_setup: the process reached RLIMIT_NOFILE): close some or raise the limit (ulimit -n), or set LOOP_BACKEND=mio".to_string(),
            Some(libc::ENFILE) => "no file descriptor is left for the ring (ENFILE from io_uring_setup: the system's file table is full): close some or raise fs.file-max, or set LOOP_BACKEND=mio".to_string(),
            Some(libc::EAGAIN) => "the kernel is short of a resource for the ring (EAGAIN from io_uring_setup): try again later or set LOOP_BACKEND=mio".to_string(),
            _ => format!("io_uring_setup failed: {e}; set LOOP_BACKEND=mio"),
        };
        Unavailable { reason, errno }
    }

    fn missing(what: &str) -> Unavailable {
        Unavailable {
            reason: format!(
                "this kernel's io_uring lacks {what}; set LOOP_BACKEND=mio or use a newer kernel"
            ),
            errno: None,
        }
    }

    pub(super) fn probe() -> Result<Capabilities, Unavailable> {
        let mut ring: IoUring = IoUring::new(8).map_err(|e| setup_error(&e))?;
        let params = ring.params();
        if !params.is_feature_nodrop() {
            return Err(missing(
                "IORING_FEAT_NODROP (Linux 5.5): completions could be dropped",
            ));
        }
        if !params.is_feature_ext_arg() {
            return Err(missing(
                "IORING_FEAT_EXT_ARG (Linux 5.11): waits with a timeout",
            ));
        }
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| missing(&format!("IORING_REGISTER_PROBE (Linux 5.6): {e}")))?;
        for (code, name) in REQUIRED {
            if !probe.is_supported(*code) {
                return Err(missing(&format!("the {name} opcode")));
            }
        }
        let nop = opcode::Nop::new().build().user_data(7);
        // SAFETY: a NOP references no memory.
        unsafe { ring.submission().push(&nop) }.map_err(|_| missing("room for one entry"))?;
        ring.submit_and_wait(1)
            .map_err(|e| missing(&format!("a working NOP (io_uring_enter failed: {e})")))?;
        let ok = ring
            .completion()
            .next()
            .is_some_and(|c| c.user_data() == 7 && c.result() == 0);
        if !ok {
            return Err(missing("a working NOP (no completion came back)"));
        }
        let defer_taskrun =
            match IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .build(8)
            {
                Ok(_) => true,
                // Out of fds or memory right now says nothing about the kernel: probe again later.
                Err(e) if setup_error(&e).is_transient() => return Err(setup_error(&e)),
                Err(_) => false,
            };
        Ok(Capabilities {
            defer_taskrun,
            features: vec!["NODROP", "EXT_ARG"],
        })
    }
}

#[cfg(target_os = "linux")]
pub(crate) use imp::setup_error;
