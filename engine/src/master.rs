//! The master: start-up, the shards' threads, signals, and the pid file.
//!
//! `start-fg` runs here in the foreground: it checks the configuration,
//! takes the queue directory's lock, refuses ports that another program
//! holds, starts one executor per shard (pinned to a CPU where the machine
//! allows), and then waits for SIGTERM/SIGINT (stop) on its own thread.
//! `start` re-runs the binary as `start-fg` in a new session and waits until
//! it is ready; `stop` signals the pid in the lock file and waits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::control;
use crate::listen;
use crate::mesh;
use crate::services::ServiceParams;
use crate::shard::{self, ReloadBox, ReloadSet, ShardSpec, StopFlag};
use crate::smtpd::SmtpdService;

/// How long sessions may go on after `stop` before they get 421.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// io_uring registered memory per executor when not root: the default
/// does not fit the 8 MiB locked-memory limit of an ordinary user.
const IO_MEMORY_UNPRIVILEGED: usize = 1 << 20;
/// How long `start` waits for the daemon to be ready, and `stop` for it to go.
const START_WAIT: Duration = Duration::from_secs(30);
const STOP_WAIT: Duration = DRAIN_LIMIT.saturating_add(Duration::from_secs(20));

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("{0}")]
    Listen(#[from] listen::ListenError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the mail system is already running (pid {pid}, lock {path})")]
    AlreadyRunning { pid: i32, path: PathBuf },
    #[error("the mail system is not running")]
    NotRunning,
    #[error("{0}")]
    Shard(String),
    #[error("cannot start executor for shard {shard}: {message}; if this is an io_uring or locked-memory error, raise `ulimit -l` or run as root")]
    Executor { shard: usize, message: String },
    #[error("{0}")]
    Other(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MasterError + '_ {
    move |source| MasterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn pid_path(queue_dir: &Path) -> PathBuf {
    queue_dir.join("pid").join("master.pid")
}

/// The daemon's lock: an flock on the pid file, held while it runs.
pub struct PidLock {
    _file: File,
    path: PathBuf,
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Take the queue directory's lock, or say who has it.
pub fn lock(queue_dir: &Path) -> Result<PidLock, MasterError> {
    let path = pid_path(queue_dir);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = read_pid(&mut file).unwrap_or(0);
        return Err(MasterError::AlreadyRunning { pid, path });
    }
    file.set_len(0).map_err(io_err(&path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
    writeln!(file, "{}", std::process::id()).map_err(io_err(&path))?;
    Ok(PidLock { _file: file, path })
}

/// The pid of a running daemon, if any (its lock is held).
pub fn running_pid(queue_dir: &Path) -> Option<i32> {
    let path = pid_path(queue_dir);
    let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    // SAFETY: flock on an fd we own; released when `file` drops.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if free {
        return None;
    }
    read_pid(&mut file)
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait up to `timeout` for one of the blocked signals.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: sigtimedwait with a valid set and timespec; no siginfo wanted.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// The CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a cpu_set_t we own; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Run the daemon in the foreground until SIGTERM/SIGINT.
pub fn run_foreground(config: Config) -> Result<(), MasterError> {
    let params = &config.params;
    let queue_dir = params.queue_directory.clone();
    std::fs::create_dir_all(&queue_dir).map_err(io_err(&queue_dir))?;
    let _lock = lock(&queue_dir)?;
    let public = control::public_dir(&queue_dir);
    std::fs::create_dir_all(&public).map_err(io_err(&public))?;

    // Never shrink below the shards that hold mail: their logs must be served.
    let existing = control::shard_dirs(&queue_dir)
        .map_err(io_err(&queue_dir))?
        .iter()
        .map(|(n, _)| n + 1)
        .max()
        .unwrap_or(0);
    let nshards = params.sluice_shards.max(1).max(existing);
    if existing > params.sluice_shards.max(1) {
        tracing::warn!(target: "master", "warning: the queue holds {existing} shards, more than sluice_shards = {}; serving all of them", params.sluice_shards);
    }

    let mut warnings = Vec::new();
    let services = ServiceParams::from_config(&config, nshards, &mut warnings)
        .map_err(|e| MasterError::Other(e.to_string()))?;
    for w in &warnings {
        tracing::warn!(target: "master", "warning: {w}");
    }
    for l in &config.listeners {
        listen::probe(l.addr)?;
    }
    let mut per_shard: Vec<Vec<(std::net::TcpListener, crate::config::Listener)>> =
        (0..nshards).map(|_| Vec::new()).collect();
    for l in &config.listeners {
        for bucket in per_shard.iter_mut() {
            bucket.push((listen::bind_shard(l.addr)?, l.clone()));
        }
    }

    let sigset = block_signals();
    let stop = StopFlag::new();
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
    // Each shard says when its thread ends, even by panic (see ExitNotice).
    let (exit_tx, exit_rx) = mpsc::channel::<usize>();
    let cpus = allowed_cpus();
    let unprivileged = unsafe { libc::geteuid() } != 0;
    let mut handles = Vec::new();
    let reload = ReloadBox::default();
    let meshes = mesh::build(nshards);
    for ((id, listeners), mesh_ends) in per_shard.into_iter().enumerate().zip(meshes) {
        let services = services.clone();
        let reload = reload.clone();
        let params = config.params.clone();
        let dir = queue_dir.join(id.to_string());
        let qd = queue_dir.clone();
        let stop = stop.clone();
        let tx = ready_tx.clone();
        let exit_tx = exit_tx.clone();
        // Pin shard i to the i-th CPU this process may run on; beyond
        // those (or where affinity cannot be read) the kernel places it.
        let placement = match cpus.get(id) {
            Some(&cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let mut builder = LocalExecutorBuilder::new(placement).name(&format!("shard-{id}"));
        if unprivileged {
            builder = builder.io_memory(IO_MEMORY_UNPRIVILEGED);
        }
        let hostname = params.myhostname.clone();
        let handle = builder
            .spawn(move || async move {
                let _exit = ExitNotice {
                    shard: id,
                    tx: exit_tx,
                };
                let params = Rc::new(params);
                let listeners = listeners
                    .into_iter()
                    .map(|(sock, l)| (sock, SmtpdService::new(l.smtpd.clone(), &hostname)))
                    .collect();
                let spec = ShardSpec {
                    id,
                    reload,
                    dir,
                    services,
                    mesh: mesh_ends,
                    queue_dir: qd,
                    params,
                    listeners,
                    stop,
                    drain_limit: DRAIN_LIMIT,
                };
                let tx2 = tx.clone();
                shard::run(spec, move |r| {
                    let _ = tx2.send((id, r));
                })
                .await;
            })
            .map_err(|e| MasterError::Executor {
                shard: id,
                message: e.to_string(),
            })?;
        handles.push(handle);
    }
    drop(ready_tx);

    // Wait for every shard to be ready (or one to fail).
    let mut failure = None;
    for _ in 0..nshards {
        match ready_rx.recv_timeout(START_WAIT) {
            Ok((_, Ok(()))) => {}
            Ok((_, Err(e))) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some("a shard did not start in time".to_string());
                break;
            }
        }
    }
    if let Some(e) = failure {
        stop.drain();
        for h in handles {
            let _ = h.join();
        }
        return Err(MasterError::Shard(e));
    }
    let addrs: Vec<String> = config
        .listeners
        .iter()
        .map(|l| l.addr.to_string())
        .collect();
    tracing::info!(
        target: "master",
        "daemon started -- version {}, configuration {}, {} shards, listening on {}",
        env!("CARGO_PKG_VERSION"),
        config.config_dir.display(),
        nshards,
        addrs.join(" ")
    );
    // Tell a waiting `sluice start` that we are ready.
    let ready_path = queue_dir.join("pid").join("master.ready");
    let _ = std::fs::write(&ready_path, format!("{}\n", std::process::id()));

    loop {
        if let Ok(shard) = exit_rx.try_recv() {
            tracing::error!(target: "master", "fatal: shard {shard} stopped unexpectedly; stopping");
            break;
        }
        match wait_signal(&sigset, Duration::from_millis(200)) {
            Some(libc::SIGHUP) => match reload_config(&config, nshards) {
                Ok(set) => {
                    reload.publish(set);
                    tracing::info!(target: "master", "reload -- version {}, configuration {}", env!("CARGO_PKG_VERSION"), config.config_dir.display());
                }
                Err(e) => {
                    tracing::warn!(target: "master", "warning: reload failed, configuration unchanged: {e}")
                }
            },
            Some(_) => break,
            None => {}
        }
    }
    tracing::info!(target: "master", "terminating on signal; draining sessions");
    let _ = std::fs::remove_file(&ready_path);
    stop.drain();
    for h in handles {
        let _ = h.join();
    }
    tracing::info!(target: "master", "stopped");
    Ok(())
}

/// Re-read main.cf, master.cf and the tables for `sluice reload`. The
/// listening addresses stay as they are (a new address needs a restart);
/// each existing listener takes its new `-o` overrides.
fn reload_config(old: &Config, nshards: usize) -> Result<ReloadSet, String> {
    let new = crate::config::load(&old.config_dir).map_err(|e| e.to_string())?;
    for w in &new.warnings {
        tracing::warn!(target: "master", "warning: {w}");
    }
    let mut warnings = Vec::new();
    let services =
        ServiceParams::from_config(&new, nshards, &mut warnings).map_err(|e| e.to_string())?;
    for w in &warnings {
        tracing::warn!(target: "master", "warning: {w}");
    }
    let listeners = old
        .listeners
        .iter()
        .map(|l| match new.listeners.iter().find(|n| n.addr == l.addr) {
            Some(n) => n.smtpd.clone(),
            None => {
                tracing::warn!(target: "master", "warning: {} is no longer in master.cf; it keeps listening until a restart", l.addr);
                l.smtpd.clone()
            }
        })
        .collect();
    for n in &new.listeners {
        if !old.listeners.iter().any(|l| l.addr == n.addr) {
            tracing::warn!(target: "master", "warning: new listener {} needs a restart", n.addr);
        }
    }
    Ok(ReloadSet {
        params: new.params,
        services,
        listeners,
    })
}

/// `sluice reload`: SIGHUP to the running daemon.
pub fn reload(queue_dir: &Path) -> Result<i32, MasterError> {
    let pid = running_pid(queue_dir).ok_or(MasterError::NotRunning)?;
    // SAFETY: kill(2) on the pid recorded under the held lock.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(MasterError::Other(format!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(pid)
}

/// Sent when a shard's executor future ends, however it ends.
struct ExitNotice {
    shard: usize,
    tx: mpsc::Sender<usize>,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let _ = self.tx.send(self.shard);
    }
}

/// `sluice start`: run `start-fg` detached, wait until it is ready.
pub fn start_background(config: &Config, exe: &Path, log_path: &Path) -> Result<i32, MasterError> {
    let queue_dir = &config.params.queue_directory;
    if let Some(pid) = running_pid(queue_dir) {
        return Err(MasterError::AlreadyRunning {
            pid,
            path: pid_path(queue_dir),
        });
    }
    std::fs::create_dir_all(queue_dir).map_err(io_err(queue_dir))?;
    let ready_path = queue_dir.join("pid").join("master.ready");
    let _ = std::fs::remove_file(&ready_path);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io_err(log_path))?;
    let log2 = log.try_clone().map_err(io_err(log_path))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-c")
        .arg(&config.config_dir)
        .arg("start-fg")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our
    // terminal and process group.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(io_err(exe))?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if ready_path.exists() {
            return Ok(child.id() as i32);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(MasterError::Other(format!(
                "the daemon exited during start-up ({status}); see {}",
                log_path.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(MasterError::Other(format!(
                "the daemon did not become ready in {}s; see {}",
                START_WAIT.as_secs(),
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sluice stop`: SIGTERM the daemon and wait until it has gone.
pub fn stop(queue_dir: &Path) -> Result<i32, MasterError> {
    let pid = running_pid(queue_dir).ok_or(MasterError::NotRunning)?;
    // SAFETY: kill(2) on the pid recorded under the held lock.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(MasterError::Other(format!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let deadline = Instant::now() + STOP_WAIT;
    while running_pid(queue_dir).is_some() {
        if Instant::now() > deadline {
            return Err(MasterError::Other(format!(
                "pid {pid} did not stop within {}s",
                STOP_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(pid)
}
