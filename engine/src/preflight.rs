//! Checks made before any shard starts, so that a machine that cannot run
//! the shards gets one line naming the cause and the fix, instead of an
//! executor's panic or a start-up timeout.
//!
//! - **io_uring**: one small ring is set up with a raw `io_uring_setup(2)`
//!   and closed again. Seccomp filters (container runtimes' default
//!   profiles among them) refuse it with ENOSYS or EPERM; the
//!   `kernel.io_uring_disabled` sysctl refuses it with EPERM or EACCES.
//! - **locked memory**: glommio refuses to start an executor when
//!   RLIMIT_MEMLOCK is below 512 KiB; older kernels also charge the rings
//!   themselves to it (io_uring_setup then fails with ENOMEM). Both are
//!   fatal. When the buffers the executors register (`io_memory`, once per
//!   ring) do not fit the limit, glommio goes on without registered
//!   buffers; the probe registers the same amount and says so.
//!
//! Nothing here keeps a ring: the probe's fd and buffer are released
//! before the shards start.

use std::io;

/// glommio's floor for RLIMIT_MEMLOCK (`Reactor::new`, MIN_MEMLOCK_LIMIT).
const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// Rings per executor that register `io_memory` (main, poll, latency).
const RINGS_PER_EXECUTOR: u64 = 3;
/// The probe ring's depth: the smallest useful ring.
const PROBE_ENTRIES: u32 = 4;
/// `struct io_uring_params` is 120 bytes (kernel uapi, stable since 5.1).
const IO_URING_PARAMS_WORDS: usize = 30;
/// `IORING_REGISTER_BUFFERS`, `IORING_UNREGISTER_BUFFERS` (uapi).
const IORING_REGISTER_BUFFERS: libc::c_uint = 0;
const IORING_UNREGISTER_BUFFERS: libc::c_uint = 1;
const DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Why the shards cannot start here.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("{}", io_uring_message(*.errno, .sysctl.as_deref()))]
    IoUring {
        errno: i32,
        /// `kernel.io_uring_disabled` as read from /proc (None: absent).
        sysctl: Option<String>,
    },
    #[error("{}", memlock_message(*.limit, *.need))]
    MemLock { limit: u64, need: u64 },
}

/// A check that passed with something the operator should know.
#[derive(Debug, PartialEq, Eq)]
pub enum PreflightWarning {
    /// Registered buffers do not fit RLIMIT_MEMLOCK: I/O goes unregistered.
    Unregistered { limit: u64, need: u64 },
}

impl std::fmt::Display for PreflightWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreflightWarning::Unregistered { limit, need } => write!(
                f,
                "the locked-memory limit (RLIMIT_MEMLOCK) is {}, less than the {} the shards' io_uring buffers need; they run unregistered (slower); raise it with `ulimit -l` or LimitMEMLOCK= in the service unit",
                kib(*limit),
                kib(*need)
            ),
        }
    }
}

fn kib(bytes: u64) -> String {
    if bytes == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOSYS => "ENOSYS",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOMEM => "ENOMEM",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        _ => "error",
    }
}

fn io_uring_message(errno: i32, sysctl: Option<&str>) -> String {
    let head = format!(
        "Sluice needs io_uring, but io_uring_setup(2) failed with {} ({})",
        errno_name(errno),
        io::Error::from_raw_os_error(errno)
    );
    let why = match (errno, sysctl) {
        (libc::EPERM | libc::EACCES, Some("2")) => {
            "kernel.io_uring_disabled = 2 forbids it to every process; allow it with `sysctl -w kernel.io_uring_disabled=0`".to_string()
        }
        (libc::EPERM | libc::EACCES, Some("1")) => {
            "kernel.io_uring_disabled = 1 allows it only to root and the group in kernel.io_uring_group; add this user to that group or set `sysctl -w kernel.io_uring_disabled=0`".to_string()
        }
        (libc::EPERM | libc::EACCES | libc::ENOSYS, s) => format!(
            "a seccomp filter refuses it{} (container runtimes' default profiles do); allow io_uring_setup, io_uring_enter and io_uring_register in the container's seccomp profile{}",
            match s {
                Some(v) => format!(" (kernel.io_uring_disabled = {v})"),
                None => String::new(),
            },
            if errno == libc::ENOSYS {
                ", or run a kernel built with io_uring (5.10 or later)"
            } else {
                ""
            }
        ),
        _ => "see io_uring_setup(2)".to_string(),
    };
    format!("{head}: {why}")
}

