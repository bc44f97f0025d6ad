//! What loops show a monitor running on another thread (`loop_policy::monitor`).
//!
//! Tasks and loops are `!Send`, and a loop may be stuck in a blocking callback, so a monitor
//! cannot ask a loop for a snapshot. Instead each loop keeps a [`LoopRecord`] in a
//! process-wide registry ([`loops`]) current, but only while some monitor wants it (while a
//! [`Publication`] is alive): its [`LoopStats`] and the records of its tasks at each
//! iteration, the task being polled right now around each poll, and the named futures
//! (`sleep`, socket operations, waits on `loop-sync`'s primitives...) a task's last poll
//! stopped at. With no publication the cost is one relaxed load and a predictable branch per
//! task poll (the same load that task timing needs) and one per iteration.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::raw::timing;
use crate::{LoopHandle, LoopStats, TaskRef, TaskState};

/// How often a loop refreshes the records of the tasks it did not poll (at most).
const SWEEP_EVERY: Duration = Duration::from_millis(10);

/// How many finished tasks a loop remembers (for `where` after a task ended).
const FINISHED_KEPT: usize = 64;

/// The live publications and the registry of loops.
static PUBLICATIONS: Mutex<usize> = Mutex::new(0);
static LOOPS: Mutex<Vec<Weak<LoopRecord>>> = Mutex::new(Vec::new());
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The record of the loop running on this thread (set by its publishing iterations).
    /// (Weak: a loop dropped here must leave the registry.)
    static CURRENT: RefCell<Weak<LoopRecord>> = const { RefCell::new(Weak::new()) };
    /// The named futures the task being polled stopped at during this poll (innermost first).
    static AWAITING: RefCell<Vec<Cow<'static, str>>> = const { RefCell::new(Vec::new()) };
}

/// Locks `m`, whatever a panicking holder left (the records stay readable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// True while some [`Publication`] is alive: loops keep their records current.
#[inline]
pub fn publishing() -> bool {
    timing::mode() & timing::PUBLISH != 0
}

/// While alive, every loop of the process keeps its [`LoopRecord`] current (the monitor holds
/// one). Publications nest: the last one dropped turns publication off.
#[derive(Debug)]
#[must_use = "publication stops when the guard is dropped"]
pub struct Publication {
    _private: (),
}

impl Publication {
    /// Turns publication on (for as long as the guard lives).
    pub fn start() -> Publication {
        let mut n = lock(&PUBLICATIONS);
        *n += 1;
        timing::set_publish(true);
        Publication { _private: () }
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        let mut n = lock(&PUBLICATIONS);
        *n -= 1;
        if *n == 0 {
            timing::set_publish(false);
        }
    }
}

/// Records that the task being polled stopped at the named future `label` (`"sleep"`,
/// `"sock_recv"`, `"Lock.acquire"`...): called by such futures when they return `Pending`.
/// Nothing happens unless publication is on.
#[inline]
pub fn awaiting(label: &'static str) {
    if publishing() {
        push_awaiting(Cow::Borrowed(label));
    }
}

/// Records that the task being polled waits for `task` (a `Task` it awaits).
#[inline]
pub(crate) fn awaiting_task(task: &TaskRef) {
    if publishing() {
        push_awaiting(Cow::Owned(format!("task {}", task.id())));
    }
}

#[cold]
fn push_awaiting(label: Cow<'static, str>) {
    AWAITING.with(|a| {
        let mut a = a.borrow_mut();
        // A future polled in a loop inside one poll (a select over many) says enough at 8.
        if a.len() < 8 {
            a.push(label);
        }
    });
}

/// The registered loops that are alive and not closed.
pub fn loops() -> Vec<Arc<LoopRecord>> {
    let mut all = lock(&LOOPS);
    all.retain(|w| w.strong_count() > 0);
    all.iter()
        .filter_map(Weak::upgrade)
        .filter(|r| !r.handle.is_closed())
        .collect()
}

