//! File I/O through loop-fs: native io_uring operations or blocking calls on the executor,
//! with the same results, errors and drop safety on every backend.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use loop_api::Op;
use loop_fs::{File, OpenOptions};

use crate::Factory;
use crate::util::{block_on, close, new_loop, open_fds, pattern, poll_once};

/// A fresh directory under the system's temporary one, removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "loop-conformance-files-{}-{what}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's directory");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The error's kind and errno, to compare with std's.
fn kind_and_errno(e: &io::Error) -> (io::ErrorKind, Option<i32>) {
    (e.kind(), e.raw_os_error())
}

fn expect_err<T: std::fmt::Debug>(res: io::Result<T>, what: &str) -> io::Error {
    match res {
        Ok(v) => panic!("{what} succeeded ({v:?}); expected an error"),
        Err(e) => e,
    }
}

/// `write` then `read` round-trip 1 MiB byte-exact; `read_at` reads at any offset, up to the
/// buffer's capacity (cleared first, as `sock_recv`), a short count at the end of the file and
/// 0 past it; `write_all_at` writes at offsets, leaving a hole of zeroes; paths may be `&str`,
/// `&Path` or `PathBuf`.
pub fn file_reads_and_writes_round_trip_at_offsets(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("round-trip");
    let data = pattern((1 << 20) + 3, 21);
    let (path, expected) = (dir.join("data"), data.clone());
    block_on(&lp, async move {
        loop_fs::write(&path, data).await.expect("write");
        let as_str = path.to_str().expect("a UTF-8 temporary path");
        assert!(loop_fs::read(as_str).await.expect("read &str") == expected);
        let file = File::open(path.as_path()).await.expect("open &Path");
        let mut buf = b"stale".to_vec();
        buf.reserve_exact(4096);
        let cap = buf.capacity();
        let (n, buf) = file.read_at(buf, 1000).await;
        assert_eq!(n.expect("read_at"), cap.min(expected.len() - 1000));
        assert!(buf[..] == expected[1000..1000 + buf.len()], "read_at 1000");
        let tail = expected.len() as u64 - 10;
        let (n, buf) = file.read_at(Vec::with_capacity(4096), tail).await;
        assert_eq!(
            (n.expect("read_at tail"), &buf[..]),
            (10, &expected[tail as usize..])
        );
        let (n, buf) = file.read_at(buf, expected.len() as u64 + 5).await;
        assert_eq!((n.expect("read_at past the end"), buf.len()), (0, 0));
        file.close().await.expect("close");

        let out = dir.join("offsets");
        let file = File::create(out.clone()).await.expect("create PathBuf");
        let (res, _) = file.write_all_at(vec![1; 3000], 5000).await;
        res.expect("write_all_at 5000");
        let (n, _) = file.write_at(vec![2; 100], 0).await;
        assert_eq!(n.expect("write_at 0"), 100);
        file.sync_all().await.expect("sync_all");
        file.sync_data().await.expect("sync_data");
        assert_eq!(file.metadata().await.expect("metadata").len(), 8000);
        file.close().await.expect("close");
        let mut want = vec![2; 100];
        want.resize(5000, 0);
        want.resize(8000, 1);
        assert!(std::fs::read(&out).expect("std read") == want, "offsets");
    });
    close(&lp);
}

