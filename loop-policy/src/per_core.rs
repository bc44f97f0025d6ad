//! [`run_per_core`] and [`PerCore`]: one loop per thread, each running the same kind of main
//! future (typically a server with its own `SO_REUSEPORT` listener), stopped together.
//!
//! The loops share nothing but the policy that makes them: no queue, no lock on any hot path.
//! The only cross-thread traffic is stopping, which happens once.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use loop_api::{EventLoop, LoopError, LoopPolicy};

use crate::global::get_event_loop_policy;
use crate::runner::Runner;

/// Runs `f(0)`, `f(1)`, ... `f(threads - 1)`, each as the main future of its own loop on its
/// own thread, and gives their outputs in thread order (the same as
/// `PerCore::new(threads).run(f)`; see [`PerCore`] for pinning and the policy).
///
/// Each loop comes from the global policy ([`get_event_loop_policy`]) and is its thread's
/// current loop while it runs, as with [`run`](crate::run). To spread connections over the
/// loops, give each its own listener bound with `SO_REUSEPORT` on the same address
/// (`loop_net::BindOptions { reuse_port: true, .. }`): the kernel then hands each new
/// connection to one of them.
///
/// ```
/// let squares = loop_policy::run_per_core(3, |i| async move { i * i }).unwrap();
/// assert_eq!(squares, [0, 1, 4]);
/// ```
///
/// # Stopping
/// A thread whose future returns is done; the others go on, and `run_per_core` returns once
/// every thread is done. The whole group is stopped, and `run_per_core` returns an error,
/// when:
/// - a thread's loop fails: making it ([`LoopError::Unavailable`], ...), running it, or its
///   main future panics ([`LoopError::Panicked`]): that first error is returned;
/// - Ctrl-C (SIGINT) arrives while `run_per_core` was called from the main thread and
///   SIGINT had its default disposition: [`LoopError::Interrupted`] is returned (a second
///   Ctrl-C ends the process, as with [`run`](crate::run)).
///
/// Stopping a thread cancels its main future (it is dropped on its loop's thread, at once
/// if the loop is waiting) and then shuts its loop down as [`run`](crate::run) does: the
/// tasks still pending are cancelled, the default executor is shut down, the loop is
/// closed. A main future that returns `Err(..)` of its own is a value like any other: it
/// comes back in the vector and stops nobody (panic, or return it and let the caller
/// decide).
///
/// # Errors
/// [`LoopError::InvalidArgument`] when `threads` is 0; [`LoopError::Io`] when a thread
/// cannot be started (or, with [`PerCore::pin`], pinned); the first error of a thread, as
/// above; [`LoopError::Interrupted`] after Ctrl-C.
pub fn run_per_core<F, Fut, T>(threads: usize, f: F) -> Result<Vec<T>, LoopError>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    PerCore::new(threads).run(f)
}

/// [`run_per_core`] with options: pinning each thread to a CPU, and the policy the loops
/// come from.
///
/// ```
/// use std::sync::Arc;
/// use loop_policy::{Backend, DefaultLoopPolicy, PerCore};
///
/// let names = PerCore::new(2)
///     .policy(Arc::new(DefaultLoopPolicy::with_backend(Backend::Mio)))
///     .run(|_| async { loop_api::get_running_loop().unwrap().backend_name() })
///     .unwrap();
/// assert_eq!(names, ["mio", "mio"]);
/// ```
pub struct PerCore {
    threads: usize,
    pin: bool,
    policy: Option<Arc<dyn LoopPolicy>>,
}

impl PerCore {
    /// `threads` loops, each on a thread of its own, from the global policy, not pinned.
    pub fn new(threads: usize) -> Self {
        PerCore {
            threads,
            pin: false,
            policy: None,
        }
    }

    /// Pins thread `i` to the `i`-th CPU this process may run on (counting round when there
    /// are more threads than CPUs), before its loop is made. Linux and Android only:
    /// elsewhere `run` gives [`LoopError::NotSupported`].
    #[must_use]
    pub fn pin(mut self, on: bool) -> Self {
        self.pin = on;
        self
    }

