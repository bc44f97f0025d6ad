//! All of loop-api's `unsafe` code, behind a safe API: the one-allocation task ([`TaskRef`],
//! [`Notified`], [`TaskOutput`], the task's hand-written waker) and the one-allocation callback
//! handle ([`Handle`]). The crate root denies `unsafe_code` everywhere else, so the compiler
//! checks that nothing outside this module needs the argument below.
//!
//! What the rest of the crate may do, with safe code only: make a task (`new_task`), clone and
//! drop its handles, bind, run, cancel and abort it, read and set its flags, its name, its slot
//! and its done-callback, take its outcome and its panic, set its awaiter; make, clone, run,
//! cancel and drop a `Handle`. The one `unsafe` operation offered outside is
//! [`Notified::into_local`] (the caller asserts the thread). None of these can break the
//! invariants below, whatever order they are called in, from inside a task's own future or
//! from a destructor.
//!
//! # Soundness argument: tasks
//!
//! **The allocation.** `new_task` boxes one `TaskCell<F>` and leaks it: a `Header` (type-erased:
//! counts, flags, the scheduler, the vtable of `F`), then the outcome
//! `Cell<Option<Result<F::Output, TaskError>>>`, then the future `UnsafeCell<Option<F>>`. Both
//! the cell and its `Head<T>` (header + outcome) are `repr(C)`, so a pointer to the cell is a
//! pointer to its header and to its `Head<F::Output>`. Type-erased code only goes through the
//! vtable made for the real `F`; the one typed view, `TaskOutput<T>`, is only made by
//! `new_task` with `T = F::Output` (its fields are private to this module). The cell is freed
//! exactly once, by `vtable.dealloc`, by whoever gives back the last unit of `refs`.
//!
//! **Who owns it: two counts.**
//! - `refs` (atomic, any thread) counts units: one per `Waker`, one per `Notified`, and ONE
//!   for all the local handles together. A new unit is only ever made from an existing one
//!   (a clone of a waker, a wake of a live handle), so it never rises from zero; the last
//!   decrement (`Release`, then an `Acquire` fence, as `Arc` does) frees the cell.
//! - `local` (a `Cell`, the task's thread only) counts the local handles: `TaskRef`s (and the
//!   `Task`, `AnyTask` and `TaskOutput` wrapping one). `new_task` starts at `local = 1`,
//!   `refs = 1`. `Notified::into_local` makes a local handle from a `Notified`: its unit
//!   becomes the locals' unit if `local` was 0, and is given back otherwise.
//!
//! Both counts abort the process rather than wrap.
//!
//! **Threads.** A task belongs to the thread that made it (its loop's thread): `F` and its
//! output may be `!Send`. The handles that can reach them (`TaskRef`, `TaskOutput`) hold a
//! `NonNull`, so they are neither `Send` nor `Sync`; the only way from another thread back to
//! them is `Notified::into_local`, whose caller asserts it is on the task's thread. Wakers and
//! `Notified`s may be anywhere and only touch the parts that are `Sync`: `refs`, `queued`
//! (atomics), `vtable` (`&'static`, immutable) and `scheduler` (see below). When `local` drops
//! to zero, `release_local`, on the task's thread, drops everything that is not `Send` (the
//! future, aborting it if it never finished, the output, the awaiter's waker, the
//! done-callback) and only then gives the locals' unit back. So whoever frees the cell (maybe
//! a waker dropped last, on another thread) drops only `Send` data: the name, a kept panic
//! (`Send` strings), the `Arc<dyn Schedule>` (`Send + Sync`) and the atomics. A wake after that
//! may turn a `Notified` into a new local handle again: the contents are gone and `DONE` is
//! set, so running it does nothing, and dropping it runs `release_local` again, which finds
//! nothing left to drop (every step takes what it drops).
//!
//! **The future is touched by one place at a time.** It is polled (`run`), dropped unfinished
//! (`abort`, `release_local`) or dropped after finishing (inside `poll`), only on the task's
//! thread and only with the `BUSY` flag set, by code that checks `BUSY` first. So a future
//! that, while polled, aborts or cancels its own task, drops every handle but the polling one,
//! or wakes itself, never makes a second `&mut` to itself: `abort` then only records the
//! request, and `release_local` cannot run (the polling handle is one of the locals). While
//! `Some`, the future is never moved (the cell is only freed, never moved), so pinning it in
//! place is sound. User code (the poll, the destructors of the future and the output) runs
//! inside `catch_unwind`, so a panic never leaves `BUSY` set or a count half-updated; a
//! destructor that panics part-way leaves the slot `None`, never run twice.
//!
//! **The scheduler.** `bind` writes `scheduler` once, while `BOUND` is clear; wakers are only
//! made by `run`, which asserts `BOUND`, so no waker, hence no reader on any thread, exists at
//! the write. A waker reaches another thread only through some synchronising hand-off (a
//! channel, a lock, a thread spawn), which orders the write before every read there. It is
//! never written again, and dropped only with the cell.
//!
//! **What the waker functions may assume.** `data` is the header of a live task for which
//! the waker owns one unit of `refs`: `clone` adds a unit for the new waker, `drop` gives its
//! unit back, `wake` wakes then gives it back, `wake_by_ref` borrows it. The waker `run` lends
//! to the future during a poll owns no unit: the polling local handle keeps the task alive
//! meanwhile, and that waker is never dropped (`ManuallyDrop`); clones made from it own units
//! of their own. They may run on any thread, concurrently with the task's thread, so they read
//! only the `Sync` parts above. A wake sets `queued` (`AcqRel` swap) and, if it was clear,
//! makes a `Notified` (a new unit) and gives it to the scheduler; `run` clears `queued` before
//! polling, so a wake during or after the poll queues the task again.
//!
//! # Soundness argument: callback handles
//!
//! A [`Handle`] is one pointer to a boxed `CallbackCell<F>` (header first, `repr(C)`): a word
//! holding a reference count and a state, the vtable of `F`, and `ManuallyDrop<F>`. `Handle` is
//! neither `Send` nor `Sync`, so the word is a plain `Cell` touched on one thread. The callback
//! is live exactly while the state is `PENDING`; leaving `PENDING` happens once (in
//! `leave_pending`, or by the last drop) and is followed by exactly one move out of the
//! callback (`run`, `run_and_free`) or one drop of it in place (`drop_callback`). The cell is
//! freed when the count reaches zero, by `dealloc`, or by `run_and_free` for a pending handle
//! nobody else holds (it moves the callback out first, then frees, then calls). While a
//! callback runs or is dropped, the handle doing it keeps the cell alive, so the callback may
//! drop or cancel every other clone of its own handle.
//!
//! # Tests
//!
//! `raw::tests` exercises these rules (wakers outliving their task and loop on other
//! threads, cancel while queued, panicking futures and destructors, handles dropped from
//! their own callbacks); `.ci/memcheck` runs exactly them under valgrind.

mod cell;
mod file_data;
mod handle;
mod op_data;
mod task;
pub(crate) mod timing;
mod waker;

#[cfg(test)]
mod tests;

pub use file_data::{StatxBuf, close_fd};
pub use handle::Handle;
pub use op_data::{AddrBuf, MsgBuf};
pub use task::{Notified, TaskRef};
pub(crate) use task::{TaskOutput, new_task};
pub use waker::{is_loop_task_waker, wake_into};
