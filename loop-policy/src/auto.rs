//! [`Backend::Auto`]: the first backend that works, decided again for each loop, and why it
//! passed over a better one, said once on stderr.
//!
//! The probes keep only final answers (a success, or a lasting refusal such as seccomp's
//! EPERM), so a passing cause (no file descriptor or memory left) costs the loops made while it
//! lasts, not every later one. A loop whose backend passed its probe but could not be made (a
//! ring refused after the probe) is made on the next backend instead.

use std::sync::{Mutex, PoisonError};

use loop_api::{EventLoop, LoopError};

use crate::backend::Backend;
use crate::registry;
use loop_core::LoopConfig;

/// At most this many distinct notices per process: the reasons come from a short list, this
/// only bounds a process that keeps failing in ever new ways.
const MAX_NOTICES: usize = 16;

/// `Auto`'s choice now: the first available backend in the preference order, and why.
pub(crate) fn resolve() -> (Backend, String) {
    let mut passed_over = Vec::new();
    for &b in registry::AUTO_ORDER {
        match registry::probe(b) {
            Ok(()) if passed_over.is_empty() => {
                return (b, format!("auto chose {b}: it is available"));
            }
            Ok(()) => {
                let why = format!("auto chose {b}: {}", passed_over.join("; "));
                notice(&why);
                return (b, why);
            }
            Err(r) => passed_over.push(unavailable(b, &r.reason, r.transient)),
        }
    }
    let b = registry::AUTO_FALLBACK;
    (
        b,
        format!(
            "auto found no available backend and tried {b}: {}",
            passed_over.join("; ")
        ),
    )
}

/// Makes an `Auto` loop set up by `config`: on the backend [`resolve`] chooses or, when that loop
/// cannot be made, on the next available one in the preference order (saying why, once).
/// Gives the loop and why it runs on its backend.
///
/// # Errors
/// When the chosen backend cannot make the loop and no later one is available, its error;
/// when the later one cannot either, that one's error.
pub(crate) fn open(config: &LoopConfig) -> Result<(EventLoop, String), LoopError> {
    let (chosen, why) = resolve();
    let failure = match registry::try_open(chosen, config) {
        Err(e) => e,
        Ok(lp) => return Ok((lp, why)),
    };
    let next = registry::AUTO_ORDER
        .iter()
        .skip_while(|&&b| b != chosen)
        .skip(1)
        .find(|&&b| registry::probe(b).is_ok());
    let Some(&next) = next else {
        return Err(registry::with_alternatives(chosen, failure));
    };
    let lp = registry::open(next, config)?;
    let reason = match failure {
        LoopError::Unavailable { reason, .. } => reason,
        other => other.to_string(),
    };
    // A lasting cause now fails the probe too; one that passes leaves the probe passing.
    let transient = registry::probe(chosen).is_ok();
    let why = format!(
        "auto chose {next}: {}",
        unavailable(chosen, &reason, transient)
    );
    notice(&why);
    Ok((lp, why))
}

/// "uring is unavailable: reason", plus that auto tries it again if the cause may pass.
fn unavailable(b: Backend, reason: &str, transient: bool) -> String {
    if transient {
        format!("{b} is unavailable: {reason} (auto tries {b} again for the next loop)")
    } else {
        format!("{b} is unavailable: {reason}")
    }
}

/// Says `why` on stderr as one `loop-policy: ...` line, the first time this process has that
/// reason to give. With the `tracing` feature and a subscriber in place, as a WARN event of
/// target `loop_policy` (field `reason`) instead.
pub(crate) fn notice(why: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
    if said.len() < MAX_NOTICES && !said.iter().any(|s| s == why) {
        said.push(why.to_string());
        #[cfg(feature = "tracing")]
        if tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>()) {
            tracing::warn!(target: "loop_policy", reason = why, "{why}");
            return;
        }
        eprintln!("loop-policy: {why}");
    }
}
