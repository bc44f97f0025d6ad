//! The whole behaviour suite on the io_uring backend.
loop_conformance::conformance_tests!(loop_uring::new_event_loop);
