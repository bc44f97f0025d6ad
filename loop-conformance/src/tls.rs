//! TLS (rustls through `futures-rustls`) over loop-net's streams: the ecosystem's TLS runs on
//! the streams' `futures_io` traits unchanged, on every backend.

use std::sync::Arc;

use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use loop_api::get_running_loop;
use loop_net::{TcpListener, TcpStream};

use crate::Factory;
use crate::util::{block_on, close, new_loop, pattern};

/// A self-signed certificate for `localhost` (made now, with rcgen), and the server and
/// client configurations that use and trust it.
///
/// # Panics
/// If rcgen or rustls refuse (they do not for these inputs).
pub fn localhost_tls_configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("make a self-signed certificate");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server certificate");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("trust the certificate");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// A TLS echo of 1 MiB: the client writes while it reads (split halves of the TLS stream),
/// closes (close_notify, then the TCP write side), and gets every byte back in order; the
/// server echoes until the client's close, then closes too.
pub fn tls_echo_of_one_mib(factory: Factory) {
    let lp = new_loop(factory);
    block_on(&lp, async {
        let lp = get_running_loop().expect("running loop");
        let (server_cfg, client_cfg) = localhost_tls_configs();
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = lp
            .create_task(async move {
                let (tcp, _) = listener.accept().await.expect("accept");
                let mut tls = TlsAcceptor::from(server_cfg)
                    .accept(tcp)
                    .await
                    .expect("TLS accept");
                let mut buf = vec![0u8; 32 * 1024];
                let mut echoed = 0usize;
                loop {
                    let n = tls.read(&mut buf).await.expect("server read");
                    if n == 0 {
                        break;
                    }
                    tls.write_all(&buf[..n]).await.expect("server write");
                    echoed += n;
                }
                tls.close().await.expect("server close");
                echoed
            })
            .expect("spawn server");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = TlsConnector::from(client_cfg)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let (mut rd, mut wr) = tls.split();
        let data = pattern(1 << 20, 31);
        let sent = data.clone();
        let writer = lp
            .create_task(async move {
                for chunk in sent.chunks(50_000) {
                    wr.write_all(chunk).await.expect("client write");
                }
                wr.close().await.expect("client close");
            })
            .expect("spawn writer");
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.expect("client read_to_end");
        writer.await.expect("writer");
        assert_eq!(server.await.expect("server"), data.len(), "server echoed");
        assert_eq!(got.len(), data.len(), "echoed length");
        assert!(got == data, "the TLS echo differs from what was sent");
    });
    close(&lp);
}
