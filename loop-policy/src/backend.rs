//! [`Backend`]: which I/O driver a loop runs on, chosen in code or with `LOOP_BACKEND`.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use loop_api::{EventLoop, LoopError};

use crate::auto;
use crate::registry;
use loop_core::LoopConfig;

/// The environment variable that picks the backend of [`DefaultLoopPolicy::new`]
/// (`auto`, `mio`, `polling` or `uring`; ignored in setuid/setgid processes).
///
/// [`DefaultLoopPolicy::new`]: crate::DefaultLoopPolicy::new
pub const ENV_VAR: &str = "LOOP_BACKEND";

/// An event-loop backend: the I/O driver under the loop.
///
/// Parse one from text with [`str::parse`] (`"auto"`, `"mio"`, `"polling"`, `"uring"`; case and
/// surrounding whitespace do not matter) or read [`ENV_VAR`] with [`Backend::from_env`].
///
/// ```
/// use loop_policy::Backend;
///
/// let b: Backend = " MIO ".parse().unwrap();
/// assert_eq!(b, Backend::Mio);
/// assert_eq!(b.to_string(), "mio");
/// assert!("epoll".parse::<Backend>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The best backend available here: io_uring if it works, else mio.
    #[default]
    Auto,
    /// Readiness through `mio` (epoll on Linux, kqueue on macOS/BSD).
    Mio,
    /// Readiness through the `polling` crate (epoll, kqueue, event ports, poll(2)).
    Polling,
    /// Completion through Linux io_uring.
    Uring,
}

impl Backend {
    /// Every backend, in the order of their names in messages.
    pub const ALL: [Backend; 4] = [
        Backend::Auto,
        Backend::Mio,
        Backend::Polling,
        Backend::Uring,
    ];

    /// The backend's name, as `LOOP_BACKEND` spells it and `EventLoop::backend_name` reports it.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Mio => "mio",
            Backend::Polling => "polling",
            Backend::Uring => "uring",
        }
    }

    /// The backend named by `LOOP_BACKEND`; [`Backend::Auto`] when it is unset or empty.
    ///
    /// As in libev, the variable is ignored (the result is `Auto`) in a setuid or setgid process,
    /// so the environment of an unprivileged user cannot steer a privileged program.
    ///
    /// # Errors
    /// [`LoopError::InvalidArgument`] naming the bad value and listing the choices.
    pub fn from_env() -> Result<Backend, LoopError> {
        from_env_value(std::env::var_os(ENV_VAR), is_setuid_or_setgid())
    }

    /// True if a loop on this backend can be made here: it is built into this binary and its
    /// probe passes (for `Uring`: ring creation and the opcode probe). `Auto` is available when
    /// the backend it resolves to is.
    #[must_use]
    pub fn is_available(&self) -> bool {
        registry::probe(self.resolve()).is_ok()
    }

    /// Why a loop cannot be made on this backend here (not built in, not implemented yet, the
    /// kernel refuses, ...), or `None` when it [is available](Self::is_available).
    #[must_use]
    pub fn why_unavailable(&self) -> Option<String> {
        registry::probe(self.resolve()).err().map(|r| r.reason)
    }

    /// The concrete backend this one stands for: `Auto` becomes the first available of io_uring
    /// and mio (mio if none is); the others are themselves.
    #[must_use]
    pub fn resolve(&self) -> Backend {
        self.resolve_with_reason().0
    }

    /// [`resolve`](Self::resolve), with a sentence saying why that backend was picked (for
    /// `Auto`: why the better ones were passed over, said once on stderr too).
    ///
    /// `Auto`'s choice follows the probes, which keep their answer once it is final: io_uring
    /// working, or refused for a lasting cause (seccomp, `kernel.io_uring_disabled`, an old
    /// kernel). A cause that may pass (no file descriptor or memory left) is not kept, so a
    /// later call can choose io_uring again.
    ///
    /// ```
    /// use loop_policy::Backend;
    ///
    /// let (chosen, why) = Backend::Auto.resolve_with_reason();
    /// assert_ne!(chosen, Backend::Auto);
    /// assert!(why.starts_with("auto chose"));
    /// ```
    #[must_use]
    pub fn resolve_with_reason(&self) -> (Backend, String) {
        if *self != Backend::Auto {
            let why = match registry::probe(*self) {
                Ok(()) => format!("{self} was asked for"),
                Err(r) => format!("{self} was asked for, but it is unavailable: {}", r.reason),
            };
            return (*self, why);
        }
        auto::resolve()
    }

    /// Why a loop made for this backend runs where it runs: the reason of
    /// [`resolve_with_reason`](Self::resolve_with_reason).
    #[must_use]
    pub fn explain(&self) -> String {
        self.resolve_with_reason().1
    }

    /// Makes a new loop on this backend.
    ///
    /// `Auto` decides for each loop: it makes it on the backend it [resolves](Self::resolve)
    /// to, and if that loop cannot be made (io_uring refused a ring after its probe passed:
    /// a seccomp filter installed since, no memory or file descriptor left), on mio instead,
    /// saying why once on stderr. An explicitly named backend never falls back.
    ///
    /// # Errors
    /// [`LoopError::Unavailable`] saying why the backend cannot run here and what to do;
    /// an I/O error of the backend (no more file descriptors, ...).
    pub fn new_event_loop(&self) -> Result<EventLoop, LoopError> {
        self.new_event_loop_with(LoopConfig::default())
    }

    /// Makes a new test loop on this backend (on the one it resolves to, for `Auto`): real
    /// I/O, timers on virtual time (see [`loop_api::VirtualClock`]).
    ///
    /// # Errors
    /// As [`new_event_loop`](Self::new_event_loop).
    pub fn new_virtual_event_loop(&self) -> Result<EventLoop, LoopError> {
        self.new_event_loop_with(LoopConfig::virtual_time())
    }

    /// Makes a loop on this backend set up by `config` (its clock, debug mode): `Auto`
    /// through its per-loop choice (falling back as [`new_event_loop`](Self::new_event_loop)
    /// does), the others strictly. The first loop made this way (every `new_event_loop` and
    /// policy loop comes here) starts the monitor `LOOP_MONITOR` asks for, if any
    /// ([`crate::monitor`]).
    ///
    /// # Errors
    /// As [`new_event_loop`](Self::new_event_loop).
    pub fn new_event_loop_with(&self, config: LoopConfig) -> Result<EventLoop, LoopError> {
        crate::monitor::start_from_env();
        let (lp, reason) = match self {
            Backend::Auto => auto::open(&config)?,
            b => (registry::open(*b, &config)?, format!("{b} was asked for")),
        };
        chosen(*self, &lp, &reason);
        Ok(lp)
    }
}

