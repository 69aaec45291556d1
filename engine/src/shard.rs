//! A shard: one glommio executor that owns its listeners' accepted
//! connections, its queue log directory, its index and its committer.
//!
//! Shards share nothing but the immutable configuration and the stop flag
//! set by the master thread; everything else lives in `Rc`/`RefCell` on the
//! shard's own thread.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use sluice_agents::cleanup::CleanupParams;
use sluice_storage::log::{LogOptions, ShardLog};
use sluice_storage::qid::QidGenerator;

use crate::commit::Committer;
use crate::config::MainParams;
use crate::control;
use crate::smtpd::{self, SmtpdService};

/// How often a shard looks at the master's stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// After the drain deadline, how long closing sessions get to write their
/// 421 and go.
const FORCED_CLOSE_LIMIT: Duration = Duration::from_secs(5);

/// The master's stop flag, shared by every shard (read-only for them).
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicU8>);

impl StopFlag {
    const RUNNING: u8 = 0;
    const DRAINING: u8 = 1;

    pub fn new() -> StopFlag {
        StopFlag(Arc::new(AtomicU8::new(Self::RUNNING)))
    }
    /// Stop accepting; sessions may finish up to the drain deadline.
    pub fn drain(&self) {
        self.0.store(Self::DRAINING, Ordering::SeqCst);
    }
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst) != Self::RUNNING
    }
}

/// The shard-local view of shutdown.
pub struct ShutdownWatch {
    flag: StopFlag,
    forced: Cell<bool>,
}

impl ShutdownWatch {
    /// Resolves once the master asked to stop.
    pub async fn draining(&self) {
        while !self.flag.is_draining() {
            glommio::timer::sleep(STOP_POLL).await;
        }
    }
    pub fn is_forced(&self) -> bool {
        self.forced.get()
    }
}

/// What a shard is given at start.
pub struct ShardSpec {
    pub id: usize,
    pub dir: PathBuf,
    pub queue_dir: PathBuf,
    pub params: Rc<MainParams>,
    pub listeners: Vec<(std::net::TcpListener, SmtpdService)>,
    pub stop: StopFlag,
    pub drain_limit: Duration,
}

pub struct Shard {
    pub id: usize,
    pub params: Rc<MainParams>,
    pub cleanup: CleanupParams,
    pub committer: Rc<Committer>,
    pub log: Rc<RefCell<ShardLog>>,
    pub qidgen: RefCell<QidGenerator>,
    pub shutdown: ShutdownWatch,
    sessions: RefCell<HashMap<u64, RawFd>>,
    next_session: Cell<u64>,
}

/// Removes a session from the shard's table when its task ends.
struct SessionGuard {
    shard: Rc<Shard>,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shard.sessions.borrow_mut().remove(&self.id);
    }
}

