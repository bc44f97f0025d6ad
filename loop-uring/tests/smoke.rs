//! Quick smoke tests of the mio loop (the full suite is in tests/conformance.rs).
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[test]
fn call_soon_and_sleep() {
    let lp = loop_uring::new_event_loop().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    lp.call_soon(move || l2.borrow_mut().push(1)).unwrap();
    let l3 = log.clone();
    let out = lp
        .run_until_complete(async move {
            loop_api::sleep(Duration::from_millis(5)).await;
            l3.borrow_mut().push(2);
            7
        })
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(*log.borrow(), vec![1, 2]);
    lp.close().unwrap();
}

#[test]
fn echo_roundtrip() {
    let lp = loop_uring::new_event_loop().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lp2 = lp.clone();
    let got = lp
        .run_until_complete(async move {
            let server = lp2
                .create_task({
                    let lp = lp2.clone();
                    async move {
                        let (s, _) = lp.sock_accept(&listener).await.unwrap();
                        let (r, buf) = lp.sock_recv(&s, Vec::with_capacity(100)).await;
                        r.unwrap();
                        let (r, _) = lp.sock_sendall(&s, buf).await;
                        r.unwrap();
                    }
                })
                .unwrap();
            let c = lp2.sock_connect(addr).await.unwrap();
            let (r, _) = lp2.sock_sendall(&c, b"hello".to_vec()).await;
            r.unwrap();
            let (r, buf) = lp2.sock_recv(&c, Vec::with_capacity(100)).await;
            r.unwrap();
            server.await.unwrap();
            buf
        })
        .unwrap();
    assert_eq!(got, b"hello");
    lp.close().unwrap();
}

#[test]
fn threadsafe_wakes_blocked_loop() {
    let lp = loop_uring::new_event_loop().unwrap();
    let h = lp.handle();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        h.call_soon_threadsafe(|| {}).unwrap();
        h.stop();
    });
    lp.run_forever().unwrap();
    t.join().unwrap();
    lp.close().unwrap();
}
