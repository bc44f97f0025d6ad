//! [`BaseEventLoop`]: one loop over any [`Driver`], with asyncio's `_run_once` semantics.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;
use std::time::{Duration, Instant};

use loop_api::panics::{CaughtPanic, catch_reported};
use loop_api::{ExceptionContext, LoopError, Schedule, TaskRef};
use slab::Slab;

use crate::driver::Driver;
use crate::executor::DefaultExecutor;
use crate::ops::{OpKey, Ops};
use crate::shared::{LocalQueue, Ready, RemoteItem, Shared};
use crate::timers::Timers;
use crate::virtual_time::VirtualPoll;
use crate::watch::Watches;

/// The driver and its operation table, shared with the futures of in-flight operations.
pub(crate) struct Io<D> {
    pub(crate) driver: D,
    pub(crate) ops: Ops,
}

/// `None` once the loop is closed.
pub(crate) type IoCell<D> = Rc<RefCell<Option<Io<D>>>>;

/// The exception handler, shared so it can be called while it replaces itself.
pub(crate) type SharedHandler = Rc<dyn Fn(&ExceptionContext)>;

/// Scratch vectors reused by every iteration (no allocation per iteration).
#[derive(Default)]
struct Scratch {
    wakers: Vec<Waker>,
    fired: Vec<OpKey>,
    remote: Vec<RemoteItem>,
}

/// How far before the loop's start its timer epoch lies.
const TIMER_EPOCH_BACK: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The default slow-callback threshold of debug mode (asyncio's 100 ms).
pub const DEFAULT_SLOW_CALLBACK: Duration = Duration::from_millis(100);

/// An event loop over driver `D`: the ready queue, timers, tasks, executor and fd watches are
/// here; only waiting for I/O is the driver's.
pub struct BaseEventLoop<D: Driver> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) local: Rc<LocalQueue>,
    pub(crate) timers: Rc<Timers>,
    /// The unfinished tasks; each knows its key here (`TaskRef::loop_slot`). A slab: removing
    /// one touches no other task (tasks are big and many; their cells are cold).
    pub(crate) tasks: RefCell<Slab<TaskRef>>,
    pub(crate) io: IoCell<D>,
    pub(crate) watches: RefCell<Watches>,
    pub(crate) executor: RefCell<DefaultExecutor>,
    pub(crate) signals: RefCell<Option<crate::signals::LoopSignals>>,
    pub(crate) handler: RefCell<Option<SharedHandler>>,
    pub(crate) debug: Cell<bool>,
    pub(crate) slow_callback: Cell<Duration>,
    pub(crate) running: Cell<bool>,
    pub(crate) stopping: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    pub(crate) backend: &'static str,
    /// The handle users hold, weakly (set by `attach`): the futures the loop makes itself
    /// (pipes, children) run their operations through it.
    pub(crate) handle: std::cell::OnceCell<loop_api::WeakEventLoop>,
    /// The clock of a test loop (`None`: the system's monotonic clock).
    pub(crate) clock: Option<loop_api::VirtualClock>,
    /// Iterations run so far (seeds the task order of a seeded test loop).
    pub(crate) iteration: Cell<u64>,
    /// The batch of the running iteration (kept between iterations for its allocation).
    batch: RefCell<VecDeque<Ready>>,
    scratch: RefCell<Scratch>,
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
struct RunningFlag<'a>(&'a Cell<bool>, &'a Cell<bool>);

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.set(false);
        self.1.set(false);
    }
}