/// What a monitor sees of one task: a copy of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSnapshot {
    /// The task's id ([`AnyTask::id`](crate::AnyTask::id)).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Where it was made.
    pub created_at: &'static Location<'static>,
    /// Its state (`Running` while its loop is polling it right now).
    pub state: TaskState,
    /// How many times it was polled.
    pub polls: u64,
    /// Time spent in its polls (task timing, which publication turns on for the monitor).
    pub busy: Duration,
    /// Time since its last poll ended (zero while it runs, or when not known).
    pub idle: Duration,
    /// How long ago its last poll started, if one was seen while publishing.
    pub last_poll: Option<Duration>,
    /// The named futures its last poll stopped at, outermost first (empty: not known).
    pub awaiting: Vec<String>,
}

/// One task, as its loop last published it.
#[derive(Debug, Clone)]
struct TaskRecord {
    name: String,
    created_at: &'static Location<'static>,
    state: TaskState,
    polls: u64,
    busy: Duration,
    /// When its last poll ended (timing's clock; 0: not known).
    idle_since: u64,
    /// When its last poll started (timing's clock; 0: none seen).
    poll_started: u64,
    awaiting: Vec<Cow<'static, str>>,
}

impl TaskRecord {
    fn new(task: &TaskRef) -> Self {
        TaskRecord {
            name: task.name(),
            created_at: task.created_at(),
            state: TaskState::Pending,
            polls: 0,
            busy: Duration::ZERO,
            idle_since: 0,
            poll_started: 0,
            awaiting: Vec::new(),
        }
    }

    /// Copies what the task says of itself.
    fn update(&mut self, task: &TaskRef, now: u64) {
        self.state = task.state();
        self.polls = task.polls();
        self.busy = task.busy();
        let idle = task.idle();
        self.idle_since = if idle.is_zero() {
            0
        } else {
            now.saturating_sub(u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX))
        };
    }

    fn snapshot(&self, id: u64, running: bool, now: u64) -> TaskSnapshot {
        let ago = |mark: u64| Duration::from_nanos(now.saturating_sub(mark));
        TaskSnapshot {
            id,
            name: self.name.clone(),
            created_at: self.created_at,
            state: if running {
                TaskState::Running
            } else {
                self.state
            },
            polls: self.polls,
            busy: self.busy,
            idle: if running || self.idle_since == 0 {
                Duration::ZERO
            } else {
                ago(self.idle_since)
            },
            last_poll: (self.poll_started != 0).then(|| ago(self.poll_started)),
            awaiting: self.awaiting.iter().rev().map(|l| l.to_string()).collect(),
        }
    }
}

/// What a loop publishes, under one lock (the loop holds it only briefly).
#[derive(Default)]
struct Published {
    stats: LoopStats,
    tasks: BTreeMap<u64, TaskRecord>,
    finished: VecDeque<(u64, TaskRecord)>,
    last_sweep: Option<Instant>,
}

/// A loop's published state, readable from any thread (see the [module docs](self)).
pub struct LoopRecord {
    id: u64,
    thread: String,
    handle: LoopHandle,
    /// The task being polled right now (0: none).
    running: AtomicU64,
    published: Mutex<Published>,
}

