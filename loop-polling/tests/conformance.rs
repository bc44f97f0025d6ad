//! The whole behaviour suite on the polling backend (epoll here; poll(2) when built with
//! `RUSTFLAGS="--cfg polling_test_poll_backend"`, as CI does).
loop_conformance::conformance_tests!(loop_polling::new_event_loop);
