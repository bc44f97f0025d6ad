//! The whole behaviour suite on a test loop (mio I/O, virtual time): every behaviour of a
//! real loop holds on virtual time too, which is what lets tests swap it in.
loop_conformance::conformance_tests!(loop_mio::new_virtual_event_loop, skip: {
    "timers::huge_delays_accepted_and_cancellable":
        "on virtual time an idle loop jumps to its next timer however far away (that is the point of auto-advance), so the far-future timers this behaviour keeps pending while the loop idles do run; huge delays are still accepted and cancellable (virtual_time tests in loop-policy)",
});
