//! The master: start-up, the shards' threads, signals, and the pid file.
//!
//! `start-fg` runs here in the foreground: it checks the configuration,
//! takes the queue directory's lock, refuses ports that another program
//! holds, starts one executor per shard (pinned to a CPU where the machine
//! allows), and then waits for SIGTERM/SIGINT (stop) on its own thread.
//! Before any shard starts it checks that io_uring and the locked-memory
//! limit allow them ([`crate::preflight`]), and waits (bounded) for the
//! listening sockets of a killed predecessor to close. It is *ready* once
//! every shard accepts on its listeners and its control socket; then it
//! writes its pid to `pid/master.ready`. A shard that panics or ends on
//! its own is fatal ([`crate::supervise`]): the master logs it and exits.
//!
//! Started as root, it resolves `mail_owner`, repairs the queue
//! directory's owners and modes ([`crate::set_permissions`]), binds its
//! listeners, and then drops to mail_owner on this (the only) thread
//! before any shard exists ([`crate::privilege`]); the shards are never
//! root. Without root it runs as the invoking user. Either way its umask
//! is 077: everything it creates is private unless made otherwise.
//!
//! `start` re-runs the binary as `start-fg` in a new session and waits until
//! it is ready; `stop` signals the pid in the lock file and waits until that
//! process has exited.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::control;
use crate::listen;
use crate::mesh;
use crate::preflight;
use crate::privilege;
use crate::process_limit;
use crate::services::ServiceParams;
use crate::set_permissions;
use crate::shard::{self, ReloadBox, ReloadSet, ShardSpec, StopFlag};
use crate::smtpd::SmtpdService;
use crate::supervise::{self, Doorbell, ExitNotice, ShardEvent};

