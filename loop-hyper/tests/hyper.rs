//! hyper servers and clients on the same loop, on mio, polling and io_uring: 1,000 keep-alive
//! requests on one connection, 1 MiB bodies byte-exact both ways, HTTP/2 with LoopExecutor,
//! and LoopTimer (hyper's header-read timeout; sleeps never early, cancelled when dropped,
//! on virtual time too).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use loop_api::{EventLoop, get_running_loop};
use loop_hyper::{HyperIo, LoopExecutor, LoopSleep, LoopTimer};
use loop_net::{TcpListener, TcpStream};
use loop_policy::Backend;

fn on_every_backend(test: impl Fn(&EventLoop)) {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if let Some(why) = backend.why_unavailable() {
            println!("skipped on {backend}: {why}");
            continue;
        }
        let lp = backend.new_event_loop().expect("new_event_loop");
        test(&lp);
        lp.close().expect("close");
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

/// GET /n answers "n"; GET /big answers 1 MiB; POST echoes the body reversed.
async fn handler(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if req.method() == Method::POST {
        let mut body = req.into_body().collect().await?.to_bytes().to_vec();
        body.reverse();
        return Ok(Response::new(Full::new(body.into())));
    }
    let path = req.uri().path().trim_start_matches('/').to_string();
    let body = if path == "big" {
        pattern(1 << 20, 7)
    } else {
        path.into_bytes()
    };
    Ok(Response::new(Full::new(body.into())))
}

/// A server task accepting connections (HTTP/1.1 or HTTP/2); counts them.
fn serve(http2: bool) -> (SocketAddr, Rc<Cell<usize>>) {
    let lp = get_running_loop().expect("running loop");
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = Rc::new(Cell::new(0));
    let counted = conns.clone();
    let accept_loop = async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            counted.set(counted.get() + 1);
            let io = HyperIo::new(stream);
            let svc = hyper::service::service_fn(handler);
            let lp = get_running_loop().expect("running loop");
            if http2 {
                let conn = hyper::server::conn::http2::Builder::new(LoopExecutor)
                    .timer(LoopTimer::default())
                    .serve_connection(io, svc);
                lp.create_task(async move { conn.await.expect("h2 connection") })
                    .expect("spawn");
            } else {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(LoopTimer::default())
                    .serve_connection(io, svc);
                lp.create_task(async move { conn.await.expect("h1 connection") })
                    .expect("spawn");
            }
        }
    };
    lp.create_task(accept_loop).expect("spawn server");
    (addr, conns)
}

fn request(method: Method, path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .header("host", "localhost")
        .body(Full::new(body.into()))
        .expect("request")
}

async fn body_of(res: Response<Incoming>) -> Vec<u8> {
    assert_eq!(res.status(), 200);
    res.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

#[test]
fn http1_thousand_keep_alive_requests_and_mib_bodies() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let (addr, conns) = serve(false);
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(stream))
                .await
                .expect("handshake");
            get_running_loop()
                .unwrap()
                .create_task(async move { conn.await.expect("client connection") })
                .expect("spawn");
            for i in 0..1000 {
                let res = sender
                    .send_request(request(Method::GET, &format!("/{i}"), Vec::new()))
                    .await
                    .expect("send_request");
                assert_eq!(body_of(res).await, i.to_string().into_bytes());
            }
            let sent = pattern(1 << 20, 3);
            let res = sender
                .send_request(request(Method::POST, "/echo", sent.clone()))
                .await
                .expect("POST");
            let mut back = body_of(res).await;
            back.reverse();
            assert!(back == sent, "the 1 MiB request body came back different");
            let res = sender
                .send_request(request(Method::GET, "/big", Vec::new()))
                .await
                .expect("GET /big");
            assert!(
                body_of(res).await == pattern(1 << 20, 7),
                "1 MiB response differs"
            );
            assert_eq!(
                conns.get(),
                1,
                "keep-alive: every request on one connection"
            );
        })
        .expect("run_until_complete");
    });
}

