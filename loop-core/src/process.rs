//! `subprocess_exec`: children whose pipes and exit the loop watches.
//!
//! The child is started by `std::process::Command` (stdio as configured there). Its piped
//! stdin/stdout/stderr become [`LoopPipe`]s; its exit is watched as [`child`](crate::child)
//! describes (a pidfd polled by the loop, or a watcher thread). `wait` reaps it; a `Process`
//! dropped before that hands it to a background reaper.

use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use loop_api::{
    ChildProcess, Communicated, LocalBoxFuture, LoopError, PipeReader, PipeWriter, Process,
};

use crate::child::{self, ChildWatcher, Exit, outcome_to_result};
use crate::pipe::{LoopPipe, wait_ready};
use loop_api::{Op, WeakEventLoop};

/// A child started by the loop (what `Process` wraps).
struct LoopChild {
    exit: Arc<Exit>,
    /// The pidfd the loop polls; `None` when a watcher thread reaps the child.
    pidfd: Option<Rc<OwnedFd>>,
    lp: WeakEventLoop,
    stdin: Option<PipeWriter>,
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
}

/// Starts `cmd` as a child of the loop `lp`.
pub(crate) fn spawn(lp: WeakEventLoop, mut cmd: Command) -> Result<Process, LoopError> {
    let spawned = cmd.spawn();
    let program = cmd.get_program().to_string_lossy().into_owned();
    // The Command may hold fds meant for the child only (a pipe's writing end): close them now,
    // or the other end never sees end of file.
    drop(cmd);
    let mut child = spawned.map_err(|e| {
        LoopError::Io(io::Error::new(
            e.kind(),
            format!("cannot start {program:?}: {e}"),
        ))
    })?;
    // A pid always fits a pid_t: the kernel hands them out as such.
    let exit = Exit::new(child.id() as libc::pid_t);
    let stdio = (
        child.stdin.take().map(OwnedFd::from),
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    );
    // std's Child neither waits nor kills on drop; the loop reaps the child from here on.
    drop(child);
    match setup(lp, exit.clone(), stdio) {
        Ok(c) => Ok(Process::new(Box::new(c))),
        Err(e) => {
            child::kill_and_reap(&exit);
            Err(e.into())
        }
    }
}

type Stdio = (Option<OwnedFd>, Option<OwnedFd>, Option<OwnedFd>);

fn setup(lp: WeakEventLoop, exit: Arc<Exit>, stdio: Stdio) -> io::Result<LoopChild> {
    let pipe = |fd: OwnedFd| LoopPipe::new(lp.clone(), fd);
    let stdin = stdio.0.map(pipe).transpose()?.map(LoopPipe::into_writer);
    let stdout = stdio.1.map(pipe).transpose()?.map(LoopPipe::into_reader);
    let stderr = stdio.2.map(pipe).transpose()?.map(LoopPipe::into_reader);
    let pidfd = match child::child_watcher() {
        ChildWatcher::Pidfd => child::pidfd_open(exit.pid).ok(),
        ChildWatcher::Threaded => None,
    };
    if pidfd.is_none() {
        child::spawn_watcher_thread(exit.clone())?;
    }
    Ok(LoopChild {
        exit,
        pidfd: pidfd.map(Rc::new),
        lp,
        stdin,
        stdout,
        stderr,
    })
}

