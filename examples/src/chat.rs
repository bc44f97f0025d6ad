//! A line-based chat server on split streams: every client gets a reader task (its read
//! half) and a writer task (its write half, fed by a mailbox), so a slow client never holds
//! up the others. A line from one client goes to every other client as `NAME: line`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use loop_api::EventLoop;
use loop_net::{OwnedWriteHalf, TcpListener, TcpStream};

/// The most bytes a client may send without a newline before it is disconnected.
const MAX_LINE: usize = 4096;

/// Lines waiting to be written to one client.
#[derive(Default)]
struct Mailbox {
    lines: RefCell<VecDeque<Rc<[u8]>>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Mailbox {
    fn post(&self, line: Rc<[u8]>) {
        self.lines.borrow_mut().push_back(line);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// The next line, or `None` once closed and empty.
    async fn next(&self) -> Option<Rc<[u8]>> {
        poll_fn(|cx| {
            if let Some(line) = self.lines.borrow_mut().pop_front() {
                return Poll::Ready(Some(line));
            }
            if self.closed.get() {
                return Poll::Ready(None);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Everyone connected, by client number.
#[derive(Default)]
pub struct Room {
    members: RefCell<BTreeMap<u64, Rc<Mailbox>>>,
    next_id: Cell<u64>,
}

impl Room {
    fn join(&self) -> (u64, Rc<Mailbox>) {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let mailbox = Rc::new(Mailbox::default());
        self.members.borrow_mut().insert(id, mailbox.clone());
        (id, mailbox)
    }

    fn leave(&self, id: u64) {
        if let Some(m) = self.members.borrow_mut().remove(&id) {
            m.close();
        }
    }

    fn broadcast(&self, from: u64, line: &[u8]) {
        let mut text = format!("client{from}: ").into_bytes();
        text.extend_from_slice(line);
        let text: Rc<[u8]> = text.into();
        for (id, m) in self.members.borrow().iter() {
            if *id != from {
                m.post(text.clone());
            }
        }
    }

    /// Number of clients connected.
    pub fn len(&self) -> usize {
        self.members.borrow().len()
    }

    /// True when nobody is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("members", &self.len())
            .finish()
    }
}

/// Accepts clients on `listener` forever.
///
/// # Errors
/// An accept error that is not about one connection or a temporary shortage.
pub async fn serve(lp: EventLoop, listener: TcpListener, room: Rc<Room>) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                lp.create_task(client(lp.clone(), conn, room.clone()))?;
            }
            Err(e) if crate::echo::is_retryable_accept_error(&e) => {}
            Err(e) if crate::echo::is_resource_exhaustion(&e) => {
                loop_api::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn writer(wr: OwnedWriteHalf, mailbox: Rc<Mailbox>) {
    while let Some(line) = mailbox.next().await {
        if wr.send_all(line.to_vec()).await.0.is_err() {
            return;
        }
    }
}

/// One client: a writer task drains its mailbox while this task reads its lines.
async fn client(lp: EventLoop, conn: TcpStream, room: Rc<Room>) {
    let (id, mailbox) = room.join();
    let (rd, wr) = conn.into_split();
    mailbox.post(format!("welcome client{id}\n").into_bytes().into());
    let writer = lp.create_task(writer(wr, mailbox));
    let mut pending = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (n, b) = rd.recv(buf).await;
        buf = b;
        match n {
            Ok(0) | Err(_) => break,
            Ok(_) => pending.extend_from_slice(&buf),
        }
        while let Some(end) = pending.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            room.broadcast(id, &line);
        }
        if pending.len() > MAX_LINE {
            break;
        }
    }
    room.leave(id);
    if let Ok(w) = writer {
        let _ = w.await;
    }
}
