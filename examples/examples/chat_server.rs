//! A chat server: `cargo run --example chat_server -- 127.0.0.1:7777`, then connect with
//! several `nc 127.0.0.1 7777` and type lines: each line goes to everyone else. Each client
//! has a reader task and a writer task on the two halves of its connection. Ctrl-C or `kill`
//! (SIGINT/SIGTERM) stops it and closes the loop.

use std::net::SocketAddr;
use std::rc::Rc;

use examples::shutdown::StopOnSignals;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7777".to_string())
        .parse()?;
    let lp = loop_policy::new_event_loop()?;
    // Before the server says it is ready: Ctrl-C or kill from then on closes it cleanly.
    let stop = StopOnSignals::install(&lp)?;
    let listener = loop_net::TcpListener::bind_on(&lp, addr, Default::default())?;
    println!(
        "chat on {} (backend: {})",
        listener.local_addr()?,
        lp.backend_name()
    );
    let room = Rc::new(examples::chat::Room::default());
    let server = examples::chat::serve(lp.clone(), listener, room);
    if let Some(served) = stop.serve("chat_server", server)? {
        served?;
    }
    Ok(())
}