    /// Makes the loops with `policy` (its `new_event_loop`, set as each thread's current loop
    /// in it) instead of the global policy.
    #[must_use]
    pub fn policy(mut self, policy: Arc<dyn LoopPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Runs the loops (see [`run_per_core`]) and gives each thread's output in thread order.
    ///
    /// # Errors
    /// As [`run_per_core`]; with [`pin`](Self::pin), also `NotSupported` off Linux and `Io`
    /// when the CPUs cannot be read or set.
    pub fn run<F, Fut, T>(self, f: F) -> Result<Vec<T>, LoopError>
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.threads == 0 {
            return Err(LoopError::InvalidArgument(
                "run_per_core: threads must be at least 1 (got 0); \
                 std::thread::available_parallelism() gives one per CPU"
                    .into(),
            ));
        }
        let cpus = if self.pin {
            Some(affinity::allowed_cpus()?)
        } else {
            None
        };
        let policy = self.policy.unwrap_or_else(get_event_loop_policy);
        let group = Arc::new(Group::new(self.threads));
        let setup = Arc::new(Setup {
            f,
            policy,
            group: group.clone(),
            catch_sigint: crate::thread::is_main_thread() && crate::interrupt::sigint_is_default(),
        });
        let mut handles = Vec::with_capacity(self.threads);
        for i in 0..self.threads {
            let cpu = cpus.as_ref().map(|c| c[i % c.len()]);
            let setup = setup.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("loop-{i}"))
                .spawn(move || setup.thread_main(i, cpu));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let msg = format!("run_per_core: could not start loop thread {i}: {e}");
                    group.stop_all(LoopError::Io(std::io::Error::new(e.kind(), msg)));
                    break;
                }
            }
        }
        drop(setup);
        let outputs: Vec<Option<T>> = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        if let Some(e) = group.take_error() {
            return Err(e);
        }
        outputs
            .into_iter()
            .collect::<Option<Vec<T>>>()
            .ok_or(LoopError::Cancelled)
    }
}

impl std::fmt::Debug for PerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerCore")
            .field("threads", &self.threads)
            .field("pin", &self.pin)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

/// What every thread of a run shares.
struct Setup<F> {
    f: F,
    policy: Arc<dyn LoopPolicy>,
    group: Arc<Group>,
    /// Ctrl-C stops the group (the caller was the main thread and SIGINT was unhandled).
    catch_sigint: bool,
}

impl<F, Fut, T> Setup<F>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    /// Thread `i`: its output, or `None` after recording its error (which stops the group)
    /// or being stopped.
    fn thread_main(self: Arc<Self>, i: usize, cpu: Option<usize>) -> Option<T> {
        let ran = catch_unwind(AssertUnwindSafe(|| self.run_loop(i, cpu)));
        let failure = match ran {
            Ok(Ok(out)) => return out,
            Ok(Err(e)) => e,
            Err(panic) => LoopError::Panicked(loop_api::panic_message(&*panic)),
        };
        self.group.stop_all(failure);
        None
    }

    fn run_loop(self: &Arc<Self>, i: usize, cpu: Option<usize>) -> Result<Option<T>, LoopError> {
        if let Some(cpu) = cpu {
            affinity::pin_current_thread(i, cpu)?;
        }
        let mut runner = Runner::with_policy(self.policy.clone());
        let lp = runner.get_loop()?;
        let sigint = if self.catch_sigint {
            Some(StopOnSigint::install(&lp, self.group.clone())?)
        } else {
            None
        };
        let setup = self.clone();
        let main = Stoppable {
            fut: Some(Box::pin(async move { (setup.f)(i).await })),
            stop: self.group.stops[i].clone(),
            sigint,
        };
        let out = runner.run(main);
        let closed = runner.close();
        let out = out?;
        closed?;
        Ok(out)
    }
}

/// One thread's stop request: a flag and the waker of its main future.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Stop {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker().take() {
            w.wake();
        }
    }

    fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// The threads of one run: their stop requests and the error that stopped them.
struct Group {
    stops: Vec<Arc<Stop>>,
    error: Mutex<Option<LoopError>>,
}

impl Group {
    fn new(threads: usize) -> Self {
        Group {
            stops: (0..threads).map(|_| Arc::default()).collect(),
            error: Mutex::new(None),
        }
    }

