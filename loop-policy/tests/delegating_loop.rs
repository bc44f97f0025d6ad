//! A third-party `AbstractEventLoop` (here a delegate wrapping each backend's loop, as a
//! tracing or instrumenting loop would) gets every `sock_*` method of `EventLoop` by
//! implementing the three operation primitives (`start_op`, `poll_op`, `drop_op`): they are
//! the one path of every socket operation, which the delegate checks by counting.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::RawFd;
use std::process::Command;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use loop_api::{
    AbstractEventLoop, EventLoop, ExceptionContext, ExceptionHandler, Handle, LoopError,
    LoopHandle, Op, OpId, OpPoll, Process, TaskRef, TimerHandle,
};
use loop_policy::Backend;

struct Delegate {
    inner: EventLoop,
    started: Rc<Cell<usize>>,
}

impl Delegate {
    fn i(&self) -> &dyn AbstractEventLoop {
        self.inner.as_abstract()
    }
}

impl AbstractEventLoop for Delegate {
    fn run_forever(&self) -> Result<(), LoopError> {
        self.i().run_forever()
    }
    fn stop(&self) {
        self.i().stop()
    }
    fn is_running(&self) -> bool {
        self.i().is_running()
    }
    fn is_closed(&self) -> bool {
        self.i().is_closed()
    }
    fn close(&self) -> Result<(), LoopError> {
        self.i().close()
    }
    fn call_soon(&self, handle: Handle) -> Result<(), LoopError> {
        self.i().call_soon(handle)
    }
    fn call_at(&self, when: Instant, handle: Handle) -> Result<TimerHandle, LoopError> {
        self.i().call_at(when, handle)
    }
    fn time(&self) -> Instant {
        self.i().time()
    }
    fn handle(&self) -> LoopHandle {
        self.i().handle()
    }
    fn spawn(&self, task: TaskRef) -> Result<(), LoopError> {
        self.i().spawn(task)
    }
    fn all_tasks(&self) -> Vec<TaskRef> {
        self.i().all_tasks()
    }
    fn add_reader(&self, fd: RawFd, cb: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        self.i().add_reader(fd, cb)
    }
    fn remove_reader(&self, fd: RawFd) -> bool {
        self.i().remove_reader(fd)
    }
    fn add_writer(&self, fd: RawFd, cb: Box<dyn FnMut() + 'static>) -> Result<(), LoopError> {
        self.i().add_writer(fd, cb)
    }
    fn remove_writer(&self, fd: RawFd) -> bool {
        self.i().remove_writer(fd)
    }
    fn run_in_executor(&self, job: Box<dyn FnOnce() + Send + 'static>) -> Result<(), LoopError> {
        self.i().run_in_executor(job)
    }
    fn start_op(&self, op: &mut Option<Op>, cx: &mut Context<'_>) -> OpPoll {
        self.started.set(self.started.get() + 1);
        self.i().start_op(op, cx)
    }
    fn poll_op(
        &self,
        id: OpId,
        op: &mut Option<Op>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        self.i().poll_op(id, op, cx)
    }
    fn drop_op(&self, id: OpId) {
        self.i().drop_op(id)
    }
    fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        self.i().set_exception_handler(handler)
    }
    fn call_exception_handler(&self, context: &ExceptionContext) {
        self.i().call_exception_handler(context)
    }
    fn set_debug(&self, on: bool) {
        self.i().set_debug(on)
    }
    fn get_debug(&self) -> bool {
        self.i().get_debug()
    }
    fn slow_callback_duration(&self) -> Duration {
        self.i().slow_callback_duration()
    }
    fn set_slow_callback_duration(&self, threshold: Duration) {
        self.i().set_slow_callback_duration(threshold)
    }
    fn backend_name(&self) -> &'static str {
        "delegate"
    }
    fn add_signal_handler(
        &self,
        sig: i32,
        cb: Box<dyn FnMut() + 'static>,
    ) -> Result<(), LoopError> {
        self.i().add_signal_handler(sig, cb)
    }
    fn remove_signal_handler(&self, sig: i32) -> bool {
        self.i().remove_signal_handler(sig)
    }
    fn subprocess_exec(&self, cmd: Command) -> Result<Process, LoopError> {
        self.i().subprocess_exec(cmd)
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn every_socket_operation_runs_through_the_operation_primitives() {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        match backend.why_unavailable() {
            Some(reason) => eprintln!("skipped on {backend}: {reason}"),
            None => echo_through_a_delegate(backend),
        }
    }
}

fn echo_through_a_delegate(backend: Backend) {
    let calls = Rc::new(Cell::new(0));
    let lp = EventLoop::new(Delegate {
        inner: backend.new_event_loop().expect("a loop"),
        started: calls.clone(),
    });
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("local_addr");
    let data = pattern(1 << 20);
    let want = data.clone();
    // A plain thread echoes back what it gets.
    let echo = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                return;
            }
            s.write_all(&buf[..n]).expect("write");
        }
    });
    let lp2 = lp.clone();
    let got = lp
        .run_until_complete(async move {
            let c = lp2.sock_connect(addr).await.expect("sock_connect");
            let sender = {
                let (lp, c) = (lp2.clone(), c.try_clone().expect("try_clone"));
                lp2.create_task(async move {
                    let (res, _) = lp.sock_sendall(&c, data).await;
                    res.expect("sock_sendall");
                })
                .expect("create_task")
            };
            let mut got = Vec::new();
            while got.len() < 1 << 20 {
                let (res, buf) = lp2.sock_recv(&c, Vec::with_capacity(64 * 1024)).await;
                assert!(res.expect("sock_recv") > 0, "early end of stream");
                got.extend_from_slice(&buf);
            }
            sender.await.expect("sender");
            c.shutdown(std::net::Shutdown::Write).expect("shutdown");
            got
        })
        .expect("run_until_complete");
    echo.join().expect("echo thread");
    assert!(
        got == want,
        "{backend}: echoed bytes differ ({} bytes)",
        got.len()
    );
    // The connect, and at least one receive and one send.
    assert!(
        calls.get() >= 3,
        "{backend}: the socket operations did not go through start_op ({} calls)",
        calls.get()
    );
    lp.close().expect("close");
}
