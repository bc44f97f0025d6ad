//! The networking examples against real clients: the HTTP server with many keep-alive and
//! pipelined requests from std clients, and the UDP echo with datagrams from std sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Starts a server on its own thread and loop (`start` binds and returns the address and
/// the serving future's runner); gives the address.
fn spawn_server(start: fn(mpsc::Sender<SocketAddr>)) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || start(tx));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("server started")
}

fn http_server(tx: mpsc::Sender<SocketAddr>) {
    let lp = new_loop();
    let listener = examples::http::bind(&lp, "127.0.0.1:0".parse().unwrap()).unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    let _ = lp.run_until_complete(examples::http::serve(lp.clone(), listener));
}

fn udp_server(tx: mpsc::Sender<SocketAddr>) {
    let lp = new_loop();
    let opts = loop_net::BindOptions {
        reuse_address: false,
        ..Default::default()
    };
    let sock = loop_net::UdpSocket::bind_on(&lp, "127.0.0.1:0".parse().unwrap(), opts).unwrap();
    tx.send(sock.local_addr().unwrap()).unwrap();
    let _ = lp.run_until_complete(examples::udp::serve(sock));
}

/// The default policy's backend (uring here, mio where io_uring is blocked).
fn new_loop() -> loop_api::EventLoop {
    loop_policy::new_event_loop().unwrap()
}

fn read_responses(s: &mut TcpStream, count: usize) -> Vec<u8> {
    let want = examples::http::RESPONSE.len() * count;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "server closed early after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn http_server_answers_keep_alive_and_pipelined_requests() {
    let addr = spawn_server(http_server);
    let clients: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                // Keep-alive: one request at a time.
                for _ in 0..10 {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    assert_eq!(read_responses(&mut s, 1), examples::http::RESPONSE);
                }
                // Pipelined: three requests in one write, split oddly.
                let three = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
                s.write_all(&three[..20]).unwrap();
                thread::sleep(Duration::from_millis(5));
                s.write_all(&three[20..]).unwrap();
                assert_eq!(read_responses(&mut s, 3), examples::http::RESPONSE.repeat(3));
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn http_server_refuses_a_body_with_400() {
    let addr = spawn_server(http_server);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(
        got.starts_with(b"HTTP/1.1 400 Bad Request"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn udp_echo_returns_each_datagram_to_its_sender() {
    let addr = spawn_server(udp_server);
    let clients: Vec<_> = (0..8u8)
        .map(|i| {
            thread::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                for j in 0..20u8 {
                    let msg = vec![i; 1 + j as usize * 50];
                    // UDP may drop a datagram: retry a few times before failing.
                    let mut echoed = None;
                    for _ in 0..5 {
                        s.send_to(&msg, addr).unwrap();
                        let mut buf = [0u8; 2048];
                        if let Ok((n, from)) = s.recv_from(&mut buf) {
                            assert_eq!(from, addr);
                            echoed = Some(buf[..n].to_vec());
                            break;
                        }
                    }
                    assert_eq!(
                        echoed.as_deref(),
                        Some(&msg[..]),
                        "datagram {j} of client {i}"
                    );
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

fn chat_server(tx: mpsc::Sender<SocketAddr>) {
    let lp = new_loop();
    let listener =
        loop_net::TcpListener::bind_on(&lp, "127.0.0.1:0".parse().unwrap(), Default::default())
            .unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    let room = std::rc::Rc::new(examples::chat::Room::default());
    let _ = lp.run_until_complete(examples::chat::serve(lp.clone(), listener, room));
}

fn read_line(r: &mut std::io::BufReader<TcpStream>) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(r, &mut line).unwrap();
    line
}

#[test]
fn chat_server_relays_lines_to_everyone_else() {
    let addr = spawn_server(chat_server);
    let mut clients: Vec<(TcpStream, std::io::BufReader<TcpStream>, String)> = (0..3)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let welcome = read_line(&mut r);
            let name = welcome.trim().strip_prefix("welcome ").unwrap().to_string();
            (s, r, name)
        })
        .collect();
    // Everyone is in the room: client 0 speaks, the two others hear it, client 0 does not.
    clients[0].0.write_all(b"hello room\n").unwrap();
    let speaker = clients[0].2.clone();
    for (_, r, _) in clients.iter_mut().skip(1) {
        assert_eq!(read_line(r), format!("{speaker}: hello room\n"));
    }
    clients[2].0.write_all(b"hi\n").unwrap();
    let second = clients[2].2.clone();
    assert_eq!(
        read_line(&mut clients[0].1),
        format!("{second}: hi\n"),
        "the speaker must not get its own line back"
    );
    // A client leaving does not disturb the others.
    let (gone, _, _) = clients.remove(1);
    drop(gone);
    clients[0].0.write_all(b"still here\n").unwrap();
    assert_eq!(
        read_line(&mut clients[1].1),
        format!("{speaker}: still here\n")
    );
}

fn echo_streams_server(tx: mpsc::Sender<SocketAddr>) {
    let lp = new_loop();
    let listener =
        loop_net::TcpListener::bind_on(&lp, "127.0.0.1:0".parse().unwrap(), Default::default())
            .unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    let _ = lp.run_until_complete(examples::echo_streams::serve(lp.clone(), listener));
}

#[test]
fn echo_streams_server_echoes_many_clients() {
    let addr = spawn_server(echo_streams_server);
    let clients: Vec<_> = (0..40u8)
        .map(|i| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let data: Vec<u8> = (0..100_000u32).map(|j| (j as u8).wrapping_mul(i)).collect();
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let writer = thread::spawn(move || {
                    w.write_all(&sent).unwrap();
                    w.shutdown(std::net::Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                writer.join().unwrap();
                assert!(got == data, "client {i} got a different stream back");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}
