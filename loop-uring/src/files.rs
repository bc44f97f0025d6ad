//! The file operations of [`Op`] as io_uring requests: `OPENAT`, `READ`, `WRITE`, `FSYNC`,
//! `STATX`, `UNLINKAT`, `RENAMEAT`, `MKDIRAT`, `CLOSE`. Each SQE points only into the op's
//! heap memory (a `Vec`'s buffer, a `CString`, a boxed statx buffer), which the core keeps
//! until the completion, even when the op's future was dropped.

use io_uring::types::{Fd, FsyncFlags};
use io_uring::{IoUring, Probe, opcode, squeue};
use loop_core::Op;

/// The opcodes the file operations need; the driver runs them only when the kernel has all of
/// them (UNLINKAT and RENAMEAT came in 5.11, MKDIRAT in 5.15). Otherwise loop-fs runs file I/O
/// on the executor, as on the readiness backends.
pub(crate) const FILE_OPCODES: [u8; 9] = [
    opcode::OpenAt::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Fsync::CODE,
    opcode::Statx::CODE,
    opcode::UnlinkAt::CODE,
    opcode::RenameAt::CODE,
    opcode::MkDirAt::CODE,
    opcode::Close::CODE,
];

/// True if `ring`'s kernel supports every one of [`FILE_OPCODES`].
pub(crate) fn supported(ring: &IoUring) -> bool {
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return false;
    }
    FILE_OPCODES.iter().all(|&code| probe.is_supported(code))
}

/// The statx fields loop-fs reads (type, mode, size, times).
const STATX_MASK: u32 = libc::STATX_BASIC_STATS;

/// The SQE of file operation `op` (see [`Op::is_file_op`]), pointing into its heap memory.
pub(crate) fn sqe_for_file_op(op: &mut Op) -> squeue::Entry {
    let cwd = Fd(libc::AT_FDCWD);
    match op {
        Op::Open {
            path, flags, mode, ..
        } => opcode::OpenAt::new(cwd, path.as_ptr())
            .flags(*flags | libc::O_CLOEXEC)
            .mode(*mode)
            .build(),
        Op::Read { fd, buf, offset } => {
            let spare = buf.spare_capacity_mut();
            let len = spare.len().min(u32::MAX as usize) as u32;
            opcode::Read::new(Fd(*fd), spare.as_mut_ptr().cast(), len)
                .offset(*offset)
                .build()
        }
        Op::Write {
            fd,
            buf,
            pos,
            offset,
        } => {
            let rest = &buf[(*pos).min(buf.len())..];
            let len = rest.len().min(u32::MAX as usize) as u32;
            opcode::Write::new(Fd(*fd), rest.as_ptr(), len)
                .offset(*offset)
                .build()
        }
        Op::Sync { fd, data_only } => {
            let flags = if *data_only {
                FsyncFlags::DATASYNC
            } else {
                FsyncFlags::empty()
            };
            opcode::Fsync::new(Fd(*fd)).flags(flags).build()
        }
        Op::Statx {
            fd,
            path,
            flags,
            statx,
        } => opcode::Statx::new(Fd(*fd), path.as_ptr(), statx.as_mut_ptr().cast())
            .flags(*flags)
            .mask(STATX_MASK)
            .build(),
        Op::Unlink { path } => opcode::UnlinkAt::new(cwd, path.as_ptr()).build(),
        Op::Rename { from, to } => {
            opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
        }
        Op::Mkdir { path, mode } => opcode::MkDirAt::new(cwd, path.as_ptr()).mode(*mode).build(),
        Op::Close { file } => {
            let fd = file.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd);
            opcode::Close::new(Fd(fd)).build()
        }
        // Not a file operation: the caller matched those first. A NOP completes at once.
        _ => opcode::Nop::new().build(),
    }
}
