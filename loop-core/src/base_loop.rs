//! [`BaseEventLoop`]: one loop over any [`Driver`], with asyncio's `_run_once` semantics,
//! built from parts that each own their state: the ready queue ([`LocalQueue`], and
//! [`Shared`] for other threads), the timers, the tasks, the fd watches, the signals, the
//! clock, the executor, the reporting (exception handler, debug mode) and the I/O (driver and
//! operation table).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use loop_api::panics::catch_reported;
use loop_api::{Direction, ExceptionContext, LoopError, TaskRef};

use crate::clock::{LoopClock, LoopState};
use crate::config::LoopConfig;
use crate::counters::Counters;
use crate::driver::Driver;
use crate::executor::DefaultExecutor;
use crate::io::{Io, IoCell, Polled};
use crate::ops::{Ops, OwnTasks};
use crate::reporting::{Report, Reporting};
use crate::shared::{Generation, LocalQueue, Ready, RemoteItem, Shared};
use crate::signals::Signals;
use crate::tasks::Tasks;
use crate::timers::Timers;
use crate::watch::Watches;

/// How far before the loop's start its timer epoch lies.
const TIMER_EPOCH_BACK: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// An event loop over driver `D`: the ready queue, timers, tasks, executor and fd watches are
/// here; only waiting for I/O is the driver's.
pub struct BaseEventLoop<D: Driver> {
    /// What other threads share with the loop (their queue, the stop request, the wake-up).
    pub(crate) shared: Arc<Shared>,
    /// The ready queue, also reached by wakers on the loop's thread.
    pub(crate) local: Rc<LocalQueue>,
    pub(crate) timers: Rc<Timers>,
    pub(crate) tasks: Tasks,
    pub(crate) io: IoCell<D>,
    pub(crate) watches: Watches<D>,
    pub(crate) signals: Signals,
    pub(crate) executor: RefCell<DefaultExecutor>,
    pub(crate) reporting: Reporting,
    pub(crate) clock: LoopClock,
    pub(crate) counters: Counters,
    pub(crate) running: Cell<bool>,
    pub(crate) stopping: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    pub(crate) backend: &'static str,
    /// The handle users hold, weakly (set by `attach`): the futures the loop makes itself
    /// (pipes, children) run their operations through it.
    pub(crate) handle: std::cell::OnceCell<loop_api::WeakEventLoop>,
    /// What a monitor on another thread sees of this loop (kept current while publishing).
    record: Arc<loop_api::introspect::LoopRecord>,
    /// The batch of the running iteration (kept between iterations for its allocation).
    batch: RefCell<VecDeque<Ready>>,
    /// What the last poll reported, and other threads' work (kept for their allocations).
    polled: RefCell<Polled>,
    remote: RefCell<Vec<RemoteItem>>,
}

impl<D: Driver> std::fmt::Debug for BaseEventLoop<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseEventLoop")
            .field("backend", &self.backend)
            .field("running", &self.running.get())
            .field("closed", &self.closed.get())
            .finish()
    }
}

/// Resets `running` even if an iteration unwinds.
struct RunningFlag<'a>(&'a Cell<bool>, &'a Cell<bool>, &'a Counters);

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.set(false);
        self.1.set(false);
        self.2.run_ended();
    }
}