/// With the `tracing` feature: the DEBUG event of target `loop_policy` saying which backend a
/// new loop runs on and why (asyncio's "Using selector: ..." debug log line).
fn chosen(asked: Backend, lp: &EventLoop, reason: &str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "loop_policy",
        backend = lp.backend_name(),
        asked = asked.name(),
        reason,
        "event loop on {}: {reason}",
        lp.backend_name()
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (asked, lp, reason);
}

/// What `LOOP_BACKEND=value` selects, in a process that is privileged (setuid/setgid) or not.
pub(crate) fn from_env_value(
    value: Option<OsString>,
    privileged: bool,
) -> Result<Backend, LoopError> {
    let Some(value) = value.filter(|_| !privileged) else {
        return Ok(Backend::Auto);
    };
    let Some(text) = value.to_str() else {
        return Err(LoopError::InvalidArgument(format!(
            "{ENV_VAR}={value:?} is not valid UTF-8; expected one of {}",
            choices()
        )));
    };
    if text.trim().is_empty() {
        return Ok(Backend::Auto);
    }
    text.parse()
        .map_err(|e| LoopError::InvalidArgument(format!("{ENV_VAR}: {e}")))
}

/// True in a setuid or setgid process (real and effective ids differ).
pub(crate) fn is_setuid_or_setgid() -> bool {
    // SAFETY: getuid/geteuid/getgid/getegid take no arguments, touch no memory and cannot fail.
    unsafe { libc::getuid() != libc::geteuid() || libc::getgid() != libc::getegid() }
}

