//! A chat server: `cargo run --example chat_server -- 127.0.0.1:7777`, then connect with
//! several `nc 127.0.0.1 7777` and type lines: each line goes to everyone else. Each client
//! has a reader task and a writer task on the two halves of its connection.

use std::net::SocketAddr;
use std::rc::Rc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7777".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    let listener = loop_net::TcpListener::bind_on(&lp, addr, Default::default())?;
    println!(
        "chat on {} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let room = Rc::new(examples::chat::Room::default());
    lp.run_until_complete(examples::chat::serve(lp.clone(), listener, room))??;
    Ok(())
}