impl LoopRecord {
    /// Registers a new loop (its thread-safe handle, with which a monitor cancels its tasks):
    /// called by loop implementations on the loop's thread, which the record names. The loop
    /// keeps the record; the registry forgets it when it is dropped.
    pub fn register(backend: &'static str, handle: LoopHandle) -> Arc<LoopRecord> {
        let thread = std::thread::current();
        let thread = match thread.name() {
            Some(n) => n.to_string(),
            None => format!("{:?}", thread.id()),
        };
        let record = Arc::new(LoopRecord {
            id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
            thread,
            handle,
            running: AtomicU64::new(0),
            published: Mutex::new(Published {
                stats: LoopStats {
                    backend,
                    ..LoopStats::default()
                },
                ..Published::default()
            }),
        });
        let mut all = lock(&LOOPS);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&record));
        record
    }

    /// The loop's number in this process (1, 2, ... in registration order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name of the thread the loop was made on.
    pub fn thread(&self) -> &str {
        &self.thread
    }

    /// The loop's thread-safe handle.
    pub fn handle(&self) -> &LoopHandle {
        &self.handle
    }

    /// The loop's statistics as of its last published iteration.
    pub fn stats(&self) -> LoopStats {
        lock(&self.published).stats.clone()
    }

    /// The task being polled right now, if any.
    pub fn running_task(&self) -> Option<u64> {
        Some(self.running.load(Ordering::Acquire)).filter(|&id| id != 0)
    }

    /// The loop's unfinished tasks, by id.
    pub fn tasks(&self) -> Vec<TaskSnapshot> {
        let now = timing::now();
        let running = self.running.load(Ordering::Acquire);
        let p = lock(&self.published);
        p.tasks
            .iter()
            .map(|(&id, r)| r.snapshot(id, id == running, now))
            .collect()
    }

    /// The task `id`, unfinished or among the last finished ones.
    pub fn task(&self, id: u64) -> Option<TaskSnapshot> {
        let now = timing::now();
        let running = self.running.load(Ordering::Acquire) == id;
        let p = lock(&self.published);
        let found = p.tasks.get(&id).or_else(|| {
            p.finished
                .iter()
                .find_map(|(fid, r)| (*fid == id).then_some(r))
        });
        found.map(|r| r.snapshot(id, running, now))
    }

    /// Publishes one iteration (call it at the start of each iteration while
    /// [`publishing`]): the loop's statistics, and, at most every few milliseconds, the state
    /// of each unfinished task (`tasks` lists them). Also makes this the loop whose task polls
    /// are published on this thread.
    pub fn publish(self: &Arc<Self>, stats: LoopStats, tasks: impl FnOnce() -> Vec<TaskRef>) {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if !std::ptr::eq(c.as_ptr(), Arc::as_ptr(self)) {
                *c = Arc::downgrade(self);
            }
        });
        let now = Instant::now();
        let due = {
            let mut p = lock(&self.published);
            p.stats = stats;
            let due = p.last_sweep.is_none_or(|t| now - t >= SWEEP_EVERY);
            if due {
                p.last_sweep = Some(now);
            }
            due
        };
        if due {
            // Listed outside the lock: naming tasks may allocate, never block.
            self.sweep(&tasks());
        }
    }

    /// Refreshes the records of `tasks` (the unfinished ones) and forgets the others.
    fn sweep(&self, tasks: &[TaskRef]) {
        let now = timing::now();
        let mut p = lock(&self.published);
        let mut fresh = BTreeMap::new();
        for t in tasks {
            let mut r = p
                .tasks
                .remove(&t.id())
                .unwrap_or_else(|| TaskRecord::new(t));
            r.update(t, now);
            fresh.insert(t.id(), r);
        }
        p.tasks = fresh;
    }

    /// The poll of `task` starts (published: the loop is in this task now).
    fn poll_started(&self, task: &TaskRef) {
        AWAITING.with(|a| a.borrow_mut().clear());
        self.running.store(task.id(), Ordering::Release);
        let now = timing::now();
        let mut p = lock(&self.published);
        let r = p
            .tasks
            .entry(task.id())
            .or_insert_with(|| TaskRecord::new(task));
        r.poll_started = now;
        // This poll counts from its start: a task stuck in it shows it.
        r.polls = task.polls() + 1;
    }

    /// The poll of `task` ended: its record is brought up to date.
    fn poll_ended(&self, task: &TaskRef) {
        let awaiting = AWAITING.with(|a| std::mem::take(&mut *a.borrow_mut()));
        let now = timing::now();
        let mut p = lock(&self.published);
        let id = task.id();
        let mut r = p.tasks.remove(&id).unwrap_or_else(|| TaskRecord::new(task));
        r.update(task, now);
        r.awaiting = awaiting;
        if task.done() {
            if p.finished.len() == FINISHED_KEPT {
                p.finished.pop_front();
            }
            p.finished.push_back((id, r));
        } else {
            p.tasks.insert(id, r);
        }
        drop(p);
        self.running.store(0, Ordering::Release);
    }
}

impl fmt::Debug for LoopRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopRecord")
            .field("id", &self.id)
            .field("thread", &self.thread)
            .finish()
    }
}

/// Polls `task` with `run`, publishing the poll to the loop running on this thread (if it
/// published an iteration): called by `TaskRef::run` while publication is on.
pub(crate) fn run_published<R>(task: &TaskRef, run: impl FnOnce() -> R) -> R {
    let record = CURRENT.with(|c| c.borrow().upgrade());
    let Some(record) = record else {
        return run();
    };
    record.poll_started(task);
    let r = run();
    record.poll_ended(task);
    r
}
