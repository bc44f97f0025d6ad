//! `AbstractEventLoop` for [`BaseEventLoop`]: the primitives, each a few lines over the core.

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::process::Command;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loop_api::{
    AbstractEventLoop, ExceptionContext, ExceptionHandler, Handle, LocalBoxFuture, LoopError,
    LoopHandle, Process, TaskRef, TimerCancelled, TimerHandle, WeakEventLoop,
};
use loop_api::{Executor, PipeReader, PipeWriter, shutdown_in_thread};
use loop_api::{Op, OpId, OpPoll};
use std::task::{Context, Poll};

use crate::base_loop::BaseEventLoop;
use crate::driver::Driver;
use crate::executor::DefaultExecutor;
use crate::net;
use crate::pipe::LoopPipe;
use crate::shared::Ready;
use loop_api::Direction;

fn closed_future<T: 'static>(out: T) -> LocalBoxFuture<T> {
    Box::pin(std::future::ready(out))
}

impl<D: Driver> BaseEventLoop<D> {
    /// The weak handle `attach` gave: the loop's own futures run their operations with it.
    fn attached(&self) -> Result<WeakEventLoop, LoopError> {
        self.handle.get().cloned().ok_or_else(|| {
            LoopError::NotSupported(
                "this BaseEventLoop is not wrapped in an EventLoop: wrap it with EventLoop::new"
                    .into(),
            )
        })
    }
}

impl<D: Driver> AbstractEventLoop for BaseEventLoop<D> {
    fn run_forever(&self) -> Result<(), LoopError> {
        self.run_forever_impl()
    }

    fn stop(&self) {
        self.stopping.set(true);
    }

    fn is_running(&self) -> bool {
        self.running.get()
    }

    fn is_closed(&self) -> bool {
        self.closed.get()
    }

    fn close(&self) -> Result<(), LoopError> {
        self.close_impl()
    }

    fn call_soon(&self, handle: Handle) -> Result<(), LoopError> {
        self.check_open()?;
        self.local.push(Ready::Callback(handle));
        Ok(())
    }

    fn call_at(&self, when: Instant, handle: Handle) -> Result<TimerHandle, LoopError> {
        self.check_open()?;
        let key = self.timers.push(when, handle.clone());
        let owner: Weak<dyn TimerCancelled> =
            Rc::downgrade(&self.timers) as Weak<dyn TimerCancelled>;
        Ok(TimerHandle::new(handle, when, key, Some(owner)))
    }

    fn time(&self) -> Instant {
        self.clock.now()
    }

    fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.shared.clone())
    }

    fn spawn(&self, task: TaskRef) -> Result<(), LoopError> {
        self.spawn_impl(task)
    }

    fn all_tasks(&self) -> Vec<TaskRef> {
        self.tasks.all()
    }

    fn add_reader(&self, fd: RawFd, callback: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        self.check_open()?;
        self.watches.add(fd, Direction::Read, callback)
    }

    fn remove_reader(&self, fd: RawFd) -> bool {
        !self.closed.get() && self.watches.remove(fd, Direction::Read)
    }

    fn add_writer(&self, fd: RawFd, callback: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        self.check_open()?;
        self.watches.add(fd, Direction::Write, callback)
    }

    fn remove_writer(&self, fd: RawFd) -> bool {
        !self.closed.get() && self.watches.remove(fd, Direction::Write)
    }

    fn run_in_executor(&self, job: Box<dyn FnOnce() + Send + 'static>) -> Result<(), LoopError> {
        self.check_open()?;
        let executor = self.executor.borrow_mut().get()?;
        executor.submit(job)
    }

    fn start_op(&self, op: &mut Option<Op>, cx: &mut Context<'_>) -> OpPoll {
        net::start(&self.io, op, cx)
    }

    fn poll_op(
        &self,
        id: OpId,
        op: &mut Option<Op>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        net::poll(&self.io, id, op, cx)
    }

    fn drop_op(&self, id: OpId) {
        net::drop_op(&self.io, id);
    }

    fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        self.reporting.set_handler(handler);
    }

    fn call_exception_handler(&self, context: &ExceptionContext) {
        self.reporting.call(context);
    }

    fn set_debug(&self, on: bool) {
        self.reporting.set_debug(on);
    }

    fn get_debug(&self) -> bool {
        self.reporting.debug()
    }

    fn slow_callback_duration(&self) -> Duration {
        self.reporting.slow_callback()
    }

    fn set_slow_callback_duration(&self, threshold: Duration) {
        self.reporting.set_slow_callback(threshold);
    }

    fn backend_name(&self) -> &'static str {
        self.backend
    }

    fn stats(&self) -> loop_api::LoopStats {
        self.stats_impl()
    }

    fn add_signal_handler(
        &self,
        sig: i32,
        callback: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        self.check_open()?;
        self.signals.add(&self.watches, &self.local, sig, callback)
    }

    fn remove_signal_handler(&self, sig: i32) -> bool {
        !self.closed.get() && self.signals.remove(sig)
    }

    fn subprocess_exec(&self, cmd: Command) -> Result<Process, LoopError> {
        self.check_open()?;
        crate::process::spawn(self.attached()?, cmd)
    }

    fn connect_read_pipe(&self, fd: OwnedFd) -> Result<PipeReader, LoopError> {
        self.check_open()?;
        Ok(LoopPipe::new(self.attached()?, fd)?.into_reader())
    }

    fn connect_write_pipe(&self, fd: OwnedFd) -> Result<PipeWriter, LoopError> {
        self.check_open()?;
        Ok(LoopPipe::new(self.attached()?, fd)?.into_writer())
    }

    fn attach(&self, lp: WeakEventLoop) {
        let _ = self.handle.set(lp);
    }

    fn set_default_executor(&self, executor: Arc<dyn Executor>) -> Result<(), LoopError> {
        self.check_open()?;
        // Not awaited: the old executor's jobs finish in the background.
        self.executor
            .borrow_mut()
            .shut_down_nowait(DefaultExecutor::Ready(executor));
        Ok(())
    }

    fn shutdown_default_executor(&self) -> LocalBoxFuture<Result<(), LoopError>> {
        if self.closed.get() {
            return closed_future(Err(LoopError::Closed));
        }
        let executor = self.executor.borrow_mut().take(DefaultExecutor::ShutDown);
        let Some(executor) = executor else {
            return closed_future(Ok(()));
        };
        let joined = shutdown_in_thread(executor);
        Box::pin(async move {
            joined.await.map_err(|e| {
                LoopError::Io(io::Error::other(format!(
                    "shutting down the default executor failed: {e}"
                )))
            })
        })
    }

    fn virtual_clock(&self) -> Option<loop_api::VirtualClock> {
        self.clock.virtual_clock().cloned()
    }

    fn register_socket(&self, fd: RawFd) -> Result<(), LoopError> {
        self.check_open()?;
        let mut io = self.io.borrow_mut();
        let io = io.as_mut().ok_or(LoopError::Closed)?;
        io.driver.register_socket(fd).map_err(LoopError::from)
    }

    fn runs_file_ops(&self) -> bool {
        self.io
            .try_borrow()
            .is_ok_and(|io| io.as_ref().is_some_and(|io| io.driver.runs_file_ops()))
    }

    fn try_sock_send(&self, fd: RawFd, src: &[u8]) -> Option<io::Result<usize>> {
        net::try_send(&self.io, fd, src)
    }

    fn release_socket(&self, fd: RawFd) {
        if let Ok(mut cell) = self.io.try_borrow_mut()
            && let Some(io) = cell.as_mut()
        {
            let crate::io::Io { driver, ops } = io;
            driver.release_socket(ops, fd);
            net::wake_stray(cell);
        }
    }
}