impl Shard {
    fn register(self: &Rc<Self>, fd: RawFd) -> SessionGuard {
        let id = self.next_session.get();
        self.next_session.set(id + 1);
        self.sessions.borrow_mut().insert(id, fd);
        SessionGuard {
            shard: self.clone(),
            id,
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions.borrow().len()
    }
}

/// Open the log, serve until told to stop, drain, and return.
/// `ready` is called once the shard accepts connections (or failed to).
pub async fn run(spec: ShardSpec, ready: impl FnOnce(Result<(), String>)) {
    let opts = LogOptions {
        segment_size: spec.params.sluice_segment_size,
        preallocate: true,
    };
    let (log, report) = match ShardLog::open(&spec.queue_dir, spec.id as u16, opts) {
        Ok(v) => v,
        Err(e) => {
            ready(Err(format!(
                "shard {}: queue log {}: {e}",
                spec.id,
                spec.dir.display()
            )));
            return;
        }
    };
    tracing::info!(
        target: "master",
        "shard {}: recovered {} messages from {} segments{}{}",
        spec.id,
        report.messages,
        report.segments,
        if report.torn_tail_truncated_bytes > 0 {
            format!(", truncated a torn tail of {} bytes", report.torn_tail_truncated_bytes)
        } else {
            String::new()
        },
        if report.corrupt.is_empty() {
            String::new()
        } else {
            format!(", {} corrupt", report.corrupt.len())
        }
    );
    for qid in &report.corrupt {
        tracing::warn!(target: "master", "warning: {qid}: corrupt queue record; message moved to the corrupt queue");
    }
    let floor = report.max_arrival_us;
    let log = Rc::new(RefCell::new(log));
    let committer = Committer::new(log.clone());
    let shard = Rc::new(Shard {
        id: spec.id,
        cleanup: CleanupParams {
            myhostname: spec.params.myhostname.clone(),
            myorigin: spec.params.myorigin.clone(),
            mail_name: spec.params.mail_name.clone(),
            header_size_limit: spec.params.header_size_limit,
            hopcount_limit: spec.params.hopcount_limit,
            always_add_missing_headers: true,
        },
        params: spec.params.clone(),
        committer: committer.clone(),
        log: log.clone(),
        qidgen: RefCell::new(QidGenerator::new(spec.id as u16, floor)),
        shutdown: ShutdownWatch {
            flag: spec.stop.clone(),
            forced: Cell::new(false),
        },
        sessions: RefCell::new(HashMap::new()),
        next_session: Cell::new(0),
    });
    let committer_task = glommio::spawn_local(committer.clone().run());

    // The control socket for postqueue.
    let sock = control::showq_socket(&spec.queue_dir, spec.id);
    let _ = std::fs::remove_file(&sock);
    let control_listener = match glommio::net::UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => {
            ready(Err(format!("bind {}: {e}", sock.display())));
            committer.close();
            committer_task.await;
            return;
        }
    };
    let control_task = {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            loop {
                let accepted = futures_lite::future::or(
                    async { Some(control_listener.accept().await) },
                    async {
                        shard.shutdown.draining().await;
                        None
                    },
                )
                .await;
                match accepted {
                    Some(Ok(stream)) => {
                        let log = shard.log.clone();
                        glommio::spawn_local(async move {
                            let _ = control::serve(stream, log).await;
                        })
                        .detach();
                    }
                    Some(Err(e)) => {
                        tracing::warn!(target: "master", "warning: control socket: {e}");
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                    }
                    None => break,
                }
            }
        })
    };

    let mut accept_tasks = Vec::new();
    for (std_listener, service) in spec.listeners {
        let listener = crate::listen::into_glommio(std_listener);
        let service = Rc::new(service);
        let shard = shard.clone();
        accept_tasks.push(glommio::spawn_local(async move {
            loop {
                let accepted =
                    futures_lite::future::or(async { Some(listener.accept().await) }, async {
                        shard.shutdown.draining().await;
                        None
                    })
                    .await;
                match accepted {
                    Some(Ok(stream)) => {
                        let guard = shard.register(stream.as_raw_fd());
                        let shard = shard.clone();
                        let service = service.clone();
                        glommio::spawn_local(async move {
                            smtpd::serve(shard, service, stream).await;
                            drop(guard);
                        })
                        .detach();
                    }
                    Some(Err(e)) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(target: "smtpd", "warning: accept: {e}");
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                    }
                    None => break,
                }
            }
        }));
    }
    ready(Ok(()));

    shard.shutdown.draining().await;
    for t in accept_tasks {
        t.await;
    }
    control_task.await;
    let _ = std::fs::remove_file(&sock);
    // Let sessions finish up to the drain deadline.
    let deadline = Instant::now() + spec.drain_limit;
    while shard.session_count() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(STOP_POLL).await;
    }
    if shard.session_count() > 0 {
        shard.shutdown.forced.set(true);
        // Wake sessions blocked in read: they answer 421 and close.
        for fd in shard.sessions.borrow().values() {
            // SAFETY: the fd belongs to a live session of this shard (the
            // table entry is removed when the session's task ends).
            unsafe { libc::shutdown(*fd, libc::SHUT_RD) };
        }
        let limit = Instant::now() + FORCED_CLOSE_LIMIT;
        while shard.session_count() > 0 && Instant::now() < limit {
            glommio::timer::sleep(STOP_POLL).await;
        }
    }
    committer.close();
    committer_task.await;
    let (batches, records) = committer.counters();
    tracing::info!(
        target: "master",
        "shard {}: stopped; {records} records in {batches} commits",
        shard.id
    );
}
