//! `LOOP_DEBUG`: debug mode from the environment (asyncio's `PYTHONASYNCIODEBUG`).

use std::ffi::OsStr;

/// The environment variable that turns debug mode on for the loops a [`DefaultLoopPolicy`]
/// makes on a backend ([`DefaultLoopPolicy::new`], [`DefaultLoopPolicy::with_backend`], and so
/// [`run`](crate::run), [`Runner::new`](crate::Runner::new), [`install`](crate::install)):
/// `1`, `true`, `yes` or `on` turn it on; `0`, `false`, `no`, `off`, empty or unset leave it
/// off (case does not matter). Any other value turns it on too, as any non-empty
/// `PYTHONASYNCIODEBUG` does, and says so once on stderr (naming the value and the accepted
/// ones). Ignored in setuid/setgid processes, as `LOOP_BACKEND` is.
///
/// [`DefaultLoopPolicy`]: crate::DefaultLoopPolicy
/// [`DefaultLoopPolicy::new`]: crate::DefaultLoopPolicy::new
/// [`DefaultLoopPolicy::with_backend`]: crate::DefaultLoopPolicy::with_backend
pub const DEBUG_ENV_VAR: &str = "LOOP_DEBUG";

/// Whether [`DEBUG_ENV_VAR`] (`LOOP_DEBUG`) turns debug mode on, for a loop made by other
/// means than the default policy (a factory: `lp.set_debug(loop_policy::debug_from_env())`).
///
/// An unknown value turns it on and says so once on stderr (see [`DEBUG_ENV_VAR`]).
#[must_use]
pub fn debug_from_env() -> bool {
    if crate::backend::is_setuid_or_setgid() {
        return false;
    }
    let value = std::env::var_os(DEBUG_ENV_VAR);
    let (on, warning) = parse(value.as_deref());
    if let Some(warning) = warning {
        crate::auto::notice(&warning);
    }
    on
}

/// What a `LOOP_DEBUG` value means, and the warning an unknown value gets.
pub(crate) fn parse(value: Option<&OsStr>) -> (bool, Option<String>) {
    let Some(value) = value else {
        return (false, None);
    };
    let text = value.to_string_lossy();
    let word = text.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(word));
    if word.is_empty() || is(&["0", "false", "no", "off"]) {
        (false, None)
    } else if is(&["1", "true", "yes", "on"]) {
        (true, None)
    } else {
        let warning = format!(
            "{DEBUG_ENV_VAR}={value:?} is not one of 1, true, yes, on (debug mode on) or 0, false, no, off (off): debug mode is on, as for any other non-empty value"
        );
        (true, Some(warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_loop_debug() {
        let of = |v: Option<&str>| parse(v.map(OsStr::new));
        assert_eq!(of(None), (false, None));
        for off in ["", "  ", "0", "false", "No", "OFF"] {
            assert_eq!(of(Some(off)), (false, None), "{off:?}");
        }
        for on in ["1", " true ", "YES", "on"] {
            assert_eq!(of(Some(on)), (true, None), "{on:?}");
        }
        let (on, warning) = of(Some("maybe"));
        assert!(
            on,
            "any other non-empty value turns debug mode on, as in asyncio"
        );
        let warning = warning.expect("an unknown value is warned about");
        assert!(warning.contains("LOOP_DEBUG=\"maybe\""), "{warning}");
        assert!(warning.contains("0, false, no, off"), "{warning}");
    }
}