fn memlock_message(limit: u64, need: u64) -> String {
    format!(
        "the locked-memory limit (RLIMIT_MEMLOCK) is {}, and io_uring needs at least {}; raise it with `ulimit -l` or LimitMEMLOCK= in the service unit",
        kib(limit),
        kib(need)
    )
}

/// The soft RLIMIT_MEMLOCK, in bytes.
fn memlock_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return libc::RLIM_INFINITY;
    }
    r.rlim_cur
}

fn read_disabled_sysctl() -> Option<String> {
    std::fs::read_to_string(DISABLED_SYSCTL)
        .ok()
        .map(|s| s.trim().to_string())
}

/// An io_uring fd, closed on drop.
struct Ring(libc::c_int);

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: closing the fd io_uring_setup gave us.
        unsafe { libc::close(self.0) };
    }
}

fn setup_ring() -> Result<Ring, i32> {
    let mut params = [0u32; IO_URING_PARAMS_WORDS];
    // SAFETY: io_uring_setup(entries, params) with a zeroed params struct
    // of the kernel's size; it returns an fd or -1 with errno.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, PROBE_ENTRIES, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(Ring(fd as libc::c_int))
}

/// Whether `bytes` of buffers can be registered (pinned) on `ring`.
fn can_register(ring: &Ring, bytes: usize) -> bool {
    let mut buf = vec![0u8; bytes];
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: io_uring_register on our ring with one iovec over `buf`,
    // which outlives the registration (unregistered right after).
    unsafe {
        let r = libc::syscall(
            libc::SYS_io_uring_register,
            ring.0,
            IORING_REGISTER_BUFFERS,
            &iov as *const libc::iovec,
            1u32,
        );
        if r < 0 {
            return false;
        }
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.0,
            IORING_UNREGISTER_BUFFERS,
            std::ptr::null::<libc::c_void>(),
            0u32,
        );
    }
    true
}

/// Can `shards` executors start here? `io_memory` is what each of their
/// rings registers when that counts against RLIMIT_MEMLOCK (None for
/// root, whose CAP_IPC_LOCK exempts it).
pub fn check(
    shards: usize,
    io_memory: Option<usize>,
) -> Result<Vec<PreflightWarning>, PreflightError> {
    let limit = memlock_limit();
    if limit < GLOMMIO_MIN_MEMLOCK {
        return Err(PreflightError::MemLock {
            limit,
            need: GLOMMIO_MIN_MEMLOCK,
        });
    }
    let ring = match setup_ring() {
        Ok(r) => r,
        Err(libc::ENOMEM) => {
            return Err(PreflightError::MemLock {
                limit,
                need: GLOMMIO_MIN_MEMLOCK,
            })
        }
        Err(errno) => {
            return Err(PreflightError::IoUring {
                errno,
                sysctl: read_disabled_sysctl(),
            })
        }
    };
    let mut warnings = Vec::new();
    let Some(io_memory) = io_memory else {
        return Ok(warnings);
    };
    let need = (shards as u64) * RINGS_PER_EXECUTOR * io_memory as u64;
    if limit != libc::RLIM_INFINITY
        && need > limit
        && !can_register(&ring, usize::try_from(need).unwrap_or(usize::MAX))
    {
        warnings.push(PreflightWarning::Unregistered { limit, need });
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_cause_and_fix() {
        let m = io_uring_message(libc::EPERM, Some("0"));
        assert!(m.starts_with("Sluice needs io_uring"), "{m}");
        assert!(m.contains("EPERM") && m.contains("seccomp profile"), "{m}");
        let m = io_uring_message(libc::EPERM, Some("2"));
        assert!(m.contains("sysctl -w kernel.io_uring_disabled=0"), "{m}");
        let m = io_uring_message(libc::EACCES, Some("1"));
        assert!(m.contains("kernel.io_uring_group"), "{m}");
        let m = io_uring_message(libc::ENOSYS, None);
        assert!(
            m.contains("ENOSYS") && m.contains("kernel built with io_uring"),
            "{m}"
        );
        let m = memlock_message(64 * 1024, GLOMMIO_MIN_MEMLOCK);
        assert!(m.contains("RLIMIT_MEMLOCK) is 64 KiB"), "{m}");
        assert!(
            m.contains("ulimit -l") && m.contains("LimitMEMLOCK="),
            "{m}"
        );
        for m in [io_uring_message(libc::ENOSYS, Some("0")), m] {
            assert!(!m.contains('\n'), "one line: {m}");
        }
    }

    #[test]
    fn this_machine_passes() {
        // The test machines run io_uring; this is the path every start takes.
        check(2, Some(1 << 20)).unwrap();
        check(2, None).unwrap();
    }
}
