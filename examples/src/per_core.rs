//! A server on several loops, one per thread (`loop_policy::run_per_core`): `echo_server
//! --threads N` and `hyper_server --threads N`.
//!
//! Every thread gets a listener of its own, all bound to one address with `SO_REUSEPORT`, so
//! the kernel spreads new connections over the loops; nothing else is shared. The listeners
//! are bound here, before any thread starts, so an address in use is reported at once. Ctrl-C
//! (SIGINT) stops every loop through `run_per_core`; `kill` (SIGTERM) reaches each loop's own
//! handler, which ends its server. Either way each loop is closed (the port is free at once)
//! and the program exits with success.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use futures_util::future::{Either, select};
use loop_api::{EventLoop, LoopError, get_running_loop};
use loop_policy::PerCore;

/// The listen backlog of each listener.
const BACKLOG: i32 = 1024;

/// How a per-core server is run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The address (port 0 picks a free port, shared by all the listeners).
    pub addr: SocketAddr,
    /// How many loops (threads).
    pub threads: usize,
    /// Pin thread `i` to the `i`-th CPU (`PerCore::pin`).
    pub pin: bool,
}

/// `n` listening sockets on `addr`, all with `SO_REUSEPORT` (the first one fixes the port
/// when `addr`'s is 0).
///
/// # Errors
/// The OS refusing a socket, an option, the bind (address in use, ...) or the listen.
pub fn reuse_port_listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = listeners
            .first()
            .map_or(Ok(addr), TcpListener::local_addr)?;
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(at),
            socket2::Type::STREAM,
            None,
        )?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.set_nonblocking(true)?;
        sock.bind(&at.into())?;
        sock.listen(BACKLOG)?;
        listeners.push(sock.into());
    }
    Ok(listeners)
}

/// A future that completes when the loop gets `sig`: the loop's handler for it, installed
/// now and left until the loop is closed.
///
/// # Errors
/// The loop refusing the handler.
pub fn signal_received(
    lp: &EventLoop,
    sig: i32,
) -> Result<impl Future<Output = ()> + use<>, LoopError> {
    let state: Rc<(Cell<bool>, Cell<Option<Waker>>)> = Rc::default();
    let st = state.clone();
    lp.add_signal_handler(sig, move || {
        st.0.set(true);
        if let Some(w) = st.1.take() {
            w.wake();
        }
    })?;
    Ok(std::future::poll_fn(move |cx| {
        if state.0.get() {
            return Poll::Ready(());
        }
        state.1.set(Some(cx.waker().clone()));
        Poll::Pending
    }))
}

/// What one loop of [`serve`] needs.
struct One<R, S> {
    addr: SocketAddr,
    threads: usize,
    /// How many loops handle SIGTERM so far.
    armed: Arc<AtomicUsize>,
    ready: Arc<R>,
    serve: Arc<S>,
}

impl<R, S, Fut> One<R, S>
where
    R: Fn(SocketAddr, &str),
    S: Fn(EventLoop, TcpListener) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    /// Serves `listener` on the running loop until SIGTERM (true) or the server's end.
    async fn run(self, listener: Option<TcpListener>) -> io::Result<bool> {
        let lp = get_running_loop().map_err(io::Error::other)?;
        let listener = listener.ok_or_else(|| io::Error::other("no listener for this loop"))?;
        let term = signal_received(&lp, libc::SIGTERM)?;
        if self.armed.fetch_add(1, Ordering::SeqCst) + 1 == self.threads {
            (self.ready)(self.addr, lp.backend_name());
        }
        match select(pin!((self.serve)(lp, listener)), pin!(term)).await {
            Either::Left((served, _)) => served.map(|()| false),
            Either::Right(((), _)) => Ok(true),
        }
    }
}

/// Runs `serve(loop, listener)` on `options.threads` loops, each with its own
/// `SO_REUSEPORT` listener on `options.addr`, until Ctrl-C or SIGTERM (or until every server
/// returns). `ready(address, backend)` is called once, when every loop handles SIGTERM.
/// Gives the error of a server that failed, if one did; a stop by a signal is named on
/// stderr, prefixed with `program`.
///
/// # Errors
/// Binding the listeners; a loop failing (`run_per_core`'s errors, except `Interrupted`,
/// which is Ctrl-C and a clean stop); the first server that returned an error.
pub fn serve<S, Fut>(
    program: &'static str,
    options: Options,
    ready: impl Fn(SocketAddr, &str) + Send + Sync + 'static,
    serve: S,
) -> Result<(), Box<dyn std::error::Error>>
where
    S: Fn(EventLoop, TcpListener) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    let listeners = reuse_port_listeners(options.addr, options.threads.max(1))?;
    let addr = listeners[0].local_addr()?;
    let listeners: Vec<Mutex<Option<TcpListener>>> =
        listeners.into_iter().map(|l| Mutex::new(Some(l))).collect();
    let (listeners, serve, ready) = (Arc::new(listeners), Arc::new(serve), Arc::new(ready));
    let armed = Arc::new(AtomicUsize::new(0));
    let threads = options.threads;
    let ran = PerCore::new(threads).pin(options.pin).run(move |i| {
        let listener = listeners
            .get(i)
            .and_then(|l| l.lock().unwrap_or_else(|p| p.into_inner()).take());
        let one = One {
            addr,
            threads,
            armed: armed.clone(),
            ready: ready.clone(),
            serve: serve.clone(),
        };
        one.run(listener)
    });
    let ended = match ran {
        Ok(ended) => ended,
        Err(LoopError::Interrupted) => {
            eprintln!("{program}: SIGINT received, stopped and closed the {threads} loop(s)");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut by_signal = false;
    for e in ended {
        by_signal |= e?;
    }
    if by_signal {
        eprintln!("{program}: SIGTERM received, stopped and closed the {threads} loop(s)");
    }
    Ok(())
}
