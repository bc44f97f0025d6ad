//! Ctrl-C while [`run`](crate::run) or [`Runner::run`](crate::Runner::run) runs, as
//! `asyncio.run` handles it: the first SIGINT cancels the main future (the run returns
//! [`LoopError::Interrupted`](loop_api::LoopError::Interrupted)), the second ends the process
//! with SIGINT's default action.
//!
//! Only on the main thread, and only when SIGINT has its default disposition (no handler of
//! the program's own, no loop handler): the handler is the loop's `add_signal_handler`, set for
//! the duration of the run. A user handler set with `add_signal_handler(SIGINT, ..)` during
//! the run replaces it and is left alone.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use loop_api::EventLoop;

use crate::thread::is_main_thread;

/// Whether Ctrl-C was pressed, and the main future's waker.
#[derive(Default)]
struct Interrupt {
    hit: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// The SIGINT handler of one run; removing it (on drop) restores SIG_DFL if it is still ours.
pub(crate) struct SigintGuard {
    lp: EventLoop,
    state: Rc<Interrupt>,
    /// Alive while the loop still holds our handler (the handler owns the `Rc`).
    ours: Weak<()>,
}

/// True if SIGINT has its default disposition.
pub(crate) fn sigint_is_default() -> bool {
    // SAFETY: all-zero is a valid sigaction to receive the current one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid out-parameter.
    let queried = unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) };
    queried == 0 && old.sa_sigaction == libc::SIG_DFL
}

/// Installs the Ctrl-C handler for a run on `lp`, if this is the main thread and SIGINT is
/// not handled by anyone yet.
pub(crate) fn install(lp: &EventLoop) -> Option<SigintGuard> {
    if !is_main_thread() || !sigint_is_default() {
        return None;
    }
    let state = Rc::new(Interrupt::default());
    let marker = Rc::new(());
    let ours = Rc::downgrade(&marker);
    let st = state.clone();
    let weak_lp = lp.downgrade();
    lp.add_signal_handler(libc::SIGINT, move || {
        let _ours = &marker;
        st.hit.set(true);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        // From now on SIGINT has its default action: a second Ctrl-C ends the process even
        // if the main future's cancellation never returns to the loop.
        if let Some(lp) = weak_lp.upgrade() {
            lp.remove_signal_handler(libc::SIGINT);
        }
    })
    .ok()?;
    Some(SigintGuard {
        lp: lp.clone(),
        state,
        ours,
    })
}

impl SigintGuard {
    /// `fut`, cancelled (dropped, giving `None`) when Ctrl-C is pressed.
    pub(crate) fn wrap<F: Future>(&self, fut: F) -> Interruptible<F> {
        Interruptible {
            fut: Some(Box::pin(fut)),
            state: self.state.clone(),
        }
    }
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        if self.ours.upgrade().is_some() {
            self.lp.remove_signal_handler(libc::SIGINT);
        }
    }
}

/// The main future of a run, cancelled by Ctrl-C.
pub(crate) struct Interruptible<F: Future> {
    fut: Option<Pin<Box<F>>>,
    state: Rc<Interrupt>,
}

impl<F: Future> Future for Interruptible<F> {
    /// `None` if Ctrl-C cancelled it.
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.state.hit.get() {
            // Cancelled: drop the future now, as a cancelled task is.
            self.fut = None;
            return Poll::Ready(None);
        }
        self.state.waker.set(Some(cx.waker().clone()));
        match self.fut.as_mut() {
            Some(f) => f.as_mut().poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}
