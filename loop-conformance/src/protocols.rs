//! asyncio's Protocol/Transport layer through `loop-net`: `create_server`,
//! `create_connection`, half-close, back-pressure with water marks, and a server that keeps
//! listening through EMFILE.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use loop_api::{ExceptionContext, get_running_loop, sleep};
use loop_net::{Protocol, ServerOptions, Transport, create_connection, create_server};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// Echoes what it receives.
struct Echo(Option<Transport>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: &Transport) {
        self.0 = Some(t.clone());
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
}

/// Records every callback, in order.
#[derive(Default)]
struct Recorder {
    events: Rc<RefCell<Vec<String>>>,
    data: Rc<RefCell<Vec<u8>>>,
    keep_open_on_eof: bool,
    transport: Option<Transport>,
}

impl Protocol for Recorder {
    fn connection_made(&mut self, t: &Transport) {
        self.transport = Some(t.clone());
        self.events.borrow_mut().push("made".into());
    }
    fn data_received(&mut self, data: &[u8]) {
        self.data.borrow_mut().extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        self.events.borrow_mut().push("eof".into());
        self.keep_open_on_eof
    }
    fn connection_lost(&mut self, error: Option<std::io::Error>) {
        let what = if error.is_some() {
            "lost-error"
        } else {
            "lost"
        };
        self.events.borrow_mut().push(what.into());
        self.transport = None;
    }
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        sleep(Duration::from_millis(1)).await;
    }
    panic!("condition not reached in 10 s");
}

/// A protocol server echoes 200 KiB for a protocol client; callbacks come in order and
/// `connection_lost` exactly once on each side.
pub fn protocol_echo_roundtrip(factory: Factory) {
    let lp = new_loop(factory);
    let (events, data) = block_on(&lp, async {
        let server = create_server(|| Echo(None), loopback(), ServerOptions::default())
            .expect("create_server");
        let rec = Recorder::default();
        let (events, data) = (rec.events.clone(), rec.data.clone());
        let (transport, _p) = create_connection(rec, server.local_addr())
            .await
            .expect("create_connection");
        let sent = pattern(200 * 1024, 3);
        transport.write(&sent);
        let d = data.clone();
        wait_until(|| d.borrow().len() >= sent.len()).await;
        transport.close();
        let e = events.clone();
        wait_until(|| e.borrow().iter().any(|x| x.starts_with("lost"))).await;
        sleep(Duration::from_millis(5)).await;
        assert!(*data.borrow() == sent, "the echo came back corrupted");
        let events = events.borrow().clone();
        (events, data.borrow().len())
    });
    assert_eq!(
        events,
        ["made", "lost"],
        "callbacks out of order or repeated"
    );
    assert_eq!(data, 200 * 1024);
    close(&lp);
}

/// `write_eof` half-closes: the server's `eof_received` keeps its side open (returns true),
/// it answers, then closes; the client reads the answer, sees end of stream and is told.
pub fn protocol_half_close(factory: Factory) {
    struct Answer(Option<Transport>, Vec<u8>);
    impl Protocol for Answer {
        fn connection_made(&mut self, t: &Transport) {
            self.0 = Some(t.clone());
        }
        fn data_received(&mut self, data: &[u8]) {
            self.1.extend_from_slice(data);
        }
        fn eof_received(&mut self) -> bool {
            if let Some(t) = &self.0 {
                let mut reply = b"got ".to_vec();
                reply.extend_from_slice(&self.1);
                t.write(&reply);
                t.close();
            }
            true
        }
    }
    let lp = new_loop(factory);
    let (events, data) = block_on(&lp, async {
        let server = create_server(
            || Answer(None, Vec::new()),
            loopback(),
            ServerOptions::default(),
        )
        .expect("create_server");
        let rec = Recorder::default();
        let (events, data) = (rec.events.clone(), rec.data.clone());
        let (transport, _p) = create_connection(rec, server.local_addr())
            .await
            .expect("connect");
        transport.write(b"question");
        transport.write_eof();
        let e = events.clone();
        wait_until(|| e.borrow().iter().any(|x| x.starts_with("lost"))).await;
        let events = events.borrow().clone();
        (events, data.borrow().clone())
    });
    assert_eq!(data, b"got question");
    assert_eq!(events, ["made", "eof", "lost"]);
    close(&lp);
}

