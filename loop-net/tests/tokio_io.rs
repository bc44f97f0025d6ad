//! With the cargo feature `tokio-io`, the streams implement tokio's I/O traits too (no tokio
//! runtime is started: the loop runs the futures), on every backend.
#![cfg(feature = "tokio-io")]

use loop_net::{TcpListener, TcpStream, UnixStream};
use loop_policy::Backend;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn on_every_backend(test: fn(&loop_api::EventLoop)) {
    for backend in [Backend::Mio, Backend::Polling, Backend::Uring] {
        if let Some(why) = backend.why_unavailable() {
            eprintln!("skipped on {backend}: {why}");
            continue;
        }
        let lp = backend.new_event_loop().expect("new_event_loop");
        test(&lp);
        lp.close().expect("close");
    }
}

#[test]
fn tokio_traits_move_bytes_lines_and_eof() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
            let mut client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .expect("connect");
            let (server, _) = listener.accept().await.expect("accept");
            let data = pattern(1 << 20);
            let sent = data.clone();
            let lp = loop_api::get_running_loop().unwrap();
            let writer = lp
                .create_task(async move {
                    client.write_all(b"first line\n").await.expect("write_all");
                    client.write_all(&sent).await.expect("write_all");
                    // The inherent `shutdown(Shutdown)` (std's) comes first: name the trait's.
                    AsyncWriteExt::shutdown(&mut client)
                        .await
                        .expect("shutdown");
                })
                .expect("create_task");
            let mut server = tokio::io::BufReader::new(server);
            let mut line = String::new();
            server.read_line(&mut line).await.expect("read_line");
            assert_eq!(line, "first line\n");
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.expect("read_to_end");
            assert!(got == data, "1 MiB through tokio's traits differs");
            writer.await.expect("writer");
        })
        .expect("run_until_complete");
    });
}

#[test]
fn tokio_traits_on_unix_halves_and_write_after_shutdown() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let lp = loop_api::get_running_loop().unwrap();
            let (a, b) = UnixStream::pair_on(&lp).expect("pair");
            let (mut ar, mut aw) = a.into_split();
            let (mut br, mut bw) = b.into_split();
            aw.write_all(b"ping").await.expect("write");
            aw.flush().await.expect("flush");
            let mut buf = [0u8; 4];
            br.read_exact(&mut buf).await.expect("read_exact");
            assert_eq!(&buf, b"ping");
            bw.write_all(b"pong").await.expect("write");
            bw.shutdown().await.expect("shutdown");
            let err = bw.write_all(b"x").await.expect_err("write after shutdown");
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
            let mut rest = Vec::new();
            ar.read_to_end(&mut rest).await.expect("read_to_end");
            assert_eq!(rest, b"pong");
        })
        .expect("run_until_complete");
    });
}

#[test]
fn tokio_traits_on_the_loops_pipes() {
    on_every_backend(|lp| {
        lp.run_until_complete(async {
            let lp = loop_api::get_running_loop().unwrap();
            let (r, w) = std::io::pipe().expect("pipe");
            let reader = lp.connect_read_pipe(r.into()).expect("read end");
            let mut writer = lp.connect_write_pipe(w.into()).expect("write end");
            let data = pattern(300_000);
            let sent = data.clone();
            let task = lp
                .create_task(async move {
                    writer.write_all(b"head\n").await.expect("write");
                    writer.write_all(&sent).await.expect("write");
                    AsyncWriteExt::shutdown(&mut writer).await.expect("close");
                })
                .expect("create_task");
            let mut reader = tokio::io::BufReader::new(reader);
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("read_line");
            assert_eq!(line, "head\n");
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.expect("read_to_end");
            assert!(
                got == data,
                "the pipe's bytes through tokio's traits differ"
            );
            task.await.expect("writer");
        })
        .expect("run_until_complete");
    });
}