impl<D: Driver> BaseEventLoop<D> {
    /// A loop over `driver`, set up by `config` (its clock, debug mode). Call it on the thread
    /// that will run the loop.
    pub fn new(driver: D, config: crate::LoopConfig) -> Self {
        let crate::LoopConfig {
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
        BaseEventLoop {
            backend: driver.name(),
            handle: std::cell::OnceCell::new(),
            shared,
            local,
            timers: Rc::new(Timers::new(epoch)),
            tasks: RefCell::new(Slab::new()),
            io: Rc::new(RefCell::new(Some(Io {
                driver,
                ops: Ops::default(),
            }))),
            watches: RefCell::new(Watches::default()),
            executor: RefCell::new(DefaultExecutor::Lazy),
            signals: RefCell::new(None),
            handler: RefCell::new(None),
            debug: Cell::new(debug),
            slow_callback: Cell::new(slow_callback),
            running: Cell::new(false),
            stopping: Cell::new(false),
            closed: Cell::new(false),
            clock,
            iteration: Cell::new(0),
            batch: RefCell::new(VecDeque::with_capacity(64)),
            scratch: RefCell::new(Scratch::default()),
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
        self.tasks.borrow().len()
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
        let _flag = RunningFlag(&self.running, &self.stopping);
        loop {
            self.run_once()?;
            if self.stopping.get() {
                return Ok(());
            }
        }
    }

    /// True when work is ready: the next poll must not block.
    pub(crate) fn has_ready_work(&self) -> bool {
        self.stopping.get()
            || !self.local.ready.borrow().is_empty()
            || self.shared.notified.load(Ordering::Acquire)
    }

    /// How long the next poll may block: not at all when work is ready, else until the
    /// earliest timer (`None`: no timer, wait for I/O or a wake-up). A test loop decides
    /// otherwise (it may jump its clock instead; see `virtual_time.rs`).
    fn poll_timeout(&self) -> Option<Duration> {
        if self.has_ready_work() {
            return Some(Duration::ZERO);
        }
        self.timers
            .next_deadline()
            .map(|when| when.saturating_duration_since(Instant::now()))
    }

    /// One iteration (asyncio's `_run_once`): poll once, queue completions, remote work and
    /// due timers, then run exactly the callbacks that were ready at that point.
    fn run_once(&self) -> Result<(), LoopError> {
        self.timers.purge_if_needed();
        let plan = match &self.clock {
            None => VirtualPoll::Wait(self.poll_timeout()),
            Some(clock) => self.virtual_poll_plan(clock),
        };
        let timeout = match plan {
            VirtualPoll::Wait(t) => t,
            VirtualPoll::Flow(t) | VirtualPoll::JumpIfQuiet { wait: t, .. } => Some(t),
        };
        let mut scratch = std::mem::take(&mut *self.scratch.borrow_mut());
        {
            let mut io = self.io.borrow_mut();
            let io = io.as_mut().ok_or(LoopError::Closed)?;
            let Io { driver, ops } = io;
            let polled_at = self.clock.as_ref().map(|_| Instant::now());
            // Work is ready and no operation (or watch) is in flight: nothing the driver could
            // report, so no syscall (wakes from other threads come through `notified`).
            let nothing_to_poll = timeout == Some(Duration::ZERO) && ops.is_empty();
            if !nothing_to_poll {
                driver.poll(ops, timeout)?;
            }
            ops.drain_wakers(&mut scratch.wakers);
            ops.drain_fired_watches(&mut scratch.fired);
            if let Some(clock) = &self.clock {
                match plan {
                    // Real work was in flight: virtual time flowed as real time meanwhile.
                    VirtualPoll::Flow(limit) => {
                        let waited = polled_at.map_or(Duration::ZERO, |t| t.elapsed());
                        clock.advance(waited.min(limit));
                    }
                    VirtualPoll::JumpIfQuiet { to, .. } => {
                        let quiet = scratch.wakers.is_empty()
                            && scratch.fired.is_empty()
                            && !self.shared.notified.load(Ordering::Acquire);
                        if quiet {
                            clock.advance_to(to);
                        }
                    }
                    VirtualPoll::Wait(_) => {}
                }
            }
        }
        for w in scratch.wakers.drain(..) {
            w.wake();
        }
        if !scratch.fired.is_empty() {
            self.queue_fired_watches(&mut scratch.fired);
        }
        if self.shared.notified.swap(false, Ordering::AcqRel) {
            self.shared.take_remote(&mut scratch.remote);
            let mut ready = self.local.ready.borrow_mut();
            let mut remote = self.local.remote.borrow_mut();
            for item in scratch.remote.drain(..) {
                match item {
                    RemoteItem::Callback(f) => {
                        remote.push_back(f);
                        ready.push_back(Ready::Remote);
                    }
                    RemoteItem::Task(task) => {
                        // SAFETY: `run_once` runs on the loop's thread (the loop is `!Send`),
                        // where every task spawned on it was made.
                        ready.push_back(Ready::Task(unsafe { task.into_local() }));
                    }
                }
            }
        }
        if self.shared.stop_requested.swap(false, Ordering::AcqRel) {
            self.stopping.set(true);
        }
        *self.scratch.borrow_mut() = scratch;
        self.timers.pop_due(self.now(), &self.local.ready);

        // Exactly what is ready now runs in this iteration: take it out of the ready queue in
        // one swap (what the callbacks schedule goes to the emptied queue, for the next one).
        let mut batch = std::mem::take(&mut *self.batch.borrow_mut());
        std::mem::swap(&mut batch, &mut *self.local.ready.borrow_mut());
        if let Some(seed) = self.clock.as_ref().and_then(|c| c.seed()) {
            self.shuffle_ready_tasks(&mut batch, seed);
        }
        if self.debug.get() {
            while let Some(item) = batch.pop_front() {
                self.run_ready_debug(item);
            }
        } else {
            self.run_batch(&mut batch);
        }
        // Keep the allocation for the next iteration.
        *self.batch.borrow_mut() = batch;
        Ok(())
    }

    /// Runs the batch (not in debug mode): one `catch_unwind` around the whole run, entered
    /// again after a callback that panicked (the panic is reported, the batch goes on).
    fn run_batch(&self, batch: &mut VecDeque<Ready>) {
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
                        other => self.run_other(other),
                    }
                }
            });
            match ran {
                Ok(()) => return,
                Err(p) => {
                    let name = current.take().map_or("callback", |name| name());
                    self.report_callback_panic(name, p);
                }
            }
        }
    }

    /// Runs a ready item that is not a `call_soon` callback (each contains its own panics).
    fn run_other(&self, item: Ready) {
        match item {
            Ready::Callback(handle) => {
                if let Err(p) = catch_reported(|| handle.run()) {
                    self.report_callback_panic(handle.name(), p);
                }
            }
            Ready::Remote => {
                let Some(f) = self.local.pop_remote() else {
                    return;
                };
                if let Err(p) = catch_reported(f) {
                    self.report_callback_panic("call_soon_threadsafe callback", p);
                }
            }
            Ready::Task(task) => self.poll_task(&task),
            Ready::Watch {
                fd,
                dir,
                generation,
            } => self.run_watch(fd, dir, generation.get()),
        }
    }

    /// Runs one ready item, timing it: debug mode reports slow callbacks.
    fn run_ready_debug(&self, item: Ready) {
        let started = Instant::now();
        let name: String = match &item {
            Ready::Callback(handle) if !handle.pending() => return,
            Ready::Callback(handle) => handle.name().to_string(),
            Ready::Remote => "call_soon_threadsafe callback".to_string(),
            Ready::Task(task) if task.done() => return,
            Ready::Task(task) => task.name(),
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
        let took = started.elapsed();
        if took >= self.slow_callback.get() {
            self.call_handler(&ExceptionContext {
                message: format!("Executing {name} took {:.3} seconds", took.as_secs_f64()),
                callback: Some(name),
                duration: Some(took),
                ..ExceptionContext::default()
            });
        }
    }

    /// Polls `task` once; reports its panic, if it panicked; forgets it once finished.
    #[inline]
    fn poll_task(&self, task: &TaskRef) {
        if task.run().is_ready() {
            if let Some(caught) = task.take_panic() {
                self.call_handler(&ExceptionContext::task_panicked(task.name(), caught));
            }
            self.forget_task(task);
        }
    }

    /// Removes a finished task from the task list.
    fn forget_task(&self, task: &TaskRef) {
        let i = task.loop_slot();
        let removed = {
            let mut tasks = self.tasks.borrow_mut();
            if tasks.get(i).is_none_or(|t| !t.ptr_eq(task)) {
                return;
            }
            tasks.remove(i)
        };
        removed.set_loop_slot(usize::MAX);
        // Not the last local handle (the caller holds one): dropping it runs no user code.
        drop(removed);
    }

    pub(crate) fn spawn_impl(&self, task: TaskRef) -> Result<(), LoopError> {
        self.check_open()?;
        let scheduler: Arc<dyn Schedule> = self.shared.clone();
        task.bind(scheduler);
        {
            let mut tasks = self.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            task.set_loop_slot(entry.key());
            entry.insert(task.clone());
        }
        self.local.push(Ready::Task(task));
        Ok(())
    }

    fn report_callback_panic(&self, name: &str, caught: CaughtPanic) {
        self.call_handler(&ExceptionContext {
            message: format!("Exception in callback {name}"),
            panic: Some(caught.message),
            location: caught.location,
            callback: Some(name.to_string()),
            ..ExceptionContext::default()
        });
    }

    /// Calls the exception handler (or the default one); a handler's panic is contained.
    pub(crate) fn call_handler(&self, context: &ExceptionContext) {
        let handler = self.handler.borrow().clone();
        match handler {
            Some(h) => {
                if let Err(p) = catch_reported(|| h(context)) {
                    let at = p.location.map(|l| format!(" (at {l})")).unwrap_or_default();
                    eprintln!(
                        "Unhandled panic in the exception handler: {}{at}\nwhile handling: {context}",
                        p.message
                    );
                }
            }
            None => eprintln!("{context}"),
        }
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
        // Drop user code outside every borrow: destructors may call back into the loop.
        let ready = std::mem::take(&mut *self.local.ready.borrow_mut());
        drop(ready);
        let remote = std::mem::take(&mut *self.local.remote.borrow_mut());
        drop(remote);
        drop(self.timers.take_all());
        let tasks: Vec<TaskRef> = std::mem::take(&mut *self.tasks.borrow_mut())
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        for t in &tasks {
            t.abort();
        }
        drop(tasks);
        self.close_signals();
        let watches = std::mem::take(&mut *self.watches.borrow_mut());
        drop(watches);
        // asyncio's `shutdown(wait=False)`: a running job does not hold up close().
        self.executor
            .borrow_mut()
            .shut_down_nowait(DefaultExecutor::ShutDown);
        let io = self.io.borrow_mut().take();
        if let Some(mut io) = io {
            io.driver.shutdown(&mut io.ops);
            io.ops.clear();
            drop(io);
        }
        drop(std::mem::take(&mut *self.local.ready.borrow_mut()));
        drop(std::mem::take(&mut *self.local.remote.borrow_mut()));
        Ok(())
    }
}

impl<D: Driver> Drop for BaseEventLoop<D> {
    /// The last handle is gone: close the loop (its tasks, timers, ops, fds, executor), as
    /// asyncio closes a loop it collects, and in debug mode say so (asyncio's ResourceWarning).
    fn drop(&mut self) {
        if !self.closed.get() && self.debug.get() {
            self.call_handler(&ExceptionContext {
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
