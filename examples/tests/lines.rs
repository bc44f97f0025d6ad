//! The line server (`examples::lines`) against std clients on every backend: commands split
//! at odd places, several per write, a last line without `\n`, a line longer than the read
//! buffer, and one over the limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use loop_policy::Backend;

fn start(backend: Backend) -> (SocketAddr, loop_api::LoopHandle, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let lp = backend.new_event_loop().expect("loop");
        let listener = examples::lines::bind(&lp, "127.0.0.1:0".parse().unwrap()).expect("bind");
        tx.send((listener.local_addr().unwrap(), lp.handle()))
            .unwrap();
        let _ = lp.run_until_complete(examples::lines::serve(lp.clone(), listener));
        lp.close().expect("close");
    });
    let (addr, handle) = rx.recv().expect("server started");
    (addr, handle, thread)
}

fn client(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).expect("read a reply");
    l
}

#[test]
fn line_server_reads_lines_with_read_line_on_every_backend() {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if let Some(why) = backend.why_unavailable() {
            println!("skipped on {backend}: {why}");
            continue;
        }
        let (addr, handle, thread) = start(backend);
        let (mut w, mut r) = client(addr);
        // Split mid-command, then several commands in one write.
        w.write_all(b"ECH").unwrap();
        w.flush().unwrap();
        thread::sleep(Duration::from_millis(20));
        w.write_all(b"O hi\nUPPER loop\nSUM 1 2 3\n").unwrap();
        assert_eq!(line(&mut r), "hi\n", "{backend}");
        assert_eq!(line(&mut r), "LOOP\n", "{backend}");
        assert_eq!(line(&mut r), "6\n", "{backend}");
        // A line longer than one read of the stream's buffer (16 KiB).
        let long = "x".repeat(40_000);
        w.write_all(format!("ECHO {long}\n").as_bytes()).unwrap();
        assert_eq!(line(&mut r), format!("{long}\n"), "{backend}");
        w.write_all(b"NOPE\n").unwrap();
        assert!(line(&mut r).starts_with("ERR unknown command"), "{backend}");
        // The last line without its newline, then the client's end of stream.
        w.write_all(b"QUIT").unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(line(&mut r), "BYE\n", "{backend}");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{backend}: the server closed after BYE");
        // Over the limit: refused, and the connection closed.
        let (mut w, mut r) = client(addr);
        // One byte over (all of it read, so the close is a clean FIN, not a reset).
        let huge = vec![b'y'; examples::lines::MAX_LINE + 1];
        w.write_all(&huge).unwrap();
        assert_eq!(line(&mut r), "ERR line too long\n", "{backend}");
        handle.stop();
        thread.join().expect("server thread");
    }
}
