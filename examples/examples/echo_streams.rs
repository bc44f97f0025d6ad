//! The echo server again, on `loop-net` streams instead of the low-level `sock_*` calls:
//! `cargo run --example echo_streams -- 127.0.0.1:8888`. The backend comes from `LOOP_BACKEND`.

use std::net::SocketAddr;

use loop_net::{TcpListener, TcpStream};

async fn echo(conn: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let (n, b) = conn.read(buf).await;
        if n? == 0 {
            return Ok(());
        }
        let (sent, b) = conn.write_all(b).await;
        sent?;
        buf = b;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8888".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    let listener = TcpListener::bind_on(&lp, addr, Default::default())?;
    println!(
        "echo (streams) on {} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let lp2 = lp.clone();
    lp.run_until_complete(async move {
        loop {
            match listener.accept().await {
                Ok((conn, _)) => {
                    lp2.create_task(async move {
                        if let Err(e) = echo(conn).await {
                            eprintln!("connection ended: {e}");
                        }
                    })?;
                }
                Err(e) => eprintln!("accept failed: {e}"),
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), loop_api::LoopError>(())
    })??;
    Ok(())
}
