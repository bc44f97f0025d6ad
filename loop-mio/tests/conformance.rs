//! The whole behaviour suite on the mio backend.
loop_conformance::conformance_tests!(loop_mio::new_event_loop);