/// A protocol writing to a peer that does not read is paused at the high-water mark and
/// resumed below the low one; its buffer stays bounded and every byte arrives in order.
pub fn protocol_back_pressure(factory: Factory) {
    const TOTAL: usize = 8 * 1024 * 1024;
    const CHUNK: usize = 16 * 1024;
    const HIGH: usize = 64 * 1024;
    struct Producer {
        t: Option<Transport>,
        sent: usize,
        paused: bool,
        pauses: Rc<RefCell<(usize, usize, usize)>>, // (pauses, resumes, largest buffer)
        data: Rc<Vec<u8>>,
    }
    impl Producer {
        fn pump(&mut self) {
            let Some(t) = self.t.clone() else { return };
            while !self.paused && self.sent < TOTAL && t.get_write_buffer_size() <= HIGH {
                let n = CHUNK.min(TOTAL - self.sent);
                t.write(&self.data[self.sent..self.sent + n]);
                self.sent += n;
                let mut s = self.pauses.borrow_mut();
                s.2 = s.2.max(t.get_write_buffer_size());
            }
            if self.sent == TOTAL {
                t.close();
            }
        }
    }
    impl Protocol for Producer {
        fn connection_made(&mut self, t: &Transport) {
            t.set_write_buffer_limits(HIGH, None).expect("limits");
            self.t = Some(t.clone());
            self.pump();
        }
        fn data_received(&mut self, _: &[u8]) {}
        fn pause_writing(&mut self) {
            self.paused = true;
            self.pauses.borrow_mut().0 += 1;
        }
        fn resume_writing(&mut self) {
            self.paused = false;
            self.pauses.borrow_mut().1 += 1;
            self.pump();
        }
    }
    let lp = new_loop(factory);
    let stats = Rc::new(RefCell::new((0, 0, 0)));
    let s2 = stats.clone();
    let data = Rc::new(pattern(TOTAL, 9));
    let expected = data.clone();
    let got = block_on(&lp, async move {
        let server = create_server(
            move || Producer {
                t: None,
                sent: 0,
                paused: false,
                pauses: s2.clone(),
                data: data.clone(),
            },
            loopback(),
            ServerOptions::default(),
        )
        .expect("create_server");
        let mut client = std::net::TcpStream::connect(server.local_addr()).expect("connect");
        client.set_nonblocking(true).expect("nonblocking");
        // Do not read for a while: the producer must hit the high-water mark.
        sleep(Duration::from_millis(100)).await;
        let mut got = Vec::with_capacity(TOTAL);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    sleep(Duration::from_millis(1)).await
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        let _ = client.write(b"");
        got
    });
    let (pauses, resumes, largest) = *stats.borrow();
    assert!(
        got == *expected,
        "the stream arrived corrupted ({} bytes)",
        got.len()
    );
    assert!(pauses >= 1, "pause_writing was never called");
    assert!(resumes >= 1, "resume_writing was never called");
    assert!(
        largest <= HIGH + CHUNK,
        "the write buffer grew to {largest} bytes despite back-pressure"
    );
    close(&lp);
}

/// A server out of descriptors (EMFILE) keeps listening: it reports the failure once, pauses
/// `accept_retry_delay` between tries (no spinning), and serves the pending client once
/// descriptors are free again.
pub fn server_survives_emfile(factory: Factory) {
    let lp = new_loop(factory);
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = reports.clone();
    lp.set_exception_handler(Some(Box::new(move |ctx: &ExceptionContext| {
        r.borrow_mut().push(ctx.message.clone());
    })));
    let answer = block_on(&lp, async {
        let opts = ServerOptions {
            accept_retry_delay: Duration::from_millis(20),
            ..ServerOptions::default()
        };
        let server = create_server(|| Echo(None), loopback(), opts).expect("create_server");
        let mut client = std::net::TcpStream::connect(server.local_addr()).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let (limit, fillers) = crate::fds::exhaust_fds();
        // Several retry periods pass while the process has no descriptor to spare.
        sleep(Duration::from_millis(200)).await;
        drop(fillers);
        drop(limit);
        client.write_all(b"still here").expect("write");
        let lp = get_running_loop().expect("loop");
        let answer = lp
            .run_in_executor(move || {
                let mut buf = [0u8; 10];
                client.read_exact(&mut buf).map(|_| buf.to_vec())
            })
            .await
            .expect("executor");
        drop(server);
        answer
    });
    assert_eq!(answer.expect("echo after EMFILE"), b"still here");
    let reports = reports.borrow();
    let emfile: Vec<_> = reports
        .iter()
        .filter(|m| m.contains("out of resources"))
        .collect();
    assert_eq!(
        emfile.len(),
        1,
        "EMFILE must be reported once per streak: {reports:?}"
    );
    close(&lp);
}