    /// Records `cause` (unless an earlier one is recorded) and stops every thread.
    fn stop_all(&self, cause: LoopError) {
        {
            let mut error = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if error.is_none() {
                *error = Some(cause);
            }
        }
        for stop in &self.stops {
            stop.stop();
        }
    }

    fn take_error(&self) -> Option<LoopError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A thread's main future, dropped (giving `None`) once its thread is asked to stop.
struct Stoppable<T> {
    fut: Option<Pin<Box<dyn Future<Output = T>>>>,
    stop: Arc<Stop>,
    /// The loop's SIGINT handler, removed before the future is dropped: a future whose
    /// drop blocks must not keep a second Ctrl-C from ending the process.
    sigint: Option<StopOnSigint>,
}

impl<T> Stoppable<T> {
    fn stopped(&mut self) -> Poll<Option<T>> {
        self.sigint = None;
        self.fut = None;
        Poll::Ready(None)
    }
}

impl<T> Future for Stoppable<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.stop.stopped() {
            return self.stopped();
        }
        {
            let mut waker = self.stop.waker();
            match &*waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        // Stopped while the waker was being stored: the wake may have found none.
        if self.stop.stopped() {
            return self.stopped();
        }
        match self.fut.as_mut() {
            Some(fut) => fut.as_mut().poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// A loop's SIGINT handler that stops the whole group; removed on drop if still ours.
struct StopOnSigint {
    lp: EventLoop,
    ours: Weak<()>,
}

impl StopOnSigint {
    fn install(lp: &EventLoop, group: Arc<Group>) -> Result<StopOnSigint, LoopError> {
        let marker = Rc::new(());
        let ours = Rc::downgrade(&marker);
        let weak_lp = lp.downgrade();
        lp.add_signal_handler(libc::SIGINT, move || {
            let _ours = &marker;
            group.stop_all(LoopError::Interrupted);
            // Every loop of the group got this signal and removes its handler: once all
            // have, SIGINT has its default action again and a second Ctrl-C ends the process.
            if let Some(lp) = weak_lp.upgrade() {
                lp.remove_signal_handler(libc::SIGINT);
            }
        })?;
        Ok(StopOnSigint {
            lp: lp.clone(),
            ours,
        })
    }
}

impl Drop for StopOnSigint {
    fn drop(&mut self) {
        if self.ours.upgrade().is_some() {
            self.lp.remove_signal_handler(libc::SIGINT);
        }
    }
}

/// Which CPUs the process may run on, and pinning a thread to one.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod affinity {
    use std::io;

    use loop_api::LoopError;

    /// The CPUs the calling thread may run on (`sched_getaffinity`), in order.
    pub(super) fn allowed_cpus() -> Result<Vec<usize>, LoopError> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable cpu_set_t of the size given.
        let got = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        if got != 0 {
            let e = io::Error::last_os_error();
            let msg = format!("run_per_core: could not read the CPUs this process may use: {e}");
            return Err(LoopError::Io(io::Error::new(e.kind(), msg)));
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, the size of the set.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        if cpus.is_empty() {
            return Err(LoopError::InvalidArgument(
                "run_per_core: the process may run on no CPU".into(),
            ));
        }
        Ok(cpus)
    }

    /// Pins the calling thread (loop thread `i`) to `cpu`.
    pub(super) fn pin_current_thread(i: usize, cpu: usize) -> Result<(), LoopError> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu` came from allowed_cpus, so it is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size given; 0 is the calling thread.
        let set_ok = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
        if set_ok != 0 {
            let e = io::Error::last_os_error();
            let msg = format!("run_per_core: could not pin loop thread {i} to CPU {cpu}: {e}");
            return Err(LoopError::Io(io::Error::new(e.kind(), msg)));
        }
        Ok(())
    }
}

/// Pinning is Linux's `sched_setaffinity` here; other systems get a clear error.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod affinity {
    use loop_api::LoopError;

    pub(super) fn allowed_cpus() -> Result<Vec<usize>, LoopError> {
        Err(LoopError::NotSupported(
            "PerCore::pin: pinning loop threads to CPUs is only implemented on Linux and Android; \
             run without pin(true)"
                .into(),
        ))
    }

    pub(super) fn pin_current_thread(_i: usize, _cpu: usize) -> Result<(), LoopError> {
        Ok(())
    }
}
