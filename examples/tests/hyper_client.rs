//! The hyper_server and https_server code (`examples::hyper_http`, `examples::https`) against
//! hyper's own client on the same loop, on mio, polling and uring: 1,000 keep-alive requests
//! and a 1 MiB body echoed byte-exact, over HTTP/1.1 and HTTP/2, in the clear and over TLS.

use std::sync::Arc;

use bytes::Bytes;
use futures_rustls::TlsConnector;
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::{self, ClientConfig, RootCertStore};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use loop_api::{EventLoop, get_running_loop};
use loop_hyper::{HyperIo, LoopExecutor};
use loop_net::TcpStream;
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

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn request(method: Method, path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("host", "localhost")
        .body(Full::new(body.into()))
        .expect("request")
}

async fn read_body(res: Response<Incoming>) -> Vec<u8> {
    assert_eq!(res.status(), 200);
    res.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

/// 1,000 GETs on one HTTP/1.1 connection, then a 1 MiB echo.
async fn http1_session<T>(io: T, proto: &str)
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(HyperIo::new(io))
        .await
        .expect("handshake");
    let conn_task = get_running_loop()
        .unwrap()
        .create_task(async move { conn.await.expect("client connection") })
        .expect("spawn");
    let greeting = format!("hello from hyper on the loop over {proto}\n");
    for _ in 0..1000 {
        let res = sender
            .send_request(request(Method::GET, "/", Vec::new()))
            .await;
        assert_eq!(read_body(res.expect("GET")).await, greeting.as_bytes());
    }
    let sent = body(1 << 20);
    let res = sender
        .send_request(request(Method::POST, "/echo", sent.clone()))
        .await;
    assert!(
        read_body(res.expect("POST")).await == sent,
        "1 MiB echo differs"
    );
    drop(sender);
    conn_task.await.expect("connection task");
}

/// 100 GETs on concurrent HTTP/2 streams, then a 1 MiB echo.
async fn http2_session<T>(io: T)
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + 'static,
{
    let lp = get_running_loop().unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(LoopExecutor, HyperIo::new(io))
        .await
        .expect("h2 handshake");
    lp.create_task(async move {
        let _ = conn.await;
    })
    .expect("spawn");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let mut sender = sender.clone();
            lp.create_task(async move {
                let res = sender
                    .send_request(request(Method::GET, "/", Vec::new()))
                    .await;
                read_body(res.expect("GET")).await
            })
            .expect("spawn")
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.expect("task"),
            b"hello from hyper on the loop over HTTP/2.0\n"
        );
    }
    let mut sender = sender;
    let sent = body(1 << 20);
    let res = sender
        .send_request(request(Method::POST, "/echo", sent.clone()))
        .await;
    assert!(
        read_body(res.expect("POST")).await == sent,
        "1 MiB HTTP/2 echo differs"
    );
}

#[test]
fn hyper_server_code_against_hyper_client_on_the_same_loop() {
    on_every_backend(|lp| {
        let listener = examples::hyper_http::bind(lp, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        lp.create_task(examples::hyper_http::serve(lp.clone(), listener))
            .unwrap();
        lp.run_until_complete(async move {
            http1_session(TcpStream::connect(addr).await.unwrap(), "HTTP/1.1").await;
            http2_session(TcpStream::connect(addr).await.unwrap()).await;
        })
        .expect("run_until_complete");
    });
}

#[test]
fn https_server_code_against_hyper_client_over_tls_on_the_same_loop() {
    on_every_backend(|lp| {
        let (acceptor, cert) = examples::https::self_signed_acceptor().unwrap();
        let listener = examples::hyper_http::bind(lp, "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        lp.create_task(examples::https::serve(lp.clone(), listener, acceptor))
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let connector = |alpn: &[u8]| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut cfg = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            cfg.alpn_protocols = vec![alpn.to_vec()];
            TlsConnector::from(Arc::new(cfg))
        };
        let (h1, h2) = (connector(b"http/1.1"), connector(b"h2"));
        lp.run_until_complete(async move {
            let name = ServerName::try_from("localhost").unwrap();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = h1.connect(name.clone(), tcp).await.expect("TLS (http/1.1)");
            http1_session(tls, "HTTP/1.1").await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = h2.connect(name, tcp).await.expect("TLS (h2)");
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
            http2_session(tls).await;
        })
        .expect("run_until_complete");
    });
}