#[test]
fn http2_with_loop_executor_concurrent_streams_and_mib_bodies() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let lp = get_running_loop().unwrap();
            let (addr, conns) = serve(true);
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (sender, conn) = hyper::client::conn::http2::Builder::new(LoopExecutor)
                .timer(LoopTimer::default())
                .handshake(HyperIo::new(stream))
                .await
                .expect("h2 handshake");
            lp.create_task(async move { conn.await.expect("client connection") })
                .expect("spawn");
            let mut tasks = Vec::new();
            for i in 0..64 {
                let mut sender = sender.clone();
                tasks.push(
                    lp.create_task(async move {
                        let res = sender
                            .send_request(request(Method::GET, &format!("/{i}"), Vec::new()))
                            .await
                            .expect("send_request");
                        assert_eq!(body_of(res).await, i.to_string().into_bytes());
                    })
                    .expect("spawn"),
                );
            }
            for t in tasks {
                t.await.expect("request task");
            }
            let mut sender = sender;
            let sent = pattern(1 << 20, 5);
            let res = sender
                .send_request(request(Method::POST, "/echo", sent.clone()))
                .await
                .expect("POST");
            let mut back = body_of(res).await;
            back.reverse();
            assert!(back == sent, "the 1 MiB HTTP/2 body came back different");
            assert_eq!(conns.get(), 1, "every stream on one connection");
        })
        .expect("run_until_complete");
    });
}

/// hyper's header-read timeout runs on LoopTimer: a client that sends nothing is
/// disconnected.
#[test]
fn loop_timer_drives_hyper_header_read_timeout() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let lp = get_running_loop().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            let addr = listener.local_addr().unwrap();
            let server = lp
                .create_task(async move {
                    let (stream, _) = listener.accept().await.expect("accept");
                    hyper::server::conn::http1::Builder::new()
                        .timer(LoopTimer::default())
                        .header_read_timeout(Duration::from_millis(50))
                        .serve_connection(HyperIo::new(stream), hyper::service::service_fn(handler))
                        .await
                })
                .expect("spawn");
            // Before the connect: the server may accept (and start its clock) first.
            let start = lp.time();
            let silent = TcpStream::connect(addr).await.expect("connect");
            let (n, _) = silent.recv(Vec::with_capacity(64)).await;
            assert_eq!(
                n.expect("recv"),
                0,
                "the server closes the silent connection"
            );
            let elapsed = lp.time() - start;
            let res = server.await.expect("server task");
            assert!(
                elapsed >= Duration::from_millis(50),
                "closed early: {elapsed:?} {res:?}"
            );
            assert!(res.is_err(), "hyper reports the header timeout");
        })
        .expect("run_until_complete");
    });
}

/// A LoopTimer sleep is Send + Sync, never fires early, and dropping one cancels its timer
/// on the loop; on a virtual-time loop an hour passes at once.
#[test]
fn loop_timer_sleeps_never_early_cancel_on_drop_and_run_on_virtual_time() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    use hyper::rt::Timer;
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let lp = get_running_loop().unwrap();
            let timer = LoopTimer::default();
            let start = timer.now();
            let sleep = timer.sleep_until_deadline(start + Duration::from_millis(20));
            send_sync(&sleep);
            sleep.await;
            assert!(
                lp.time() - start >= Duration::from_millis(20),
                "fired early"
            );
            let dropped = timer.sleep_until_deadline(lp.time() + Duration::from_secs(3600));
            loop_api::sleep(Duration::from_millis(1)).await;
            assert_eq!(
                LoopSleep::armed_on_this_thread(),
                1,
                "the sleep's timer is armed"
            );
            drop(dropped);
            loop_api::sleep(Duration::from_millis(1)).await;
            assert_eq!(
                LoopSleep::armed_on_this_thread(),
                0,
                "dropping cancels the timer"
            );
        })
        .expect("run_until_complete");
    });
    let lp = Backend::Mio.new_virtual_event_loop().expect("virtual loop");
    let timer = LoopTimer::new(&lp);
    let start = lp.time();
    lp.run_until_complete(async move {
        Timer::sleep(&timer, Duration::from_secs(3600)).await;
    })
    .expect("run_until_complete");
    assert!(lp.time() - start >= Duration::from_secs(3600));
    lp.close().expect("close");
}