/// How long sessions may go on after `stop` before they get 421.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// io_uring registered memory per executor when not root: the default
/// does not fit the 8 MiB locked-memory limit of an ordinary user.
const IO_MEMORY_UNPRIVILEGED: usize = 1 << 20;
/// How long `start` waits for the daemon to be ready, and `stop` for it to go.
const START_WAIT: Duration = Duration::from_secs(30);
/// How long the master waits for its shards after the stop: the drain,
/// the forced close and the delivery drain (shard.rs), with a margin.
const EXIT_WAIT: Duration = DRAIN_LIMIT.saturating_add(Duration::from_secs(15));
/// `stop` waits for the master's own bound, and for the process to go.
const STOP_WAIT: Duration = EXIT_WAIT.saturating_add(Duration::from_secs(5));
/// When `stop` says it is waiting (Postfix says so after a second too).
const STOP_QUIET: Duration = Duration::from_secs(1);

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
    #[error("shard {shard}: panicked: {message}")]
    ShardPanic { shard: usize, message: String },
    #[error("{0}")]
    Preflight(#[from] preflight::PreflightError),
    #[error("{0}")]
    Privilege(#[from] privilege::PrivilegeError),
    #[error("the daemon exited during start-up ({status}){detail}")]
    StartFailed {
        status: std::process::ExitStatus,
        detail: String,
    },
    #[error("cannot start executor for shard {shard}: {message}; if this is an io_uring or locked-memory error, raise `ulimit -l` or run as root")]
    Executor { shard: usize, message: String },
    #[error("{0}")]
    Other(String),
}

impl MasterError {
    /// A problem of the machine's or the configuration's set-up (EX_CONFIG),
    /// rather than a temporary one.
    pub fn is_config(&self) -> bool {
        match self {
            MasterError::Preflight(_) | MasterError::Privilege(_) => true,
            MasterError::StartFailed { status, .. } => status.code() == Some(EX_CONFIG),
            _ => false,
        }
    }
}

/// sysexits(3) EX_CONFIG, the daemon's exit code for a preflight failure.
const EX_CONFIG: i32 = 78;

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

/// `pid/master.ready`: the pid of a daemon that accepts on every listener
/// and control socket. Cleared when the daemon starts (a killed one
/// leaves it behind) and removed when it stops serving.
struct ReadyMarker {
    path: PathBuf,
}

fn ready_path(queue_dir: &Path) -> PathBuf {
    queue_dir.join("pid").join("master.ready")
}

impl ReadyMarker {
    fn clear(queue_dir: &Path) -> ReadyMarker {
        let path = ready_path(queue_dir);
        let _ = std::fs::remove_file(&path);
        ReadyMarker { path }
    }

    /// Written whole (rename), so a reader never sees half a pid.
    fn publish(&self) {
        let tmp = self.path.with_extension("ready.tmp");
        if std::fs::write(&tmp, format!("{}\n", std::process::id())).is_ok() {
            // A pid is no secret (set_permissions: pid files 0644).
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(set_permissions::PID_FILE_MODE);
            let _ = std::fs::set_permissions(&tmp, mode);
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

impl Drop for ReadyMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The pid in the ready marker, if any.
fn ready_pid(queue_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(ready_path(queue_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Where the daemon of a queue directory stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonState {
    NotRunning,
    /// Holds the lock, but not every listener accepts yet.
    Starting(i32),
    Running(i32),
}

/// The daemon's state: its lock is held, and it said it is ready.
pub fn daemon_state(queue_dir: &Path) -> DaemonState {
    match running_pid(queue_dir) {
        None => DaemonState::NotRunning,
        Some(pid) if ready_pid(queue_dir) == Some(pid) => DaemonState::Running(pid),
        Some(pid) => DaemonState::Starting(pid),
    }
}

/// The pid of a running daemon, if any (its lock is held).
pub fn running_pid(queue_dir: &Path) -> Option<i32> {
    let path = pid_path(queue_dir);
    // Read-only: any user may ask (flock does not need write access).
    let mut file = OpenOptions::new().read(true).open(&path).ok()?;
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
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            supervise::DOORBELL,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait for one of the blocked signals (None: interrupted).
fn wait_signal(set: &libc::sigset_t) -> Option<i32> {
    // SAFETY: sigwaitinfo with a valid set; no siginfo wanted.
    let s = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
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

/// The shards' listening sockets: one SO_REUSEPORT socket per listener
/// per shard, with the listener it serves.
/// `None` where the shard's share of the service's process limit is 0: it
/// does not listen there, so the kernel routes nothing to it.
type ShardListeners = Vec<Vec<(Option<std::net::TcpListener>, crate::config::Listener)>>;

/// Never shrink below the shards that hold mail: their logs must be served.
fn shard_count(config: &Config) -> Result<usize, MasterError> {
    let queue_dir = &config.params.queue_directory;
    let existing = control::shard_dirs(queue_dir)
        .map_err(io_err(queue_dir))?
        .iter()
        .map(|(n, _)| n + 1)
        .max()
        .unwrap_or(0);
    let wanted = config.params.sluice_shards.max(1);
    if existing > wanted {
        tracing::warn!(target: "master", "warning: the queue holds {existing} shards, more than sluice_shards = {}; serving all of them", config.params.sluice_shards);
    }
    Ok(wanted.max(existing))
}

fn unprivileged() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() != 0 }
}

/// io_uring and locked memory, checked before anything starts.
fn preflight(nshards: usize) -> Result<(), MasterError> {
    let io_memory = unprivileged().then_some(IO_MEMORY_UNPRIVILEGED);
    for w in preflight::check(nshards, io_memory)? {
        tracing::warn!(target: "master", "warning: {w}");
    }
    Ok(())
}

/// Bind every listener once per shard, after waiting (bounded) for the
/// sockets of a previous, killed instance to close.
fn bind_listeners(config: &Config, nshards: usize) -> Result<ShardListeners, MasterError> {
    for l in &config.listeners {
        listen::probe_waiting(l.addr, listen::PREVIOUS_LISTENER_WAIT, || {
            tracing::info!(target: "master", "waiting for the previous listener on {} to close", l.addr);
        })?;
    }
    let mut per_shard: ShardListeners = (0..nshards).map(|_| Vec::new()).collect();
    for l in &config.listeners {
        for (shard, bucket) in per_shard.iter_mut().enumerate() {
            let sock = match process_limit::shard_share(l.process_limit, shard, nshards) {
                Some(0) => None,
                _ => Some(listen::bind_shard(l.addr)?),
            };
            bucket.push((sock, l.clone()));
        }
        if l.process_limit > 0 && (l.process_limit as usize) < nshards {
            tracing::info!(target: "master", "service {}: process limit {} is below {nshards} shards; {} listens on {} of them", l.service, l.process_limit, l.addr, l.process_limit);
        }
    }
    Ok(per_shard)
}

/// What every shard shares with the master.
struct Shared {
    services: ServiceParams,
    reload: ReloadBox,
    stop: StopFlag,
    doorbell: Doorbell,
}

type Handles = Vec<Option<ExecutorJoinHandle<()>>>;

/// Start one executor per shard (pinned to the i-th allowed CPU).
fn spawn_shards(
    config: &Config,
    per_shard: ShardListeners,
    shared: &Shared,
) -> Result<Handles, MasterError> {
    let cpus = allowed_cpus();
    let nshards = per_shard.len();
    let meshes = mesh::build(nshards);
    let mut handles = Vec::new();
    for ((id, listeners), mesh_ends) in per_shard.into_iter().enumerate().zip(meshes) {
        // Beyond the allowed CPUs (or where affinity cannot be read) the
        // kernel places the shard.
        let placement = match cpus.get(id) {
            Some(&cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let mut builder = LocalExecutorBuilder::new(placement).name(&format!("shard-{id}"));
        if unprivileged() {
            builder = builder.io_memory(IO_MEMORY_UNPRIVILEGED);
        }
        let queue_dir = config.params.queue_directory.clone();
        let services = shared.services.clone();
        let reload = shared.reload.clone();
        let stop = shared.stop.clone();
        let params = config.params.clone();
        let doorbell = shared.doorbell.clone();
        // Dropped unused if the executor never starts: the master hears of it.
        let exit = ExitNotice {
            shard: id,
            doorbell: shared.doorbell.clone(),
        };
        let handle = builder
            .spawn(move || async move {
                let _exit = exit;
                let hostname = params.myhostname.clone();
                let spec = ShardSpec {
                    id,
                    reload,
                    dir: queue_dir.join(id.to_string()),
                    services,
                    mesh: mesh_ends,
                    queue_dir,
                    params: Rc::new(params),
                    listeners: listeners
                        .into_iter()
                        .map(|(sock, l)| {
                            let service = SmtpdService::new(
                                &l.service,
                                l.process_limit,
                                l.smtpd.clone(),
                                &hostname,
                            );
                            (sock, service)
                        })
                        .collect(),
                    stop,
                    shards: nshards,
                    drain_limit: DRAIN_LIMIT,
                };
                shard::run(spec, move |r| doorbell.ring(ShardEvent::Ready(id, r))).await;
            })
            .map_err(|e| MasterError::Executor {
                shard: id,
                message: e.to_string(),
            })?;
        handles.push(Some(handle));
    }
    Ok(handles)
}

/// Why a shard that ended before it was ready ended.
fn early_exit(shard: usize, handles: &mut Handles) -> MasterError {
    match handles
        .get_mut(shard)
        .and_then(Option::take)
        .map(|h| h.join())
    {
        Some(Err(e)) => MasterError::Executor {
            shard,
            message: e.to_string(),
        },
        _ => MasterError::Shard(format!("shard {shard} stopped during start-up")),
    }
}

/// Wait until every shard accepts (or one fails, panics or ends).
fn wait_ready(
    events: &mpsc::Receiver<ShardEvent>,
    handles: &mut Handles,
) -> Result<(), MasterError> {
    let deadline = Instant::now() + START_WAIT;
    let mut ready = 0;
    while ready < handles.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ShardEvent::Ready(_, Ok(()))) => ready += 1,
            Ok(ShardEvent::Ready(_, Err(e))) => return Err(MasterError::Shard(e)),
            Ok(ShardEvent::Panicked(shard, message)) => {
                return Err(MasterError::ShardPanic { shard, message })
            }
            Ok(ShardEvent::Exited(shard)) => return Err(early_exit(shard, handles)),
            Err(_) => {
                return Err(MasterError::Shard(
                    "a shard did not start in time".to_string(),
                ))
            }
        }
    }
    Ok(())
}

/// A shard that panicked or ended on its own, from the events so far.
/// (A panic is reported before its unwinding drops the exit notice.)
fn shard_trouble(events: &mpsc::Receiver<ShardEvent>) -> Option<MasterError> {
    let mut exited = None;
    for event in events.try_iter() {
        match event {
            ShardEvent::Panicked(shard, message) => {
                return Some(MasterError::ShardPanic { shard, message })
            }
            ShardEvent::Exited(shard) => {
                exited.get_or_insert(shard);
            }
            ShardEvent::Ready(..) => {}
        }
    }
    exited.map(|s| MasterError::Shard(format!("shard {s} stopped unexpectedly")))
}

/// Serve signals until stop (Ok) or a shard's death (Err).
fn serve(
    config: &Config,
    nshards: usize,
    sigset: &libc::sigset_t,
    events: &mpsc::Receiver<ShardEvent>,
    reload: &ReloadBox,
) -> Result<(), MasterError> {
    loop {
        match wait_signal(sigset) {
            Some(libc::SIGHUP) => match reload_config(config, nshards) {
                Ok(set) => {
                    reload.publish(set);
                    tracing::info!(target: "master", "reload -- version {}, configuration {}", env!("CARGO_PKG_VERSION"), config.config_dir.display());
                }
                Err(e) => {
                    tracing::warn!(target: "master", "warning: reload failed, configuration unchanged: {e}")
                }
            },
            Some(supervise::DOORBELL) => {
                if let Some(e) = shard_trouble(events) {
                    return Err(e);
                }
            }
            Some(_) => return Ok(()),
            None => {}
        }
    }
}

/// After the stop: wait (bounded) until every shard has ended.
fn wait_stopped(events: &mpsc::Receiver<ShardEvent>, handles: Handles) -> Result<(), MasterError> {
    let deadline = Instant::now() + EXIT_WAIT;
    let mut running: Vec<bool> = handles.iter().map(Option::is_some).collect();
    while running.iter().any(|r| *r) {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ShardEvent::Exited(shard)) => {
                if let Some(r) = running.get_mut(shard) {
                    *r = false;
                }
            }
            Ok(ShardEvent::Panicked(shard, message)) => {
                return Err(MasterError::ShardPanic { shard, message })
            }
            Ok(ShardEvent::Ready(..)) => {}
            Err(_) => {
                let late: Vec<String> = (0..running.len())
                    .filter(|&i| running[i])
                    .map(|i| i.to_string())
                    .collect();
                return Err(MasterError::Shard(format!(
                    "shard {} did not stop within {}s",
                    late.join(", "),
                    EXIT_WAIT.as_secs()
                )));
            }
        }
    }
    for h in handles.into_iter().flatten() {
        let _ = h.join();
    }
    Ok(())
}

/// Run the daemon in the foreground until SIGTERM/SIGINT. A shard that
/// panics or ends on its own makes this return its error at once, without
/// waiting for the others (acknowledged mail is on disk).
pub fn run_foreground(config: Config) -> Result<(), MasterError> {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o077) };
    let owner = privilege::is_root()
        .then(|| privilege::resolve(&config))
        .transpose()?;
    let queue_dir = config.params.queue_directory.clone();
    std::fs::create_dir_all(&queue_dir).map_err(io_err(&queue_dir))?;
    let _lock = lock(&queue_dir)?;
    let ready = ReadyMarker::clear(&queue_dir);
    let nshards = shard_count(&config)?;
    match &owner {
        Some(ids) => {
            set_permissions::apply(&queue_dir, ids, nshards).map_err(io_err(&queue_dir))?;
        }
        None => {
            let public = control::public_dir(&queue_dir);
            std::fs::create_dir_all(&public).map_err(io_err(&public))?;
        }
    }

    let mut warnings = Vec::new();
    let services = ServiceParams::from_config(&config, nshards, &mut warnings)
        .map_err(|e| MasterError::Other(e.to_string()))?;
    for w in &warnings {
        tracing::warn!(target: "master", "warning: {w}");
    }
    let per_shard = bind_listeners(&config, nshards)?;
    let notifier = crate::sd_notify::Notifier::from_env();
    // No other thread exists yet: every shard starts as mail_owner.
    if let Some(ids) = &owner {
        privilege::drop_to(ids)?;
        tracing::info!(target: "master", "running as {} (uid {}, gid {})", ids.owner, ids.uid, ids.gid);
    }
    preflight(nshards)?;

    let sigset = block_signals();
    let (doorbell, events) = Doorbell::for_this_thread();
    supervise::install_panic_hook(doorbell.clone());
    let shared = Shared {
        services,
        reload: ReloadBox::default(),
        stop: StopFlag::new(),
        doorbell,
    };
    let mut handles = spawn_shards(&config, per_shard, &shared)?;
    if let Err(e) = wait_ready(&events, &mut handles) {
        // The others may wait for the failed one (the mesh): not joined.
        shared.stop.drain();
        return Err(e);
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
    ready.publish();
    if let Some(n) = &notifier {
        n.ready();
    }

    let served = serve(&config, nshards, &sigset, &events, &shared.reload);
    if let Some(n) = &notifier {
        n.stopping();
    }
    drop(ready);
    shared.stop.drain();
    served?;
    tracing::info!(target: "master", "terminating on signal; draining sessions");
    wait_stopped(&events, handles)?;
    tracing::info!(target: "master", "stopped");
    Ok(())
}

/// Re-read main.cf, master.cf and the tables for `sluice reload`. The
/// listening addresses stay as they are (a new address needs a restart);
/// each existing listener takes its new `-o` overrides.
fn reload_config(old: &Config, nshards: usize) -> Result<ReloadSet, String> {
    let new = crate::config::load_runnable(&old.config_dir).map_err(|e| e.to_string())?;
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
            Some(n) => {
                if n.process_limit != l.process_limit {
                    tracing::warn!(target: "master", "warning: service {}: a new process limit ({}, was {}) needs a restart", n.service, n.process_limit, l.process_limit);
                }
                n.smtpd.clone()
            }
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

/// The last `fatal:` line of the daemon's log (its last 64 KiB), to say
/// why a background start failed.
fn last_fatal(log_path: &Path) -> Option<String> {
    const TAIL: u64 = 64 << 10;
    let mut f = File::open(log_path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let line = text.lines().rev().find(|l| l.contains("fatal: "))?;
    let at = line.find("fatal: ")? + "fatal: ".len();
    Some(line[at..].to_string())
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
    // Said here, on the terminal, rather than only in the daemon's log.
    preflight(shard_count(config)?)?;
    use std::os::unix::fs::OpenOptionsExt;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
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
    let pid = child.id() as i32;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if daemon_state(queue_dir) == DaemonState::Running(pid) {
            return Ok(pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let detail = match last_fatal(log_path) {
                Some(f) => format!(": {f}"),
                None => format!("; see {}", log_path.display()),
            };
            return Err(MasterError::StartFailed { status, detail });
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

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
fn process_gone(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the pid exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses: "pid (comm) Z …".
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
}

/// `sluice stop`: SIGTERM the daemon and wait until its process has
/// exited; `waiting` is called once if that takes more than a moment.
pub fn stop(queue_dir: &Path, waiting: impl FnOnce()) -> Result<i32, MasterError> {
    let pid = running_pid(queue_dir).ok_or(MasterError::NotRunning)?;
    // SAFETY: kill(2) on the pid recorded under the held lock.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(MasterError::Other(format!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    let start = Instant::now();
    let mut waiting = Some(waiting);
    while !process_gone(pid) {
        if start.elapsed() > STOP_WAIT {
            return Err(MasterError::Other(format!(
                "the mail system (pid {pid}) did not terminate within {}s",
                STOP_WAIT.as_secs()
            )));
        }
        if start.elapsed() > STOP_QUIET {
            if let Some(w) = waiting.take() {
                w();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(pid)
}