/// Waits for the child's exit and reaps it.
async fn wait_exit(
    lp: WeakEventLoop,
    exit: Arc<Exit>,
    pidfd: Option<Rc<OwnedFd>>,
) -> io::Result<i32> {
    let Some(pidfd) = pidfd else {
        // A watcher thread reaps the child and wakes us.
        return poll_fn(|cx| {
            let mut st = exit.lock();
            match st.outcome {
                Some(outcome) => Poll::Ready(outcome_to_result(outcome)),
                None => {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
    };
    loop {
        if let Some(outcome) = exit.try_reap(false) {
            return outcome_to_result(outcome);
        }
        // The pidfd becomes readable when the child exits.
        let op = Op::PollReadable {
            fd: pidfd.as_raw_fd(),
        };
        wait_ready(&lp, op).await?;
    }
}

/// Writes `input` to the child's stdin and closes it; a child that exits without reading it
/// all is not an error.
async fn feed_stdin(stdin: Option<PipeWriter>, input: Vec<u8>) -> io::Result<()> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    let (res, _) = stdin.send_all(input).await;
    drop(stdin);
    match res {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

async fn read_all(pipe: Option<PipeReader>) -> io::Result<Vec<u8>> {
    match pipe {
        Some(mut p) => p.recv_to_end().await,
        None => Ok(Vec::new()),
    }
}

/// A future run to its end inside [`join3`], then its output.
enum Joined<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

impl<F: Future> Joined<F> {
    /// Polls once if still running; true once done.
    fn poll_done(&mut self, cx: &mut Context<'_>) -> bool {
        if let Joined::Running(f) = self
            && let Poll::Ready(v) = f.as_mut().poll(cx)
        {
            *self = Joined::Done(Some(v));
        }
        matches!(self, Joined::Done(_))
    }

    fn take(&mut self) -> Option<F::Output> {
        match self {
            Joined::Done(v) => v.take(),
            Joined::Running(_) => None,
        }
    }
}

/// Runs three futures concurrently and gives their outputs.
async fn join3<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> (A::Output, B::Output, C::Output) {
    let (mut a, mut b, mut c) = (
        Joined::Running(Box::pin(a)),
        Joined::Running(Box::pin(b)),
        Joined::Running(Box::pin(c)),
    );
    poll_fn(move |cx| {
        // Poll all three every time: each may have been woken.
        let done = [a.poll_done(cx), b.poll_done(cx), c.poll_done(cx)];
        if done.iter().all(|d| *d)
            && let (Some(x), Some(y), Some(z)) = (a.take(), b.take(), c.take())
        {
            return Poll::Ready((x, y, z));
        }
        Poll::Pending
    })
    .await
}

impl ChildProcess for LoopChild {
    fn pid(&self) -> u32 {
        self.exit.pid as u32
    }

    fn kill(&self) -> io::Result<()> {
        self.exit.send_signal(libc::SIGKILL)
    }

    fn send_signal(&self, signal: i32) -> io::Result<()> {
        self.exit.send_signal(signal)
    }

    fn wait(&mut self) -> LocalBoxFuture<io::Result<i32>> {
        Box::pin(wait_exit(
            self.lp.clone(),
            self.exit.clone(),
            self.pidfd.clone(),
        ))
    }

    fn communicate(&mut self, input: Vec<u8>) -> LocalBoxFuture<io::Result<Communicated>> {
        if self.stdin.is_none() && !input.is_empty() {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "communicate: input was given but the child's stdin is not piped (configure the Command with .stdin(Stdio::piped()))",
            );
            return Box::pin(std::future::ready(Err(e)));
        }
        let feed = feed_stdin(self.stdin.take(), input);
        let out = read_all(self.stdout.take());
        let err = read_all(self.stderr.take());
        let wait = self.wait();
        Box::pin(async move {
            let (fed, out, err) = join3(feed, out, err).await;
            fed?;
            let (out, err) = (out?, err?);
            let code = wait.await?;
            Ok((code, out, err))
        })
    }

    fn returncode(&self) -> Option<i32> {
        match self.exit.lock().outcome {
            Some(Ok(code)) => Some(code),
            _ => None,
        }
    }

    fn take_stdin(&mut self) -> Option<PipeWriter> {
        self.stdin.take()
    }

    fn take_stdout(&mut self) -> Option<PipeReader> {
        self.stdout.take()
    }

    fn take_stderr(&mut self) -> Option<PipeReader> {
        self.stderr.take()
    }
}

impl Drop for LoopChild {
    fn drop(&mut self) {
        // Close our ends first: a child blocked writing to (or reading from) them can go on.
        self.stdin.take();
        self.stdout.take();
        self.stderr.take();
        // With a watcher thread the child is reaped anyway; with a pidfd nobody would.
        if self.pidfd.is_some() {
            child::reap_in_background(self.exit.clone());
        }
    }
}
