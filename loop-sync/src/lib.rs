//! asyncio's concurrency toolkit on any loop: [`gather`], [`TaskGroup`], [`Queue`], [`Event`],
//! [`Lock`], [`Semaphore`], [`Condition`], [`Barrier`].
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let lp = loop_mio::new_event_loop().unwrap();
//! let total = lp
//!     .run_until_complete(async {
//!         // A bounded queue of jobs, three workers under a task group, and at most two
//!         // "connections" at once.
//!         let jobs = loop_sync::Queue::new(4);
//!         let connections = Rc::new(loop_sync::Semaphore::new(2));
//!         let group = loop_sync::TaskGroup::new();
//!         let mut workers = Vec::new();
//!         for _ in 0..3 {
//!             let (jobs, connections) = (jobs.clone(), connections.clone());
//!             workers.push(group.create_task(async move {
//!                 let mut sum = 0;
//!                 while let Some(n) = jobs.get().await {
//!                     let _permit = connections.acquire().await;
//!                     loop_api::sleep(Duration::from_millis(1)).await;
//!                     sum += n;
//!                 }
//!                 sum
//!             })?);
//!         }
//!         for n in 1..=10 {
//!             jobs.put(Some(n)).await;
//!         }
//!         for _ in 0..3 {
//!             jobs.put(None).await; // one "stop" per worker
//!         }
//!         group.join().await.expect("no worker failed");
//!         let sums = loop_sync::gather(workers).await.expect("every worker finished");
//!         Ok::<i32, loop_api::LoopError>(sums.iter().sum())
//!     })
//!     .unwrap();
//! assert_eq!(total.unwrap(), 55);
//! ```
//!
//! Everything here is written against `loop-api` only (`Task`, `get_running_loop`, wakers),
//! so it works on every loop: the backends of this workspace, the virtual-time test loop, and
//! third-party loops. The primitives are single-threaded (`!Send`, like `EventLoop`): they
//! serve the tasks of one loop; share them with `Rc` (or clone a [`Queue`]).
//!
//! # asyncio's semantics
//!
//! - Waiters are served strictly first come, first served. A release hands the lock, the
//!   permit, the item or the slot straight to the first waiter, so a newcomer never takes it
//!   ahead of a waiter that was already woken (CPython's `Lock` gives the same order).
//! - Cancelling is dropping the future. Dropped at any await point, a waiting `get` loses no
//!   item, a waiting `acquire`/`lock` leaks no permit, and a waiter dropped after it was woken
//!   passes the wake-up on to the next waiter.
//! - [`gather`] returns the first failure at once and leaves the other tasks running;
//!   dropping it before it finished cancels them. [`TaskGroup`] cancels the other children
//!   when one fails, and its [`join`](TaskGroup::join) waits for all of them.
//!
//! # What comes from which crate, and why
//!
//! | here | built on | why |
//! |------|----------|-----|
//! | [`gather`], [`gather_settled`], [`as_completed`] | `futures-util`'s `FuturesUnordered`, `futures-core`'s `Stream` | a finished task costs one poll, not a pass over all tasks; `Stream` is the ecosystem's trait |
//! | [`shield`] | `loop-api`'s `Task` | dropping a `Task` never cancels it already |
//! | [`TaskGroup`] | `loop-api`'s `Task`/`AnyTask` | asyncio's cancellation rules exist in no crate |
//! | [`Queue`], [`LifoQueue`], [`PriorityQueue`] | our own waiting line | `async-channel` has no `task_done`/`join`, no LIFO or priority order, and treats capacity 0 as a rendezvous (asyncio: unbounded) |
//! | [`Lock`], [`Semaphore`] | our own waiting line | `async-lock`'s `Mutex` and `Semaphore` let a new locker barge in ahead of a woken waiter; asyncio's are strictly FIFO |
//! | [`Event`], [`Condition`], [`Barrier`] | our own waiting line | `event-listener` would match `Event`'s semantics, but it is thread-safe (a mutex and atomics per wait) where one single-threaded line serves every primitive here for less; `Condition` needs asyncio's pass-on of a notification to a cancelled waiter |
//!
//! The waiting line (a slab-backed doubly linked list: join, leave and wake in O(1), no
//! allocation per wait once warm) is in `waiters.rs`.
#![deny(missing_docs)]

mod condition;
mod event;
mod gather;
mod locks;
mod queue;
mod task_group;
mod waiters;

pub use condition::{Barrier, BarrierWait, Condition};
pub use event::{Event, EventWait};
pub use gather::{
    AsCompleted, Gather, GatherSettled, Shield, as_completed, gather, gather_settled, shield,
};
pub use locks::{Acquire, AcquireSemaphore, Lock, LockGuard, Semaphore, SemaphorePermit};
pub use queue::{
    BaseQueue, Get, LifoQueue, PriorityQueue, Put, Queue, QueueEmpty, QueueFull, QueueJoin,
    QueueStore,
};
pub use task_group::{TaskGroup, TaskGroupError};

/// The examples of this crate's README.md, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
