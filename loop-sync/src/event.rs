//! [`Event`]: asyncio's `Event`, a flag tasks can wait for.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::waiters::{WaitList, wake_all};

/// asyncio's `Event`: a flag, initially false; [`wait`](Self::wait) returns once it is set.
///
/// [`set`](Self::set) wakes every waiter; a waiter that was woken returns even if the flag was
/// [`clear`](Self::clear)ed again before it ran (as in CPython, where `set` resolves each
/// waiter's future). Not `Send` (share it with `Rc`).
///
/// ```
/// # let lp = loop_mio::new_event_loop().unwrap();
/// # let lp2 = lp.clone();
/// # lp.run_until_complete(async move {
/// use std::rc::Rc;
/// let event = Rc::new(loop_sync::Event::new());
/// let e = event.clone();
/// let waiter = lp2.create_task(async move { e.wait().await; "woken" }).unwrap();
/// loop_api::yield_now().await;
/// event.set();
/// assert_eq!(waiter.await, Ok("woken"));
/// # }).unwrap();
/// ```
pub struct Event {
    state: RefCell<EventState>,
}

#[derive(Debug)]
struct EventState {
    set: bool,
    waiters: WaitList,
}

impl Event {
    /// An event that is not set.
    pub fn new() -> Self {
        Event {
            state: RefCell::new(EventState {
                set: false,
                waiters: WaitList::default(),
            }),
        }
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        let mut wakers = Vec::new();
        {
            let mut st = self.state.borrow_mut();
            if st.set {
                return;
            }
            st.set = true;
            st.waiters.notify_all(&mut wakers);
        }
        wake_all(wakers);
    }

    /// Clears the flag: later waits wait for the next [`set`](Self::set).
    pub fn clear(&self) {
        self.state.borrow_mut().set = false;
    }

    /// True if the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.borrow().set
    }

    /// Waits until the flag is set (returns at once if it is).
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            key: None,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.borrow();
        f.debug_struct("Event")
            .field("set", &st.set)
            .field("waiting", &st.waiters.len())
            .finish()
    }
}

/// The future of [`Event::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    key: Option<usize>,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.event.state.borrow_mut();
        match this.key {
            None if st.set => Poll::Ready(()),
            None => {
                this.key = Some(st.waiters.push(cx.waker()));
                crate::waiters::pending("Event.wait")
            }
            Some(_) => crate::waiters::waiting(
                "Event.wait",
                st.waiters.poll_turn(&mut this.key, cx.waker()),
            ),
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.event.state.borrow_mut().waiters.remove(key);
        }
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.key.is_some())
            .finish()
    }
}
