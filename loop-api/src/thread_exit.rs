//! Loops are closed when the thread they were made on exits.
//!
//! A loop is freed (and so closed) when its last [`EventLoop`](crate::EventLoop) handle is
//! dropped, and the loop's own futures hold it weakly. A handle that one of the loop's own
//! callbacks or tasks holds is a reference cycle no handle can see, though: the loop owns the
//! callback, the callback owns the loop. Rust has no collector to find it, so the thread does:
//! every loop made on a thread is closed when that thread exits, which frees its tasks and
//! callbacks and so breaks the cycle. (Nothing can run a loop whose thread is gone: `EventLoop`
//! is `!Send`.) The main thread's locals are not destroyed at process exit; the OS reclaims
//! everything then.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};

use crate::abstract_loop::AbstractEventLoop;

/// The loops made on this thread (weak: this list keeps none alive).
struct ThreadLoops(RefCell<Vec<Weak<dyn AbstractEventLoop>>>);

impl Drop for ThreadLoops {
    fn drop(&mut self) {
        for weak in self.0.get_mut().drain(..) {
            let Some(lp) = weak.upgrade() else { continue };
            if lp.is_running() {
                continue;
            }
            // A panic escaping a thread-local destructor aborts the process: contain it (the
            // loop's destructors run user code).
            let closed = catch_unwind(AssertUnwindSafe(|| {
                let _ = lp.close();
                drop(lp);
            }));
            drop(closed);
        }
    }
}

thread_local! {
    static THREAD_LOOPS: ThreadLoops = const { ThreadLoops(RefCell::new(Vec::new())) };
}

/// Records `lp` as a loop of this thread, to be closed when the thread exits.
pub(crate) fn register(lp: &Rc<dyn AbstractEventLoop>) {
    let weak = Rc::downgrade(lp);
    let _ = THREAD_LOOPS.try_with(|loops| {
        let mut loops = loops.0.borrow_mut();
        // Forget the loops already freed, now and then (amortised: the list at most doubles).
        if loops.len() >= 16 && loops.len().is_power_of_two() {
            loops.retain(|w| w.strong_count() > 0);
        }
        loops.push(weak);
    });
}
