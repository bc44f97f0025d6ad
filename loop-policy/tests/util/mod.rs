//! Shared test helpers: a loop that does nothing, to test the policy without any backend.

#![allow(dead_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use loop_api::{
    AbstractEventLoop, EventLoop, ExceptionContext, ExceptionHandler, Handle, LoopError,
    LoopHandle, Op, OpId, OpPoll, Process, TaskRef, ThreadSafeScheduler, TimerHandle,
};

/// A loop that can only be closed: what a policy needs to store and hand out loops.
#[derive(Debug, Default)]
pub struct NullLoop {
    closed: Cell<bool>,
}

/// A new [`NullLoop`] behind an `EventLoop` handle.
pub fn null_loop() -> Result<EventLoop, LoopError> {
    Ok(EventLoop::new(NullLoop::default()))
}

struct NullScheduler;

impl ThreadSafeScheduler for NullScheduler {
    fn call_soon_threadsafe(
        &self,
        _f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), LoopError> {
        Err(LoopError::NotSupported("NullLoop".into()))
    }
    fn stop(&self) {}
    fn is_closed(&self) -> bool {
        false
    }
}

fn unsupported<T>() -> Result<T, LoopError> {
    Err(LoopError::NotSupported("NullLoop".into()))
}

impl AbstractEventLoop for NullLoop {
    fn run_forever(&self) -> Result<(), LoopError> {
        unsupported()
    }
    fn stop(&self) {}
    fn is_running(&self) -> bool {
        false
    }
    fn is_closed(&self) -> bool {
        self.closed.get()
    }
    fn close(&self) -> Result<(), LoopError> {
        self.closed.set(true);
        Ok(())
    }
    fn call_soon(&self, _handle: Handle) -> Result<(), LoopError> {
        unsupported()
    }
    fn call_at(&self, _when: Instant, _handle: Handle) -> Result<TimerHandle, LoopError> {
        unsupported()
    }
    fn time(&self) -> Instant {
        Instant::now()
    }
    fn handle(&self) -> LoopHandle {
        LoopHandle::new(Arc::new(NullScheduler))
    }
    fn all_tasks(&self) -> Vec<TaskRef> {
        Vec::new()
    }
    fn spawn(&self, _task: TaskRef) -> Result<(), LoopError> {
        unsupported()
    }
    fn add_reader(&self, _fd: RawFd, _cb: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        unsupported()
    }
    fn remove_reader(&self, _fd: RawFd) -> bool {
        false
    }
    fn add_writer(&self, _fd: RawFd, _cb: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        unsupported()
    }
    fn remove_writer(&self, _fd: RawFd) -> bool {
        false
    }
    fn run_in_executor(&self, _job: Box<dyn FnOnce() + Send + 'static>) -> Result<(), LoopError> {
        unsupported()
    }
    fn start_op(&self, _op: &mut Option<Op>, _cx: &mut Context<'_>) -> OpPoll {
        OpPoll::Failed(io::Error::from(io::ErrorKind::Unsupported))
    }
    fn poll_op(
        &self,
        _id: OpId,
        _op: &mut Option<Op>,
        _cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::from(io::ErrorKind::Unsupported)))
    }
    fn drop_op(&self, _id: OpId) {}
    fn set_exception_handler(&self, _h: Option<ExceptionHandler>) {}
    fn call_exception_handler(&self, _context: &ExceptionContext) {}
    fn set_debug(&self, _on: bool) {}
    fn get_debug(&self) -> bool {
        false
    }
    fn slow_callback_duration(&self) -> Duration {
        Duration::from_millis(100)
    }
    fn set_slow_callback_duration(&self, _threshold: Duration) {}
    fn backend_name(&self) -> &'static str {
        "null"
    }
    fn add_signal_handler(
        &self,
        _sig: i32,
        _cb: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        unsupported()
    }
    fn remove_signal_handler(&self, _sig: i32) -> bool {
        false
    }
    fn subprocess_exec(&self, _cmd: Command) -> Result<Process, LoopError> {
        unsupported()
    }
}

/// Checks a loop asked of the uring backend against the probe: a uring loop where io_uring
/// runs, `Unavailable` carrying the probe's reason where it does not; never a panic.
pub fn assert_uring_agrees_with_probe(made: Result<EventLoop, LoopError>) {
    match (made, loop_policy::Backend::Uring.why_unavailable()) {
        (Ok(lp), None) => {
            assert_eq!(lp.backend_name(), "uring");
            lp.close().unwrap();
        }
        (Err(LoopError::Unavailable { backend, reason }), Some(why)) => {
            assert_eq!(backend, "uring");
            assert!(reason.contains(&why), "{reason}");
        }
        other => panic!("uring availability and the policy disagree: {other:?}"),
    }
}
