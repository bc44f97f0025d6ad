//! The whole behaviour suite on a test loop (mio I/O, virtual time): every behaviour of a
//! real loop holds on virtual time too, which is what lets tests swap it in.
loop_conformance::conformance_tests!(virtual_event_loop, skip: {
    "timers::huge_delays_accepted_and_cancellable":
        "on virtual time an idle loop jumps to its next timer however far away (that is the point of auto-advance), so the far-future timers this behaviour keeps pending while the loop idles do run; huge delays are still accepted and cancellable (virtual_time tests in loop-policy)",
});

/// A test loop on mio: the one constructor with a virtual clock in its config.
fn virtual_event_loop() -> Result<loop_api::EventLoop, loop_api::LoopError> {
    loop_mio::new_event_loop_with(loop_mio::LoopConfig::virtual_time())
}