impl<D: Driver> BaseEventLoop<D> {
    /// A loop over `driver`, set up by `config` (its clock, debug mode). Call it on the thread
    /// that will run the loop.
    pub fn new(driver: D, config: LoopConfig) -> Self {
        let LoopConfig {
            clock,
            debug,
            slow_callback,
        } = config;
        let shared = Arc::new(Shared::new(driver.waker()));
        let local = Rc::new(LocalQueue {
            id: shared.id,
            ready: RefCell::new(VecDeque::with_capacity(64)),
            remote: RefCell::new(VecDeque::new()),
        });
        local.register();
        // Timer deadlines are kept in nanoseconds from an epoch no later than any "now" of the
        // loop's clock (a virtual clock only moves forward), a century back so that deadlines
        // in the past keep their order (64 bits of nanoseconds span 584 years).
        let real_now = Instant::now();
        let now = clock.as_ref().map_or(real_now, |c| c.now().min(real_now));
        let epoch = now.checked_sub(TIMER_EPOCH_BACK).unwrap_or(now);
        let backend = driver.name();
        let mut ops = Ops::default();
        // The loop's tasks are bound to `shared` (see `spawn_impl`).
        ops.queue_own_tasks(OwnTasks {
            queue: local.clone(),
            scheduler: Arc::as_ptr(&shared).cast(),
        });
        let io: IoCell<D> = Rc::new(RefCell::new(Some(Io { driver, ops })));
        let record = loop_api::introspect::LoopRecord::register(
            backend,
            loop_api::LoopHandle::new(shared.clone()),
        );
        BaseEventLoop {
            record,
            backend,
            handle: std::cell::OnceCell::new(),
            watches: Watches::new(io.clone(), local.clone()),
            io,
            shared,
            local,
            timers: Rc::new(Timers::new(epoch)),
            tasks: Tasks::default(),
            signals: Signals::default(),
            executor: RefCell::new(DefaultExecutor::Lazy),
            reporting: Reporting::new(debug, slow_callback),
            clock: LoopClock::new(clock),
            counters: Counters::default(),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            batch: RefCell::new(VecDeque::with_capacity(64)),
            polled: RefCell::new(Polled::default()),
            remote: RefCell::new(Vec::new()),
        }
    }

    /// Number of timers in the heap (live and not yet purged cancelled ones).
    pub fn timer_heap_len(&self) -> usize {
        self.timers.len()
    }

    /// Room in the timer storage, in entries (heap, slot table and its free list): it follows
    /// the live timers, not the peak (mostly empty storage is compacted by the next iteration).
    pub fn timer_storage_capacity(&self) -> usize {
        self.timers.storage_capacity()
    }

