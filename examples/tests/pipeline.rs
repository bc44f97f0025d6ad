//! The pipeline example (`examples::pipeline`) on virtual time on every loop kind: every job is
//! processed exactly once, the semaphore's limit and the queue's bound hold, and the last test
//! runs the compiled example program itself.

use std::process::Command;
use std::time::Duration;

use examples::pipeline::{PipelineConfig, run};
use loop_policy::Backend;
use loop_policy::testing::{TestLoop, run_on};

const CFG: PipelineConfig = PipelineConfig {
    jobs: 200,
    workers: 10,
    connections: 3,
    queue_size: 4,
    latency: Duration::from_secs(1),
};

fn check(which: TestLoop) {
    run_on(which, |lp| async move {
        let t0 = lp.time();
        let report = run(CFG).await.expect("the pipeline ran");
        let mut jobs = report.processed.clone();
        jobs.sort_unstable();
        assert_eq!(
            jobs,
            (0..CFG.jobs).collect::<Vec<_>>(),
            "a job was lost or repeated"
        );
        assert_eq!(
            report.max_connections, CFG.connections,
            "the semaphore's limit"
        );
        assert!(report.max_queued <= CFG.queue_size, "the queue's bound");
        // 200 requests of 1 s, 3 at a time: at least 67 s.
        assert!(lp.time() - t0 >= Duration::from_secs(66));
    });
}

#[test]
fn pipeline_on_virtual_time() {
    check(TestLoop::Virtual);
}

#[test]
fn pipeline_on_every_backend() {
    for b in [Backend::Mio, Backend::Polling, Backend::Uring] {
        run_on(TestLoop::Real(b), |_lp| async move {
            let cfg = PipelineConfig {
                jobs: 30,
                latency: Duration::from_millis(1),
                ..CFG
            };
            let report = run(cfg).await.expect("the pipeline ran");
            assert_eq!(report.processed.len(), 30);
            assert!(report.max_connections <= cfg.connections);
        });
    }
}

/// The compiled `pipeline` example, next to this test's executable (cargo builds examples
/// for `cargo test`, but sets no `CARGO_BIN_EXE_` for them).
fn example_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples").join("pipeline");
    path.is_file().then_some(path)
}

#[test]
fn the_example_program_runs() {
    let Some(bin) = example_binary() else {
        eprintln!("skipped: the pipeline example is not built (run `cargo test -p examples`)");
        return;
    };
    let out = Command::new(&bin)
        .env("LOOP_BACKEND", "mio")
        .output()
        .expect("run the pipeline example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("40 jobs by 8 workers"), "{text}");
}
