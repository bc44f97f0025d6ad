//! The HTTPS server of `cargo run --example https_server`: the hyper server of
//! [`hyper_http`](crate::hyper_http) behind TLS (rustls through `futures-rustls`, over
//! loop-net's streams), HTTP/2 or HTTP/1.1 as ALPN agrees, with a self-signed certificate for
//! `localhost` made at start-up with `rcgen` (asyncio's `start_tls`, done by the library that
//! already speaks `futures_io`).

use std::io;
use std::sync::Arc;

use futures_rustls::TlsAcceptor;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls::{self, ServerConfig};
use loop_api::EventLoop;
use loop_hyper::{HyperIo, LoopExecutor, LoopTimer};
use loop_net::{TcpListener, TcpStream};

/// A TLS acceptor with a fresh self-signed certificate for `localhost` and `127.0.0.1`,
/// offering HTTP/2 then HTTP/1.1 by ALPN; and the certificate (for a client to trust).
///
/// # Errors
/// rcgen or rustls refusing (they do not for these inputs).
pub fn self_signed_acceptor() -> io::Result<(TlsAcceptor, CertificateDer<'static>)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), made.cert.der().clone()))
}

/// Serves one connection: the TLS handshake, then HTTP/2 if ALPN chose `h2`, else HTTP/1.1.
///
/// # Errors
/// The handshake's error, or hyper's.
pub async fn serve_connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> Result<(), Box<dyn std::error::Error>> {
    let _ = stream.set_nodelay(true);
    let tls = acceptor.accept(stream).await?;
    let http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = HyperIo::new(tls);
    let svc = hyper::service::service_fn(crate::hyper_http::handle);
    if http2 {
        hyper::server::conn::http2::Builder::new(LoopExecutor)
            .timer(LoopTimer::default())
            .serve_connection(io, svc)
            .await?;
    } else {
        hyper::server::conn::http1::Builder::new()
            .timer(LoopTimer::default())
            .serve_connection(io, svc)
            .await?;
    }
    Ok(())
}

/// Accepts connections on `listener` forever, one task each.
///
/// # Errors
/// An accept failing for a reason other than one connection's.
pub async fn serve(lp: EventLoop, listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if loop_net::is_retryable_accept_error(&e) => continue,
            Err(e) => return Err(e),
        };
        let acceptor = acceptor.clone();
        lp.create_task(async move {
            if let Err(e) = serve_connection(acceptor, stream).await {
                eprintln!("https_server: a connection ended with: {e}");
            }
        })
        .map_err(io::Error::other)?;
    }
}
