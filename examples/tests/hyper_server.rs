//! The hyper_server and https_server example programs against curl, on every backend:
//! HTTP/1.1 with keep-alive (two requests, one connection), HTTP/2 (prior knowledge; by ALPN
//! over TLS), and 1 MiB request bodies streamed back byte-exact over each. Skipped, saying so,
//! where curl is not installed (CI installs it).

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The example running with `LOOP_BACKEND=backend`, killed (SIGTERM) and reaped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(bin: &Path, backend: &str) -> Server {
        Self::start_with_scheme(bin, backend, "http://")
    }

    fn start_with_scheme(bin: &Path, backend: &str, scheme: &str) -> Server {
        Self::start_with_args(bin, backend, scheme, &[])
    }

    fn start_with_args(bin: &Path, backend: &str, scheme: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(extra)
            .arg("127.0.0.1:0")
            .env("LOOP_BACKEND", backend)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with(scheme))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        assert!(line.contains(&format!("backend: {backend}")), "{line}");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for hyper_server");
        if !std::thread::panicking() {
            assert!(status.success(), "hyper_server exited with {status}");
        }
    }
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn backends() -> Vec<&'static str> {
    let mut all = vec!["mio", "polling"];
    match loop_policy::Backend::Uring.why_unavailable() {
        None => all.push("uring"),
        Some(why) => println!("uring skipped: {why}"),
    }
    all
}

fn temp_file(name: &str, data: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("hyper-server-{}-{name}", std::process::id()));
    std::fs::write(&path, data).expect("write the body file");
    path
}

#[test]
fn hyper_server_serves_curl_over_http1_and_http2() {
    if !curl_available() {
        println!("skipped: curl is not installed (apt-get install curl)");
        return;
    }
    let Some(bin) = util::example_binary("hyper_server") else {
        println!("skipped: the hyper_server example is not built (run `cargo test -p examples`)");
        return;
    };
    let body: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let body_file = temp_file("body", &body);
    let data_arg = format!("@{}", body_file.display());
    for backend in backends() {
        let server = Server::start(&bin, backend);
        let root = format!("{}/", server.url);
        let echo = format!("{}/echo", server.url);
        // Two URLs in one curl: the second request reuses the first's connection.
        let out = curl(&["-w", "[%{num_connects}]\n", &root, &root]);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            "hello from hyper on the loop over HTTP/1.1\n[1]\n\
             hello from hyper on the loop over HTTP/1.1\n[0]\n",
            "{backend}: HTTP/1.1 keep-alive"
        );
        let out = curl(&["--http2-prior-knowledge", &root]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello from hyper on the loop over HTTP/2.0\n",
            "{backend}: HTTP/2"
        );
        for proto in ["--http1.1", "--http2-prior-knowledge"] {
            let out = curl(&[
                proto,
                "--data-binary",
                &data_arg,
                "-H",
                "Content-Type: application/octet-stream",
                &echo,
            ]);
            assert_eq!(out.len(), body.len(), "{backend} {proto}: echoed length");
            assert!(out == body, "{backend} {proto}: the echoed 1 MiB differs");
        }
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/nope", server.url),
        ]);
        assert_eq!(out, b"404", "{backend}: unknown path");
    }
    let _ = std::fs::remove_file(body_file);
}

#[test]
fn hyper_server_on_two_loops_serves_curl_and_stops_on_sigterm() {
    if !curl_available() {
        println!("skipped: curl is not installed (apt-get install curl)");
        return;
    }
    let Some(bin) = util::example_binary("hyper_server") else {
        println!("skipped: the hyper_server example is not built (run `cargo test -p examples`)");
        return;
    };
    for backend in backends() {
        let server = Server::start_with_args(&bin, backend, "http://", &["--threads", "2"]);
        let root = format!("{}/", server.url);
        // Several connections: SO_REUSEPORT spreads them over both loops.
        for _ in 0..8 {
            let out = curl(&["--http2-prior-knowledge", &root]);
            assert_eq!(
                String::from_utf8_lossy(&out),
                "hello from hyper on the loop over HTTP/2.0\n",
                "{backend}: HTTP/2 on two loops"
            );
            let out = curl(&[&root]);
            assert_eq!(
                String::from_utf8_lossy(&out),
                "hello from hyper on the loop over HTTP/1.1\n",
                "{backend}: HTTP/1.1 on two loops"
            );
        }
        // Dropping the server sends SIGTERM and asserts a clean exit.
    }
}

#[test]
fn https_server_serves_curl_over_tls_with_alpn() {
    if !curl_available() {
        println!("skipped: curl is not installed (apt-get install curl)");
        return;
    }
    let Some(bin) = util::example_binary("https_server") else {
        println!("skipped: the https_server example is not built (run `cargo test -p examples`)");
        return;
    };
    let body: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(40_503) >> 8) as u8)
        .collect();
    let body_file = temp_file("tls-body", &body);
    let data_arg = format!("@{}", body_file.display());
    for backend in backends() {
        let server = Server::start_with_scheme(&bin, backend, "https://");
        let root = format!("{}/", server.url);
        let echo = format!("{}/echo", server.url);
        // -k: the certificate is self-signed, made at the server's start.
        let out = curl(&["-k", &root]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello from hyper on the loop over HTTP/2.0\n",
            "{backend}: ALPN picks HTTP/2"
        );
        let out = curl(&["-k", "--http1.1", "-w", "[%{num_connects}]\n", &root, &root]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello from hyper on the loop over HTTP/1.1\n[1]\n\
             hello from hyper on the loop over HTTP/1.1\n[0]\n",
            "{backend}: HTTP/1.1 keep-alive over TLS"
        );
        for proto in ["--http1.1", "--http2"] {
            let out = curl(&["-k", proto, "--data-binary", &data_arg, &echo]);
            assert_eq!(
                out.len(),
                body.len(),
                "{backend} {proto}: echoed length over TLS"
            );
            assert!(
                out == body,
                "{backend} {proto}: the echoed 1 MiB differs over TLS"
            );
        }
    }
    let _ = std::fs::remove_file(body_file);
}
