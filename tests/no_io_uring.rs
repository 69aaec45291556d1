//! A machine that refuses io_uring (seccomp, `kernel.io_uring_disabled`,
//! a container's default profile) or locks too little memory gets one
//! line that names the cause and the fix, and exit 78 (EX_CONFIG): no
//! executor panic, no backtrace, no start-up timeout.
//!
//! The daemon runs under a seccomp filter that makes `io_uring_setup`
//! fail with the errno under test, installed in the child between fork
//! and exec.

mod common;
use common::*;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `io_uring_setup`'s number: 425 on both x86_64 and aarch64.
const NR_IO_URING_SETUP: u32 = 425;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// offsetof(struct seccomp_data, nr) and (…, arch).
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A filter that fails io_uring_setup with `errno` and allows the rest
/// (any other architecture's calls included: the filter checks the arch).
fn refuse_io_uring(errno: i32) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR),
        jump(BPF_JMP | BPF_JEQ | BPF_K, NR_IO_URING_SETUP, 0, 1),
        stmt(
            BPF_RET | BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Run `sluice -c DIR start-fg` under `setup` (run in the child before
/// exec), bounded; returns its output.
fn run_daemon(
    inst: &Instance,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Output {
    let mut cmd = Command::new(SLUICE);
    cmd.arg("-c")
        .arg(inst.config_dir())
        .arg("start-fg")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `setup` only makes async-signal-safe calls (prctl, setrlimit)
    // on memory prepared before the fork.
    unsafe { cmd.pre_exec(setup) };
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn sluice");
    let out = child.wait_with_output().expect("wait for sluice");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it took {:?} to give up",
        started.elapsed()
    );
    out
}

fn under_seccomp(inst: &Instance, errno: i32) -> Output {
    let filter = refuse_io_uring(errno);
    run_daemon(inst, move || {
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: prctl with a filter program that lives in `filter`.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    })
}

/// The one `sluice: fatal:` line on stderr, checked for the things every
/// such report must (not) have.
fn one_fatal_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(78), "{}", show(out));
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("did not start"),
        "{err}"
    );
    let fatal: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("sluice: fatal: "))
        .collect();
    assert_eq!(fatal.len(), 1, "{err}");
    fatal[0].to_string()
}

#[test]
fn io_uring_refused_with_eperm_is_one_line_and_exit_78() {
    let inst = Instance::new("nouring-eperm", "");
    let line = one_fatal_line(&under_seccomp(&inst, libc::EPERM));
    assert!(line.contains("Sluice needs io_uring"), "{line}");
    assert!(line.contains("EPERM"), "{line}");
    assert!(line.contains("seccomp profile"), "{line}");
    // Nothing was bound or left behind: a normal start works next.
    assert!(std::net::TcpListener::bind(inst.addr()).is_ok());
}

#[test]
fn io_uring_refused_with_enosys_is_one_line_and_exit_78() {
    let inst = Instance::new("nouring-enosys", "");
    let line = one_fatal_line(&under_seccomp(&inst, libc::ENOSYS));
    assert!(line.contains("Sluice needs io_uring"), "{line}");
    assert!(line.contains("ENOSYS"), "{line}");
    assert!(line.contains("kernel built with io_uring"), "{line}");
}

#[test]
fn a_small_memlock_limit_is_one_line_and_exit_78() {
    let inst = Instance::new("memlock", "");
    let out = run_daemon(&inst, || {
        let lim = libc::rlimit {
            rlim_cur: 64 * 1024,
            rlim_max: 64 * 1024,
        };
        // SAFETY: setrlimit on a struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    let line = one_fatal_line(&out);
    assert!(line.contains("RLIMIT_MEMLOCK) is 64 KiB"), "{line}");
    assert!(
        line.contains("ulimit -l") && line.contains("LimitMEMLOCK="),
        "{line}"
    );
}
