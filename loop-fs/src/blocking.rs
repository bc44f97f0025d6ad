//! File I/O on the loop's executor: the blocking system call on one of its threads, for loops
//! that do not run file operations natively (readiness backends, the virtual-time loop).

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use loop_api::{BufResult, EventLoop, TaskError};

/// Runs `job` on `lp`'s executor and gives its result.
///
/// # Errors
/// The job's; or the executor's failure (the loop closed, the job panicked) as `Other`.
pub(crate) async fn run<T: Send + 'static>(
    lp: &EventLoop,
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match lp.run_in_executor(job).await {
        Ok(res) => res,
        Err(e) => Err(executor_error(&e)),
    }
}

fn executor_error(e: &TaskError) -> io::Error {
    io::Error::other(format!(
        "loop_fs: the file operation did not run on the loop's executor ({e}); \
         is the loop closed or its executor shut down?"
    ))
}

/// Runs `f` again while it fails with EINTR (io_uring's path retries it too).
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Runs a job that gives its buffer back; the buffer is lost only if the job never ran.
async fn run_buf<T: Send + 'static>(
    lp: &EventLoop,
    job: impl FnOnce() -> BufResult<T> + Send + 'static,
) -> BufResult<T> {
    match lp.run_in_executor(job).await {
        Ok(out) => out,
        Err(e) => (Err(executor_error(&e)), Vec::new()),
    }
}

/// pread(2) into `buf`'s spare capacity (its length grows by the count).
pub(crate) async fn read_at(
    lp: &EventLoop,
    file: Arc<fs::File>,
    mut buf: Vec<u8>,
    offset: u64,
) -> BufResult<usize> {
    run_buf(lp, move || {
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let res = retry(|| file.read_at(&mut buf[start..], offset));
        buf.truncate(start + res.as_ref().map_or(0, |n| *n));
        (res, buf)
    })
    .await
}

/// pwrite(2) of `buf` (once: the count may be partial).
pub(crate) async fn write_at(
    lp: &EventLoop,
    file: Arc<fs::File>,
    buf: Vec<u8>,
    offset: u64,
) -> BufResult<usize> {
    run_buf(lp, move || {
        let res = retry(|| file.write_at(&buf, offset));
        (res, buf)
    })
    .await
}

/// pwrite(2) until every byte of `buf` is written.
pub(crate) async fn write_all_at(
    lp: &EventLoop,
    file: Arc<fs::File>,
    buf: Vec<u8>,
    offset: u64,
) -> BufResult<()> {
    run_buf(lp, move || {
        let res = file.write_all_at(&buf, offset);
        (res, buf)
    })
    .await
}

/// Reads a whole file.
pub(crate) async fn read(lp: &EventLoop, path: PathBuf) -> io::Result<Vec<u8>> {
    run(lp, move || fs::read(path)).await
}

/// Creates (or truncates) a file, writes `data` and closes it, reporting close's error.
pub(crate) async fn write(lp: &EventLoop, path: PathBuf, data: Vec<u8>) -> io::Result<()> {
    run(lp, move || {
        let mut file = fs::File::create(path)?;
        file.write_all(&data)?;
        loop_api::close_fd(file.into())
    })
    .await
}
