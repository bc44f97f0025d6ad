//! The rest of asyncio's low-level socket API on [`EventLoop`]: `sock_recv_into`,
//! `sock_recvfrom`/`sock_sendto`, `sock_sendfile` with its fallback.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use crate::{BufResult, EventLoop, SockAddr};

/// How much the `sock_sendfile` fallback reads at a time.
const SENDFILE_CHUNK: usize = 256 * 1024;

impl EventLoop {
    /// Receives into the caller's buffer (asyncio's `sock_recv_into`). Safe on every backend:
    /// the loop receives into a buffer of its own and copies, so nothing the kernel may still
    /// write to is borrowed from the caller.
    ///
    /// # Errors
    /// The receive's error.
    pub async fn sock_recv_into(&self, s: &impl AsRawFd, dst: &mut [u8]) -> io::Result<usize> {
        let (res, buf) = self
            .as_abstract()
            .sock_recv(s.as_raw_fd(), Vec::with_capacity(dst.len().max(1)))
            .await;
        let n = res?.min(dst.len());
        dst[..n].copy_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Receives one datagram and its sender (asyncio's `sock_recvfrom`).
    pub async fn sock_recvfrom(
        &self,
        s: &impl AsRawFd,
        buf: Vec<u8>,
    ) -> BufResult<(usize, SockAddr)> {
        self.as_abstract().sock_recvfrom(s.as_raw_fd(), buf).await
    }

    /// Sends one datagram to `addr` (asyncio's `sock_sendto`).
    pub async fn sock_sendto(
        &self,
        s: &impl AsRawFd,
        buf: Vec<u8>,
        addr: SockAddr,
    ) -> BufResult<usize> {
        self.as_abstract()
            .sock_sendto(s.as_raw_fd(), buf, addr)
            .await
    }

    /// Sends `count` bytes (all, if `None`) of `file` from `offset` over the connected
    /// socket `s` (asyncio's `sock_sendfile`): zero-copy sendfile(2) where the OS can, else
    /// (another platform, a file sendfile cannot read) reading chunks on the executor and
    /// sending them. Gives the count sent, short only at end of file.
    ///
    /// # Errors
    /// The send's or the read's error.
    pub async fn sock_sendfile(
        &self,
        s: &impl AsRawFd,
        file: &File,
        offset: u64,
        count: Option<u64>,
    ) -> io::Result<u64> {
        let fast = self
            .as_abstract()
            .sock_sendfile(s.as_raw_fd(), file.as_raw_fd(), offset, count)
            .await;
        match fast {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.sock_sendfile_copying(s, file, offset, count).await
            }
            other => other,
        }
    }

    /// What [`sock_sendfile`](Self::sock_sendfile) falls back to (asyncio's
    /// `_sock_sendfile_fallback`): reads `file` in chunks on the executor and sends them.
    ///
    /// # Errors
    /// The read's or the send's error.
    pub async fn sock_sendfile_copying(
        &self,
        s: &impl AsRawFd,
        file: &File,
        offset: u64,
        count: Option<u64>,
    ) -> io::Result<u64> {
        let file = std::sync::Arc::new(file.try_clone()?);
        let mut sent = 0u64;
        loop {
            let want = count.map_or(SENDFILE_CHUNK as u64, |c| {
                (c - sent).min(SENDFILE_CHUNK as u64)
            });
            if want == 0 {
                return Ok(sent);
            }
            let f = file.clone();
            let at = offset + sent;
            let chunk = self
                .run_in_executor(move || {
                    let mut buf = vec![0u8; want as usize];
                    let n = f.read_at(&mut buf, at)?;
                    buf.truncate(n);
                    Ok::<_, io::Error>(buf)
                })
                .await
                .map_err(|e| {
                    io::Error::other(format!("sock_sendfile's read did not run: {e}"))
                })??;
            if chunk.is_empty() {
                return Ok(sent);
            }
            let n = chunk.len() as u64;
            self.as_abstract()
                .sock_sendall(s.as_raw_fd(), chunk)
                .await
                .0?;
            sent += n;
        }
    }
}
