//! The whole behaviour suite on the io_uring backend (skipped, saying so, when `LOOP_URING=off`
//! turns io_uring off for the run).
loop_conformance::conformance_tests!(
    loop_uring::new_event_loop,
    skip_all_if: loop_uring::disabled_by_env,
);
