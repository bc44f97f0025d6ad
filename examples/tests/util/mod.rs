//! What the tests of the example programs share.

use std::path::PathBuf;

/// The compiled example `name`, next to the test's executable (cargo builds the examples for
/// `cargo test`, but sets no `CARGO_BIN_EXE_` for them). `None` when it is not built.
pub fn example_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join(name);
    path.is_file().then_some(path)
}
