//! The demo runs, and the package really links one backend crate.

use std::process::Command;
use std::time::Duration;

#[test]
fn demo_runs_on_the_polling_backend() {
    let report = examples_polling_only::run_demo().unwrap();
    assert_eq!(report.backend, "polling");
    assert!(!report.mechanism.is_empty());
    assert!(report.slept >= Duration::from_millis(20), "{report:?}");
    assert_eq!(report.echoed, b"hello, one backend");
}

#[test]
fn the_binary_prints_its_backend() {
    let out = Command::new(env!("CARGO_BIN_EXE_examples-polling-only"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("backend: polling"), "{stdout}");
    assert!(stdout.contains("echoed: hello, one backend"), "{stdout}");
}

/// `cargo tree` of this package names neither the policy nor another backend's OS crate.
#[test]
fn links_no_policy_and_no_other_backend() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none"])
        .args(["--package", env!("CARGO_PKG_NAME")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains(&"loop-polling"), "{tree}");
    for banned in ["loop-policy", "loop-mio", "loop-uring", "mio", "io-uring"] {
        assert!(!crates.contains(&banned), "{banned} is linked:\n{tree}");
    }
}