    /// Number of unfinished tasks.
    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// `EventLoop::stats()`: each part's size and the counters.
    pub(crate) fn stats_impl(&self) -> loop_api::LoopStats {
        let (executor_threads, executor_queued) = self.executor.borrow().load();
        let (ops_in_flight, receive_buffers) = self.io.borrow().as_ref().map_or((0, 0), |io| {
            (
                io.ops.pending_futures(),
                io.ops.receive_buffer_bytes() + io.driver.kept_receive_bytes(),
            )
        });
        loop_api::LoopStats {
            backend: self.backend,
            iterations: self.counters.iterations(),
            ready: self.local.ready.borrow().len(),
            timers: self.timers.len(),
            watched_fds: self.watches.len(),
            ops_in_flight,
            receive_buffers,
            tasks: self.tasks.len(),
            executor_threads,
            executor_queued,
            slow_callbacks: self.reporting.slow_callbacks(),
            io_wait: self.counters.io_wait(),
            running: self.counters.running(),
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), LoopError> {
        if self.closed.get() {
            Err(LoopError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn run_forever_impl(&self) -> Result<(), LoopError> {
        self.check_open()?;
        if self.running.replace(true) {
            return Err(LoopError::AlreadyRunning);
        }
        self.counters.run_started();
        let _flag = RunningFlag(&self.running, &self.stopping, &self.counters);
        loop {
            self.run_once()?;
            if self.stopping.get() {
                return Ok(());
            }
        }
    }

    /// True when work is ready: the next poll must not block.
    fn has_ready_work(&self) -> bool {
        self.stopping.get()
            || !self.local.ready.borrow().is_empty()
            || self.shared.notified.load(Ordering::Acquire)
    }

    /// True while an operation a future waits for is in flight (watches do not count: they
    /// stay armed for as long as they are registered).
    fn ops_in_flight(&self) -> bool {
        self.io
            .borrow()
            .as_ref()
            .is_some_and(|io| io.ops.pending_futures() > 0)
    }

    /// One iteration (asyncio's `_run_once`): poll for I/O (as long as the clock's plan says),
    /// queue what completed, what other threads sent and the timers that are due, then run
    /// exactly the callbacks that were ready at that point.
    fn run_once(&self) -> Result<(), LoopError> {
        self.timers.purge_if_needed();
        let plan = self.clock.plan(LoopState {
            ready: self.has_ready_work(),
            next_deadline: self.timers.next_deadline(),
            ops_in_flight: self.clock.virtual_clock().is_some() && self.ops_in_flight(),
        });
        self.counters.iteration();
        if loop_api::introspect::publishing() {
            self.publish();
        }
        let mut polled = std::mem::take(&mut *self.polled.borrow_mut());
        // The clock is read only around a poll that may block (time blocked for I/O), or on
        // a virtual clock (which moves by the real time waited).
        let may_block = plan.timeout() != Some(Duration::ZERO);
        let started = (may_block || self.clock.virtual_clock().is_some()).then(Instant::now);
        self.io
            .borrow_mut()
            .as_mut()
            .ok_or(LoopError::Closed)?
            .poll(plan.timeout(), started, &mut polled)?;
        // Quiet: the wait reported nothing. The driver queues our own tasks at once (see
        // `Ops::wake`), so a task it woke shows in the ready queue, not in `polled`.
        let quiet = polled.is_empty()
            && self.local.ready.borrow().is_empty()
            && !self.shared.notified.load(Ordering::Acquire);
        let waited = started.map_or(Duration::ZERO, |t| t.elapsed());
        if may_block {
            self.counters.add_io_wait(waited);
        }
        self.clock.after_poll(plan, waited, quiet);
        polled.wakers.drain(..).for_each(std::task::Waker::wake);
        self.watches.queue_fired(&mut polled.fired);
        *self.polled.borrow_mut() = polled;
        self.local
            .take_remote_work(&self.shared, &mut self.remote.borrow_mut());
        if self.shared.stop_requested.swap(false, Ordering::AcqRel) {
            self.stopping.set(true);
        }
        self.timers.pop_due(self.clock.now(), &self.local.ready);
        // Exactly what is ready now runs in this iteration: take it out of the ready queue in
        // one swap (what the callbacks schedule goes to the emptied queue, for the next one).
        let mut batch = std::mem::take(&mut *self.batch.borrow_mut());
        std::mem::swap(&mut batch, &mut *self.local.ready.borrow_mut());
        self.clock.shuffle_ready_tasks(&mut batch);
        self.run_batch(&mut batch);
        // Keep the allocation for the next iteration.
        *self.batch.borrow_mut() = batch;
        Ok(())
    }

    /// Shows this iteration to the monitor: the stats, the tasks.
    #[cold]
    #[inline(never)]
    fn publish(&self) {
        self.record.publish(self.stats_impl(), || self.tasks.all());
    }

    /// Runs the batch: one `catch_unwind` around the whole run, entered again after a
    /// callback that panicked (the panic is reported, the batch goes on). In debug mode, each
    /// item is timed instead.
    fn run_batch(&self, batch: &mut VecDeque<Ready>) {
        if self.reporting.debug() {
            while let Some(item) = batch.pop_front() {
                self.run_ready_debug(item);
            }
            return;
        }
        // The name of the callback running, for the report if it panics.
        let mut current: Option<fn() -> &'static str> = None;
        loop {
            let ran = catch_reported(|| {
                while let Some(item) = batch.pop_front() {
                    match item {
                        Ready::Callback(handle) => {
                            current = Some(handle.name_fn());
                            handle.run_once();
                        }
                        Ready::Task(task) => self.poll_task(&task),
                        Ready::Remote => self.run_remote(),
                        Ready::Watch {
                            fd,
                            dir,
                            generation,
                        } => self.run_watch(fd, dir, generation),
                    }
                }
            });
            match ran {
                Ok(()) => return,
                Err(p) => {
                    let name = current.take().map_or("callback", |name| name());
                    self.reporting.callback_panicked(name, p);
                }
            }
        }
    }

    /// Runs a ready item that is not a `call_soon` callback (each contains its own panics).
    fn run_other(&self, item: Ready) {
        match item {
            Ready::Callback(handle) => {
                if let Err(p) = catch_reported(|| handle.run()) {
                    self.reporting.callback_panicked(handle.name(), p);
                }
            }
            Ready::Remote => self.run_remote(),
            Ready::Task(task) => self.poll_task(&task),
            Ready::Watch {
                fd,
                dir,
                generation,
            } => self.run_watch(fd, dir, generation),
        }
    }

    /// Runs the next `call_soon_threadsafe` callback (containing its panic).
    #[inline(never)]
    fn run_remote(&self) {
        let Some(f) = self.local.pop_remote() else {
            return;
        };
        if let Err(p) = catch_reported(f) {
            self.reporting
                .callback_panicked("call_soon_threadsafe callback", p);
        }
    }

    /// Runs the reader or writer callback of a ready watch.
    #[inline(never)]
    fn run_watch(&self, fd: RawFd, dir: Direction, generation: Generation) {
        self.watches.run(fd, dir, generation.get(), &self.reporting);
    }

    /// Runs one ready item, timing it: debug mode reports slow callbacks and task polls.
    fn run_ready_debug(&self, item: Ready) {
        let started = Instant::now();
        let name: String = match &item {
            Ready::Callback(handle) if !handle.pending() => return,
            Ready::Callback(handle) => handle.name().to_string(),
            Ready::Remote => "call_soon_threadsafe callback".to_string(),
            Ready::Task(task) if task.done() => return,
            Ready::Task(task) => {
                self.poll_task(task);
                return self.reporting.maybe_slow_task(task, started.elapsed());
            }
            Ready::Watch { fd, dir, .. } => format!("{dir:?} callback of fd {fd}"),
        };
        let cancellable = match &item {
            Ready::Callback(handle) => Some(handle.clone()),
            _ => None,
        };
        self.run_other(item);
        if cancellable.is_some_and(|h| h.cancelled()) {
            return;
        }
        self.reporting.maybe_slow(name, started.elapsed());
    }

    /// Polls `task` once; reports its panic, if it panicked; forgets it once finished. With
    /// the `tracing` feature, in a span naming the task when a subscriber may want it.
    #[inline]
    fn poll_task(&self, task: &TaskRef) {
        #[cfg(feature = "tracing")]
        if crate::trace::wants_poll_spans() {
            return crate::trace::in_poll_span(task, || self.poll_task_now(task));
        }
        self.poll_task_now(task);
    }

    #[inline]
    fn poll_task_now(&self, task: &TaskRef) {
        if task.run().is_ready() {
            if let Some(caught) = task.take_panic() {
                self.reporting.report(
                    Report::Panic,
                    &ExceptionContext::task_panicked(task.name(), caught),
                );
            }
            self.tasks.forget(task);
        }
    }

    pub(crate) fn spawn_impl(&self, task: TaskRef) -> Result<(), LoopError> {
        self.check_open()?;
        self.tasks.insert(&task, self.shared.clone());
        self.local.push(Ready::Task(task));
        Ok(())
    }

    pub(crate) fn close_impl(&self) -> Result<(), LoopError> {
        if self.running.get() {
            return Err(LoopError::CloseWhileRunning);
        }
        if self.closed.replace(true) {
            return Ok(());
        }
        // From here every method sees a closed loop; wakes from anywhere are ignored.
        self.local.unregister();
        self.shared.close();
        self.local.clear();
        drop(self.timers.take_all());
        if self.reporting.debug() {
            self.tasks
                .never_ran()
                .for_each(|t| self.reporting.never_ran(&t));
        }
        self.tasks.abort_all();
        self.signals.close(&self.watches);
        self.watches.clear();
        // asyncio's `shutdown(wait=False)`: a running job does not hold up close().
        self.executor
            .borrow_mut()
            .shut_down_nowait(DefaultExecutor::ShutDown);
        let io = self.io.borrow_mut().take();
        if let Some(io) = io {
            io.shut_down();
        }
        // What the destructors above may have queued.
        self.local.clear();
        Ok(())
    }
}

impl<D: Driver> Drop for BaseEventLoop<D> {
    /// The last handle is gone: close the loop (its tasks, timers, ops, fds, executor), as
    /// asyncio closes a loop it collects, and in debug mode say so (asyncio's ResourceWarning).
    fn drop(&mut self) {
        if !self.closed.get() && self.reporting.debug() {
            self.reporting.report(Report::UnclosedLoop, &ExceptionContext {
                message: format!(
                    "unclosed event loop ({} backend) dropped: closing it now; call close() (or use loop_policy::run) when done with a loop",
                    self.backend
                ),
                ..ExceptionContext::default()
            });
        }
        let _ = self.close_impl();
    }
}
