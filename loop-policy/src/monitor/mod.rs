//! The loop monitor (like curio's and aiomonitor's): a line-based text service, on a thread of
//! its own, that shows the tasks and statistics of every loop of the process and cancels
//! tasks, so that a loop stuck in a blocking callback can still be looked into.
//!
//! ```text
//! $ LOOP_MONITOR=127.0.0.1:5000 cargo run --example fib_stdin -- --blocking
//! $ nc 127.0.0.1 5000          # or: cargo run -p loop-monitor -- 127.0.0.1:5000
//! ps
//! ```
//!
//! Start it with `LOOP_MONITOR=HOST:PORT` (or `unix:PATH`) in the environment, read when the
//! first loop is made by this crate (the default policy's loops, [`Backend::new_event_loop`]
//! and the like), or in code with [`start`]. Commands, one per line; each reply is one or more
//! lines ended by an empty line:
//!
//! - `ps`: a header, then one line per unfinished task of every loop: its id, its loop, its
//!   state, polls, busy time, idle time, creation site and name.
//! - `where ID`: the task's creation site, state, last poll, and what it awaits (the named
//!   futures its last poll stopped at: `sleep`, `sock_recv`, `Queue.get`...).
//! - `cancel ID`: cancels the task, on its loop's thread.
//! - `stats`: each loop's [`LoopStats`](loop_api::LoopStats), a `key value` line per field.
//! - `help`, `quit`.
//!
//! While a monitor runs, every loop publishes its state at each iteration and around each
//! task poll (see [`loop_api::introspect`]), and task timing is on
//! ([`loop_api::set_task_timing`]); with no monitor that costs a branch.
//!
//! [`Backend::new_event_loop`]: crate::Backend::new_event_loop

mod commands;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use loop_api::introspect::Publication;

/// The environment variable that starts a monitor: `LOOP_MONITOR=HOST:PORT` or `unix:PATH`
/// (ignored in setuid/setgid processes).
pub const ENV_VAR: &str = "LOOP_MONITOR";

/// The longest command line read (longer ones are refused).
const MAX_LINE: u64 = 4096;

/// A running monitor: serves until dropped.
pub struct Monitor {
    addr: String,
    stop: Arc<AtomicBool>,
    accepter: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<Conn>>>,
    unix_path: Option<PathBuf>,
    /// Task timing was off before: turned off again when the monitor stops.
    timing_was_off: bool,
    _publication: Publication,
}

/// A listening socket of either family.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection of either family (a clone is kept to shut it down when the monitor stops).
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts a monitor serving on `addr`: `HOST:PORT` (`127.0.0.1:5000`, `[::1]:5000`,
/// `localhost:5000`; port 0 picks a free one, see [`Monitor::local_addr`]), a bare `PORT`
/// (on 127.0.0.1), or `unix:PATH`. It binds exactly where asked: give a non-loopback address
/// only if the monitor is to be reachable from other hosts (it has no authentication).
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for an address that is not one of the above; the error of
/// binding it (in use, no permission...), naming the address.
pub fn start(addr: &str) -> io::Result<Monitor> {
    let (listener, local, unix_path) = bind(addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let conns = Arc::new(Mutex::new(Vec::new()));
    let publication = Publication::start();
    let timing_was_off = !loop_api::task_timing();
    loop_api::set_task_timing(true);
    let (s, c) = (stop.clone(), conns.clone());
    let accepter = std::thread::Builder::new()
        .name("loop-monitor".into())
        .spawn(move || accept_loop(&listener, &s, &c))?;
    Ok(Monitor {
        addr: local,
        stop,
        accepter: Some(accepter),
        conns,
        unix_path,
        timing_was_off,
        _publication: publication,
    })
}

impl Monitor {
    /// Where it serves: `IP:PORT` (the port picked, for port 0) or `unix:PATH`.
    pub fn local_addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread with a connection of our own.
        let _ = match &self.unix_path {
            Some(p) => UnixStream::connect(p).map(drop),
            None => wake_addr(&self.addr).and_then(|a| TcpStream::connect(a).map(drop)),
        };
        if let Some(t) = self.accepter.take() {
            let _ = t.join();
        }
        for c in std::mem::take(&mut *lock(&self.conns)) {
            c.shutdown();
        }
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
        if self.timing_was_off {
            loop_api::set_task_timing(false);
        }
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("addr", &self.addr).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds `addr`: the listener, its address as shown, and the socket file to remove.
fn bind(addr: &str) -> io::Result<(Listener, String, Option<PathBuf>)> {
    let text = addr.trim();
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad monitor address {addr:?}: {why} (use HOST:PORT, PORT or unix:PATH)"),
        )
    };
    let named = |e: io::Error| io::Error::new(e.kind(), format!("monitor on {text}: {e}"));
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(bad("no path after unix:"));
        }
        let l = UnixListener::bind(path).map_err(named)?;
        return Ok((Listener::Unix(l), text.to_string(), Some(path.into())));
    }
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let with_host = if text.parse::<u16>().is_ok() {
        format!("127.0.0.1:{text}")
    } else {
        text.to_string()
    };
    let addrs: Vec<SocketAddr> = with_host
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .collect();
    let l = TcpListener::bind(&addrs[..]).map_err(named)?;
    let local = l.local_addr()?.to_string();
    Ok((Listener::Tcp(l), local, None))
}

/// Where to connect to wake a TCP monitor bound to `addr` (loopback for a wildcard address).
fn wake_addr(addr: &str) -> io::Result<SocketAddr> {
    let mut a: SocketAddr = addr
        .parse()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(a)
}

/// Accepts connections until `stop`; each is served on a thread of its own.
fn accept_loop(listener: &Listener, stop: &AtomicBool, conns: &Mutex<Vec<Conn>>) {
    loop {
        let conn = match listener {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else {
            // EMFILE and the like: wait a little rather than spin.
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        if let Ok(kept) = conn.try_clone() {
            lock(conns).push(kept);
        }
        let _ = std::thread::Builder::new()
            .name("loop-monitor-conn".into())
            .spawn(move || {
                let _ = serve(conn);
            });
    }
}

/// Serves one connection: a greeting, then a reply per command line, until `quit` or EOF.
fn serve(conn: Conn) -> io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut input = BufReader::new(conn);
    out.write_all(commands::greeting().as_bytes())?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input).take(MAX_LINE).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let reply = if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            // Skip the rest of the long line.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest)?;
            commands::Reply::error(format!("line too long (at most {MAX_LINE} bytes)"))
        } else {
            commands::run(&String::from_utf8_lossy(&line))
        };
        out.write_all(reply.text.as_bytes())?;
        if reply.quit {
            return Ok(());
        }
    }
}

/// The monitor `LOOP_MONITOR` asked for (kept for the life of the process).
static FROM_ENV: OnceLock<Option<Monitor>> = OnceLock::new();

/// Starts the monitor `LOOP_MONITOR` names, once per process (the first time a loop is made);
/// says on stderr where it serves, or why it could not.
pub(crate) fn start_from_env() {
    FROM_ENV.get_or_init(|| {
        let value = std::env::var(ENV_VAR).ok()?;
        if value.trim().is_empty() || crate::backend::is_setuid_or_setgid() {
            return None;
        }
        match start(&value) {
            Ok(m) => {
                eprintln!("loop monitor: serving on {} ({ENV_VAR})", m.local_addr());
                Some(m)
            }
            Err(e) => {
                eprintln!("loop monitor: {e}; {ENV_VAR} is ignored");
                None
            }
        }
    });
}
