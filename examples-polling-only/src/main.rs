//! `cargo run -p examples-polling-only`: a timer and a TCP echo round trip on a loop from
//! `loop_polling::new_event_loop()`, in a program that links no other backend and no policy.

fn main() -> Result<(), loop_api::LoopError> {
    let report = examples_polling_only::run_demo()?;
    println!("backend: {} ({})", report.backend, report.mechanism);
    println!("slept: {:?}", report.slept);
    println!("echoed: {}", String::from_utf8_lossy(&report.echoed));
    Ok(())
}
