//! The echo example's server code, compiled into the benchmarks so that they measure exactly
//! what `cargo run --example echo_server` runs. (Included by path, not as a dependency: the
//! `examples` crate is not published, so a packaged `loop-bench` could not depend on it.)

#[path = "../../examples/src/echo.rs"]
pub mod echo;
#[path = "../../examples/src/echo_streams.rs"]
pub mod echo_streams;
#[path = "../../examples/src/http.rs"]
pub mod http;