/// Errors are std's, with the same kind and errno on every backend: a missing file
/// (`NotFound`), reading a directory (`EISDIR`), writing a file opened read-only (`EBADF`),
/// `create_new` of an existing file (`AlreadyExists`), options std refuses and a path with a NUL
/// byte (`InvalidInput`), a receive buffer without capacity (`InvalidInput`); outside a running
/// loop a call is an error, never a panic; a raw file `Op` on a loop that does not run file
/// operations is `Unsupported`.
pub fn file_errors_are_std_errors(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("errors");
    let (missing, existing, root) = (dir.join("missing"), dir.join("existing"), dir.0.clone());
    std::fs::write(&existing, b"x").expect("std write");
    match poll_once(loop_fs::read(&existing)) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("no event loop"), "{e}"),
        other => panic!("read outside a loop: {other:?}"),
    }
    let std_errors = [
        std::fs::File::open(&missing).expect_err("std open missing"),
        std::fs::read(&root).expect_err("std read dir"),
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&existing)
            .expect_err("std create_new"),
        std::fs::OpenOptions::new()
            .open(&existing)
            .expect_err("std no access"),
        std::fs::OpenOptions::new()
            .read(true)
            .create(true)
            .truncate(false)
            .open(&existing)
            .expect_err("std create without write"),
        std::fs::remove_file(&missing).expect_err("std remove"),
        std::fs::rename(&missing, &existing).expect_err("std rename"),
        std::fs::metadata(&missing).expect_err("std metadata"),
    ]
    .map(|e| kind_and_errno(&e));
    let lp2 = lp.clone();
    let ours = block_on(&lp, async move {
        let ro = File::open(&existing).await.expect("open");
        let (res, _) = ro.write_at(b"y".to_vec(), 0).await;
        let write_ro = expect_err(res, "write_at on a read-only file");
        assert_eq!(write_ro.raw_os_error(), Some(libc::EBADF), "{write_ro}");
        let (res, _) = ro.read_at(Vec::new(), 0).await;
        let e = expect_err(res, "read_at without capacity");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = expect_err(File::open("nul\0byte").await, "open with a NUL byte");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        if !lp2.runs_file_ops() {
            let (res, _) = lp2
                .run_op(Op::Sync {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&ro),
                    data_only: false,
                })
                .await;
            let e = expect_err(res, "a raw Op::Sync");
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
        }
        [
            expect_err(File::open(&missing).await, "open missing"),
            expect_err(loop_fs::read(&root).await, "read a directory"),
            expect_err(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&existing)
                    .await,
                "create_new of an existing file",
            ),
            expect_err(OpenOptions::new().open(&existing).await, "no access mode"),
            expect_err(
                OpenOptions::new()
                    .read(true)
                    .create(true)
                    .open(&existing)
                    .await,
                "create without write access",
            ),
            expect_err(loop_fs::remove_file(&missing).await, "remove missing"),
            expect_err(loop_fs::rename(&missing, &existing).await, "rename missing"),
            expect_err(loop_fs::metadata(&missing).await, "metadata missing"),
        ]
        .map(|e| kind_and_errno(&e))
    });
    assert_eq!(ours, std_errors);
    assert_eq!(ours[1].1, Some(libc::EISDIR), "reading a directory");
    assert_eq!(ours[2].0, io::ErrorKind::AlreadyExists);
    close(&lp);
}

/// A file opened with `append` gets every write at its end whatever the offset; `create_new`
/// makes a new file, and `truncate` empties an existing one.
pub fn file_append_create_new_and_truncate(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("append");
    let path = dir.join("log");
    let p = path.clone();
    block_on(&lp, async move {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true).mode(0o640);
        let file = opts.open(&p).await.expect("create_new");
        let (res, _) = file.write_all_at(b"first ".to_vec(), 0).await;
        res.expect("write");
        file.close().await.expect("close");
        let file = OpenOptions::new()
            .append(true)
            .open(&p)
            .await
            .expect("append");
        for part in [&b"second "[..], b"third"] {
            let (res, _) = file.write_all_at(part.to_vec(), 0).await;
            res.expect("append write");
        }
        file.close().await.expect("close");
        assert_eq!(std::fs::read(&p).expect("std read"), b"first second third");
        let mode = loop_fs::metadata(&p).await.expect("metadata").permissions();
        assert_eq!(
            mode.mode() & 0o077 & !0o640,
            0,
            "mode 0o640 (before the umask)"
        );
        let file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .await
            .expect("truncate");
        assert_eq!(file.metadata().await.expect("metadata").len(), 0);
    });
    assert_eq!(std::fs::read(&path).expect("std read").len(), 0);
    close(&lp);
}

/// `metadata` of a file, a directory and a symbolic link (followed) agrees with std's: size,
/// type and modification time; `File::metadata` of an open file too.
pub fn file_metadata_agrees_with_std(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("metadata");
    let (file, link) = (dir.join("file"), dir.join("link"));
    std::fs::write(&file, vec![3; 12345]).expect("std write");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    let std_meta = std::fs::metadata(&file).expect("std metadata");
    let root = dir.0.clone();
    let (m, via_link, d, of_file) = block_on(&lp, async move {
        let f = File::open(&file).await.expect("open");
        (
            loop_fs::metadata(&file).await.expect("metadata"),
            loop_fs::metadata(&link).await.expect("metadata of a link"),
            loop_fs::metadata(&root).await.expect("metadata of a dir"),
            f.metadata().await.expect("File::metadata"),
        )
    });
    for (what, m) in [("path", &m), ("link", &via_link), ("open file", &of_file)] {
        assert_eq!(m.len(), 12345, "{what}");
        assert!(m.is_file() && !m.is_dir() && !m.is_symlink(), "{what}");
        assert_eq!(
            m.modified().expect("modified"),
            std_meta.modified().expect("std modified"),
            "{what}"
        );
    }
    assert!(d.is_dir() && !d.is_file(), "a directory");
    close(&lp);
}