/// "auto, mio, polling, uring".
fn choices() -> String {
    Backend::ALL.map(|b| b.name()).join(", ")
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = LoopError;

    /// Parses a backend name; case and surrounding whitespace are ignored.
    ///
    /// # Errors
    /// [`LoopError::InvalidArgument`] naming the value and listing the choices.
    fn from_str(s: &str) -> Result<Backend, LoopError> {
        let wanted = s.trim();
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                LoopError::InvalidArgument(format!(
                    "unknown event loop backend {wanted:?}; expected one of {}",
                    choices()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_text(r: Result<Backend, LoopError>) -> String {
        match r {
            Err(LoopError::InvalidArgument(msg)) => msg,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_name() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
            assert_eq!(b.to_string().parse::<Backend>().unwrap(), b);
        }
    }

    #[test]
    fn parsing_ignores_case_and_whitespace() {
        assert_eq!("MIO".parse::<Backend>().unwrap(), Backend::Mio);
        assert_eq!("  Uring\n".parse::<Backend>().unwrap(), Backend::Uring);
        assert_eq!("\tPolling ".parse::<Backend>().unwrap(), Backend::Polling);
        assert_eq!("aUtO".parse::<Backend>().unwrap(), Backend::Auto);
    }

    #[test]
    fn bad_value_names_it_and_lists_choices() {
        let msg = invalid_text("epoll".parse());
        assert!(msg.contains("\"epoll\""), "{msg}");
        assert!(msg.contains("auto, mio, polling, uring"), "{msg}");
        invalid_text("".parse());
        invalid_text("mio uring".parse());
        invalid_text("mi".parse());
    }

    #[test]
    fn env_value_unset_or_empty_is_auto() {
        assert_eq!(from_env_value(None, false).unwrap(), Backend::Auto);
        assert_eq!(
            from_env_value(Some("".into()), false).unwrap(),
            Backend::Auto
        );
        assert_eq!(
            from_env_value(Some("  ".into()), false).unwrap(),
            Backend::Auto
        );
    }

    #[test]
    fn env_value_is_parsed() {
        assert_eq!(
            from_env_value(Some(" Mio ".into()), false).unwrap(),
            Backend::Mio
        );
        let msg = invalid_text(from_env_value(Some("bogus".into()), false));
        assert!(msg.starts_with("LOOP_BACKEND"), "{msg}");
        assert!(msg.contains("bogus") && msg.contains("uring"), "{msg}");
    }

    #[test]
    fn env_value_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let msg = invalid_text(from_env_value(
            Some(OsString::from_vec(vec![b'm', 0xff])),
            false,
        ));
        assert!(msg.contains("not valid UTF-8"), "{msg}");
    }

    #[test]
    fn env_value_is_ignored_when_privileged() {
        assert_eq!(
            from_env_value(Some("bogus".into()), true).unwrap(),
            Backend::Auto
        );
        assert_eq!(
            from_env_value(Some("uring".into()), true).unwrap(),
            Backend::Auto
        );
    }

    /// Serialises the tests that change the process environment.
    static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Sets (`Some`) or removes (`None`) `LOOP_BACKEND`.
    fn set_env(value: Option<&std::ffi::OsStr>) {
        // SAFETY: only the tests holding ENV_LOCK touch the environment, and no test in this
        // crate reads it from another thread while they run (the others use from_env_value).
        unsafe {
            match value {
                Some(v) => std::env::set_var(ENV_VAR, v),
                None => std::env::remove_var(ENV_VAR),
            }
        }
    }

    #[test]
    fn from_env_reads_loop_backend() {
        let _guard = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let saved = std::env::var_os(ENV_VAR);
        set_env(None);
        assert_eq!(Backend::from_env().unwrap(), Backend::Auto);
        set_env(Some("Polling".as_ref()));
        assert_eq!(Backend::from_env().unwrap(), Backend::Polling);
        set_env(Some("".as_ref()));
        assert_eq!(Backend::from_env().unwrap(), Backend::Auto);
        set_env(Some("kqueue".as_ref()));
        let msg = invalid_text(Backend::from_env());
        assert!(
            msg.contains("kqueue") && msg.contains("auto, mio, polling, uring"),
            "{msg}"
        );
        set_env(saved.as_deref());
    }

    #[test]
    fn auto_resolves_to_a_concrete_backend_with_a_reason() {
        let (b, why) = Backend::Auto.resolve_with_reason();
        match registry::probe(Backend::Uring) {
            Ok(()) => {
                assert_eq!(b, Backend::Uring);
                assert_eq!(why, "auto chose uring: it is available");
            }
            Err(registry::Refusal { reason, .. }) => {
                assert_eq!(b, Backend::Mio);
                assert!(why.starts_with("auto chose mio"), "{why}");
                assert!(
                    why.contains(&format!("uring is unavailable: {reason}")),
                    "{why}"
                );
            }
        }
        assert_eq!(Backend::Auto.resolve(), b);
        assert_eq!(Backend::Mio.resolve(), Backend::Mio);
        assert_eq!(Backend::Uring.resolve(), Backend::Uring);
    }

    #[test]
    fn polling_is_registered_and_available() {
        let b = Backend::Polling;
        assert!(b.is_available());
        assert_eq!(b.why_unavailable(), None);
        assert_eq!(b.resolve(), Backend::Polling);
        let lp = b.new_event_loop().unwrap();
        assert_eq!(lp.backend_name(), "polling");
        assert_eq!(lp.run_until_complete(async { 6 * 7 }).unwrap(), 42);
        lp.close().unwrap();
        assert!(!b.explain().contains("unavailable"), "{}", b.explain());
        assert!(Backend::Mio.is_available());
        assert!(Backend::Auto.is_available());
    }

    #[test]
    fn a_backend_left_out_of_the_build_says_which_feature_to_enable() {
        // Every backend is built into this test binary, so check the text `open` would use.
        let why = registry::missing_reason(Backend::Polling);
        assert!(
            why.contains("not built into this binary") && why.contains("`polling` feature"),
            "{why}"
        );
    }
}
