//! The echo server against real TCP clients: many at once, byte-exact.
//!
//! The server (`examples::echo`, what `cargo run --example echo_server` runs) runs in this
//! process on a thread with its own loop; the clients are plain blocking std sockets on their
//! own threads. The last test runs the compiled example program itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use loop_api::{LoopError, LoopHandle};
use loop_policy::Backend;

/// No read may wait longer than this: a broken server fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// An echo server on its own thread and loop, stopped and joined on drop.
struct Server {
    addr: SocketAddr,
    handle: LoopHandle,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Server {
    fn start(backend: Backend) -> Server {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let lp = backend.new_event_loop().map_err(|e| e.to_string())?;
            let listener =
                examples::echo::bind("127.0.0.1:0".parse().unwrap()).map_err(|e| e.to_string())?;
            tx.send((listener.local_addr().unwrap(), lp.handle()))
                .unwrap();
            let served = lp.run_until_complete(examples::echo::serve(lp.clone(), listener));
            lp.close().map_err(|e| e.to_string())?;
            match served {
                Err(LoopError::StoppedBeforeComplete) => Ok(()),
                Ok(Err(e)) => Err(format!("the server failed: {e}")),
                other => Err(format!("the server ended with {other:?}")),
            }
        });
        let (addr, handle) = rx.recv().expect("the server thread started");
        Server {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.handle.stop();
        let result = self
            .thread
            .take()
            .unwrap()
            .join()
            .expect("the server thread did not panic");
        result.unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.stop();
    }
}

/// Bytes no other client sends: a simple generator seeded with the client's number.
fn payload(client: u64, len: usize) -> Vec<u8> {
    let mut x = client.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the echo server");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Sends `data` (from another thread, so a large payload cannot deadlock against the echo),
/// closes the sending side, and returns everything received until the server closed.
fn echo_through(addr: SocketAddr, data: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let stream = connect(addr);
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        // Uneven pieces, so the server sees many partial reads.
        for piece in data.chunks(7919) {
            writer.write_all(piece).unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
        data
    });
    let mut received = Vec::new();
    (&stream).read_to_end(&mut received).expect("read the echo");
    (sender.join().unwrap(), received)
}

#[test]
fn fifty_concurrent_clients_get_their_own_bytes_back() {
    let server = Server::start(Backend::Auto);
    let addr = server.addr;
    let clients: Vec<_> = (0..50u64)
        .map(|i| thread::spawn(move || echo_through(addr, payload(i, 10_000 + 3_001 * i as usize))))
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (sent, received) = client.join().expect("client thread");
        assert_eq!(received.len(), sent.len(), "client {i}: length");
        assert!(
            received == sent,
            "client {i}: the echo differs from what was sent"
        );
    }
    server.stop();
}

#[test]
fn request_response_on_one_connection() {
    let server = Server::start(Backend::Mio);
    let mut s = connect(server.addr);
    for round in 0..200u64 {
        let msg = payload(1000 + round, 1 + (round as usize * 37) % 3000);
        s.write_all(&msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert!(back == msg, "round {round}");
    }
    drop(s);
    server.stop();
}

#[test]
fn server_survives_clients_that_vanish() {
    let server = Server::start(Backend::Mio);
    for _ in 0..20 {
        let mut s = connect(server.addr);
        // Send and leave without reading: closing with unread data resets the connection.
        s.write_all(&payload(7, 100_000)).unwrap();
        drop(s);
    }
    let (sent, received) = echo_through(server.addr, payload(8, 50_000));
    assert!(received == sent);
    server.stop();
}

/// The compiled `echo_server` example, next to this test's executable (cargo builds examples
/// for `cargo test`, but sets no `CARGO_BIN_EXE_` for them).
fn example_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("echo_server");
    path.is_file().then_some(path)
}

#[test]
fn the_example_program_serves_and_names_its_backend() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: the echo_server example is not built (run `cargo test -p examples`)");
        return;
    };
    let mut child = Command::new(&bin)
        .arg("127.0.0.1:0")
        .env("LOOP_BACKEND", "mio")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the echo_server example");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let addr: SocketAddr = first_line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first_line:?}"));
    assert!(first_line.contains("backend: mio"), "{first_line}");
    let (sent, received) = echo_through(addr, payload(99, 200_000));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(received == sent);
}

#[test]
fn the_example_program_reports_a_bad_backend() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: the echo_server example is not built (run `cargo test -p examples`)");
        return;
    };
    let out = Command::new(&bin)
        .arg("127.0.0.1:0")
        .env("LOOP_BACKEND", "epoll")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"epoll\"") && stderr.contains("auto, mio, polling, uring"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
