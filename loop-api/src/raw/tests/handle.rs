//! The callback handle's counting and state rules.

use std::cell::Cell;
use std::rc::Rc;

use crate::raw::Handle;

#[test]
fn runs_once_and_reports_state() {
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    let h = Handle::new(move || n2.set(n2.get() + 1));
    let twin = h.clone();
    assert!(h.pending() && !h.cancelled());
    h.run();
    twin.run();
    assert_eq!(n.get(), 1);
    assert!(!h.cancelled() && !h.pending());
    h.cancel();
    assert!(!twin.cancelled(), "cancel after the run does nothing");
    drop(h);
    drop(twin);
    assert_eq!(Rc::strong_count(&n), 1, "the callback was consumed");
}

#[test]
fn cancel_drops_the_callback_at_once() {
    let n = Rc::new(());
    let n2 = n.clone();
    let h = Handle::new(move || drop(n2));
    let twin = h.clone();
    twin.cancel();
    assert!(h.cancelled());
    assert_eq!(Rc::strong_count(&n), 1);
    h.run();
    assert!(h.cancelled());
}

#[test]
fn dropping_the_last_clone_drops_a_pending_callback() {
    let n = Rc::new(());
    let n2 = n.clone();
    let h = Handle::new(move || drop(n2));
    drop(h.clone());
    assert_eq!(Rc::strong_count(&n), 2);
    drop(h);
    assert_eq!(Rc::strong_count(&n), 1);
}

#[test]
fn a_callback_may_drop_and_cancel_its_own_handle() {
    let slot: Rc<Cell<Option<Handle>>> = Rc::new(Cell::new(None));
    let s2 = slot.clone();
    let h = Handle::new(move || {
        let own = s2.take().expect("own handle");
        own.cancel();
        assert!(!own.cancelled());
        drop(own);
    });
    slot.set(Some(h.clone()));
    h.run();
    assert!(!h.cancelled());
    // A pending callback that owns its own handle: dropping the outside reference leaves
    // the cycle (as an `Rc` cycle would); cancelling breaks it.
    let slot2: Rc<Cell<Option<Handle>>> = Rc::new(Cell::new(None));
    let s3 = slot2.clone();
    let h2 = Handle::new(move || drop(s3));
    slot2.set(Some(h2.clone()));
    h2.cancel();
    assert_eq!(Rc::strong_count(&slot2), 1);
}

#[test]
fn run_once_frees_a_lone_handle_first_and_respects_clones() {
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    Handle::new(move || n2.set(n2.get() + 1)).run_once();
    assert_eq!((n.get(), Rc::strong_count(&n)), (1, 1));
    let n3 = n.clone();
    let h = Handle::new(move || n3.set(n3.get() + 1));
    let twin = h.clone();
    h.run_once();
    assert!(!twin.pending() && !twin.cancelled());
    let n4 = n.clone();
    let h = Handle::new(move || n4.set(n4.get() + 1));
    h.cancel();
    h.run_once();
    assert_eq!((n.get(), Rc::strong_count(&n)), (2, 1));
}

#[test]
fn zero_sized_and_overaligned_callbacks() {
    let h = Handle::new(|| {});
    h.run();
    #[repr(align(64))]
    struct Big([u8; 64]);
    let big = Big([7; 64]);
    let out = Rc::new(Cell::new(0u8));
    let o2 = out.clone();
    let h = Handle::new(move || o2.set(big.0[63]));
    h.run();
    assert_eq!(out.get(), 7);
}