/// `create_dir_all` makes nested directories (again: no error), fails under a file as std
/// does; `rename` moves a file into them, `remove_file` removes it.
pub fn file_rename_remove_and_create_dir_all(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("dirs");
    let (nested, file) = (dir.join("a/b/c"), dir.join("file"));
    std::fs::write(&file, b"moved").expect("std write");
    let std_under_file = std::fs::create_dir_all(file.join("x")).expect_err("std under a file");
    let (n, f) = (nested.clone(), file.clone());
    let under_file = block_on(&lp, async move {
        loop_fs::create_dir_all(&n).await.expect("create_dir_all");
        loop_fs::create_dir_all(&n)
            .await
            .expect("create_dir_all again");
        let e = expect_err(loop_fs::create_dir_all(f.join("x")).await, "under a file");
        let to = n.join("file");
        loop_fs::rename(&f, &to).await.expect("rename");
        assert_eq!(loop_fs::read(&to).await.expect("read moved"), b"moved");
        loop_fs::remove_file(&to).await.expect("remove_file");
        e
    });
    assert_eq!(kind_and_errno(&under_file), kind_and_errno(&std_under_file));
    assert!(nested.is_dir(), "create_dir_all made the directories");
    assert!(
        !file.exists() && !nested.join("file").exists(),
        "moved, then removed"
    );
    close(&lp);
}

/// Waits (on the loop, at most 10 s of real time) until no descriptor of `before` is missing
/// and none is new; gives what is open at the end.
async fn settle_fds(before: &std::collections::BTreeSet<i32>) -> std::collections::BTreeSet<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds();
        if now == *before || Instant::now() > deadline {
            return now;
        }
        loop_api::sleep(Duration::from_millis(1)).await;
    }
}

/// An `open` whose future is dropped while it is in flight leaks no descriptor: the loop
/// closes the file it opened (on io_uring when the `OPENAT` completes after the drop).
pub fn dropped_file_open_leaks_no_fd(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("dropped-open");
    let path = dir.join("file");
    std::fs::write(&path, b"x").expect("std write");
    let (before, after) = block_on(&lp, async move {
        // Warm-up: the executor's threads, the loop's lazily made descriptors.
        File::open(&path)
            .await
            .expect("open")
            .close()
            .await
            .expect("close");
        let before = open_fds();
        for _ in 0..50 {
            let _ = poll_once(File::open(&path));
            let _ = poll_once(loop_fs::read(&path));
        }
        (before.clone(), settle_fds(&before).await)
    });
    let leaked: Vec<_> = after.difference(&before).collect();
    assert!(leaked.is_empty(), "dropped opens leaked {leaked:?}");
    close(&lp);
}

/// Reads and writes whose futures are dropped in flight never touch freed memory and lose
/// no write that was reported done: afterwards every 4 KiB block holds its old bytes or the
/// dropped write's, never anything else, and an awaited write before them is intact.
pub fn dropped_file_reads_and_writes_are_safe(factory: Factory) {
    let lp = new_loop(factory);
    let dir = TempDir::new("dropped-rw");
    let path = dir.join("file");
    let old = pattern(64 * 4096, 5);
    std::fs::write(&path, &old).expect("std write");
    let p = path.clone();
    block_on(&lp, async move {
        let file = open_rw(&p).await;
        let (res, _) = file.write_all_at(vec![0xEE; 4096], 0).await;
        res.expect("the awaited write");
        for block in 1..64u64 {
            let _ = poll_once(file.read_at(Vec::with_capacity(4096), block * 4096));
            let _ = poll_once(file.write_all_at(vec![block as u8; 4096], block * 4096));
        }
        // Let the dropped operations finish (on the executor, or the kernel's completions).
        for _ in 0..20 {
            loop_api::sleep(Duration::from_millis(1)).await;
        }
        let (n, buf) = file.read_at(Vec::with_capacity(4096), 4096).await;
        assert_eq!(n.expect("read after the drops"), 4096);
        drop(buf);
        file.close().await.expect("close");
    });
    // The jobs of dropped writes on an executor may still be finishing: wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = std::fs::read(&path).expect("std read");
        let ok = (1..64).all(|b| {
            let block = &now[b * 4096..(b + 1) * 4096];
            block == &old[b * 4096..(b + 1) * 4096] || block.iter().all(|&x| x == b as u8)
        });
        if ok || Instant::now() > deadline {
            assert!(
                ok,
                "a block holds neither its old bytes nor the dropped write's"
            );
            assert!(now[..4096].iter().all(|&x| x == 0xEE), "the awaited write");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    close(&lp);
}

/// Opens `path` for reading and writing.
async fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .await
        .expect("open read-write")
}
