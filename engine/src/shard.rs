//! A shard: one glommio executor that owns its listeners' accepted
//! connections, its queue log directory, its index and its committer.
//!
//! Shards share nothing but the immutable configuration and the stop flag
//! set by the master thread; everything else lives in `Rc`/`RefCell` on the
//! shard's own thread.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use sluice_agents::cleanup::CleanupParams;
use sluice_agents::resolve::ResolveParams;
use sluice_protocols::smtp::server::Budget;
use sluice_storage::log::{LogOptions, ShardLog};
use sluice_storage::qid::QidGenerator;

use sluice_agents::delivery::Destination;

use crate::active::{Active, Router};
use crate::anvil::service::AnvilService;
use crate::commit::Committer;
use crate::config::MainParams;
use crate::control;
use crate::dispatch::{Dispatch, OutcomeSink};
use crate::mesh::{shard_for, Mesh, MeshEnds, Outcome, QmgrEntry, ShardMsg};
use crate::pickup::Pickup;
use crate::process_limit::{shard_share, ServiceListeners};
use crate::services::ServiceParams;
use crate::smtpd::SmtpdService;

/// While stopping: how often a shard looks whether its last sessions and
/// deliveries are gone (bounded by the drain limits below; nothing polls
/// while the shard runs).
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// After the drain deadline, how long closing sessions get to write their
/// 421 and go.
const FORCED_CLOSE_LIMIT: Duration = Duration::from_secs(5);

pub use crate::signal::StopFlag;

/// The shard-local view of shutdown.
pub struct ShutdownWatch {
    flag: StopFlag,
    forced: Cell<bool>,
}

impl ShutdownWatch {
    /// Resolves once the master asked to stop (woken by the master, never
    /// by a timer).
    pub async fn draining(&self) {
        self.flag.draining().await
    }
    pub fn is_forced(&self) -> bool {
        self.forced.get()
    }
}

/// What a shard is given at start.
/// A reloaded configuration, published by the master for every shard.
pub struct ReloadSet {
    pub params: MainParams,
    pub services: ServiceParams,
    /// Each listener's smtpd parameters, in the order of the listeners the
    /// shards were started with.
    pub listeners: Vec<crate::config::SmtpdParams>,
}

/// The master's mailbox for reloads: shards wait for a new generation and
/// take the latest immutable configuration.
pub type ReloadBox = crate::signal::ReloadBox<ReloadSet>;

pub struct ShardSpec {
    pub id: usize,
    pub reload: ReloadBox,
    pub dir: PathBuf,
    pub queue_dir: PathBuf,
    pub params: Rc<MainParams>,
    pub services: ServiceParams,
    pub mesh: MeshEnds,
    /// Each listener's socket (`None` where this shard's share of the
    /// service's process limit is 0: it does not listen there) and service.
    pub listeners: Vec<(Option<std::net::TcpListener>, SmtpdService)>,
    pub stop: StopFlag,
    /// Shards in the daemon, for the process-limit shares.
    pub shards: usize,
    pub drain_limit: Duration,
}

/// How long running deliveries may go on after the stop before the shard
/// exits anyway (their messages stay queued and are tried again).
const DELIVERY_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Outcomes and entries cross shards through the mesh, or stay here.
struct Links {
    id: usize,
    mesh: Rc<Mesh>,
    active: std::cell::OnceCell<Rc<Active>>,
    dispatch: std::cell::OnceCell<Rc<Dispatch>>,
}

impl Router for Links {
    fn route(&self, dest: Destination, entries: Vec<QmgrEntry>) {
        let to = shard_for(&dest, self.mesh.shards());
        if to == self.id {
            if let Some(d) = self.dispatch.get() {
                d.enqueue(dest, entries);
            }
            return;
        }
        let mesh = self.mesh.clone();
        glommio::spawn_local(async move {
            if mesh.send(to, ShardMsg::Enqueue(dest, entries)).await.is_err() {
                tracing::warn!(target: "qmgr", "warning: shard {to} is gone; entries dropped until the next queue run");
            }
        })
        .detach();
    }
}

impl OutcomeSink for Links {
    fn deliver_outcome(&self, origin: usize, outcome: Outcome) {
        if origin == self.id {
            if let Some(a) = self.active.get() {
                glommio::spawn_local(a.clone().on_outcome(outcome)).detach();
            }
            return;
        }
        let mesh = self.mesh.clone();
        glommio::spawn_local(async move {
            if mesh.send(origin, ShardMsg::Outcome(outcome)).await.is_err() {
                tracing::warn!(target: "qmgr", "warning: shard {origin} is gone; an outcome is lost (the message is retried)");
            }
        })
        .detach();
    }
}

pub struct Shard {
    pub id: usize,
    params: RefCell<Rc<MainParams>>,
    cleanup: RefCell<Rc<CleanupParams>>,
    /// trivial-rewrite's resolver, for smtpd's relay check (qmgr keeps its
    /// own copy in `active`): the same value, so both judge one address.
    resolve: RefCell<Rc<ResolveParams>>,
    /// Each listener's smtpd parameters, in master.cf order (replaced by
    /// `sluice reload`; sessions keep the ones they started with).
    smtpd_services: RefCell<Vec<Rc<SmtpdService>>>,
    pub committer: Rc<Committer>,
    pub log: Rc<RefCell<ShardLog>>,
    pub qidgen: Rc<RefCell<QidGenerator>>,
    pub shutdown: ShutdownWatch,
    /// qmgr's storing half for this shard's messages.
    pub active: Rc<Active>,
    /// qmgr's scheduling half for the destinations this shard owns.
    pub dispatch: Rc<Dispatch>,
    /// pickup runs on shard 0 only.
    pub pickup: Option<Rc<Pickup>>,
    /// This shard's slice of the anvil table, and its questions to others.
    pub anvil: Rc<AnvilService>,
    sessions: RefCell<HashMap<u64, RawFd>>,
    next_session: Cell<u64>,
    /// Spare socket read buffers: a new connection per message (the common
    /// smtp-source pattern) would otherwise allocate and zero one each time.
    read_buffers: RefCell<Vec<Vec<u8>>>,
    /// This shard's share of `sluice_inflight_memory_limit`: the message
    /// content its smtpd sessions may hold.
    pub content_budget: Budget,
}

/// A shard's share of `sluice_inflight_memory_limit` (0 = unlimited).
/// Each shard owns its share, so no count is shared between threads; the
/// price is that one shard may refuse while another has room. A share is
/// never below twice `message_size_limit` (a message and its cleaned copy),
/// so that a message of the largest size can always be received: were it
/// smaller, such messages would get 451 4.3.0 forever (`MainParams` warns
/// when this floor raises the configured total).
pub fn content_share(p: &MainParams) -> u64 {
    match p.sluice_inflight_memory_limit {
        0 => 0,
        limit => (limit / p.sluice_shards.max(1) as u64)
            .max(p.smtpd.message_size_limit.saturating_mul(2))
            .max(1),
    }
}

/// Spare large read buffers kept per shard (64 KiB each, `smtpd_input::READ_MAX`).
const SPARE_READ_BUFFERS: usize = 64;

/// Removes a session from the shard's table when its task ends.
pub(crate) struct SessionGuard {
    shard: Rc<Shard>,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shard.sessions.borrow_mut().remove(&self.id);
    }
}

impl Shard {
    pub(crate) fn register(self: &Rc<Self>, fd: RawFd) -> SessionGuard {
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

    pub fn params(&self) -> Rc<MainParams> {
        self.params.borrow().clone()
    }

    pub fn cleanup(&self) -> Rc<CleanupParams> {
        self.cleanup.borrow().clone()
    }

    pub fn resolve(&self) -> Rc<ResolveParams> {
        self.resolve.borrow().clone()
    }

    pub(crate) fn smtpd_service(&self, i: usize) -> Option<Rc<SmtpdService>> {
        self.smtpd_services.borrow().get(i).cloned()
    }

    /// Apply a reloaded configuration: new sessions, new decisions and new
    /// deliveries use it; nothing in flight is dropped.
    fn apply_reload(&self, r: &ReloadSet) {
        *self.params.borrow_mut() = Rc::new(r.params.clone());
        self.content_budget.set_limit(content_share(&r.params));
        *self.cleanup.borrow_mut() = Rc::new(r.services.cleanup.clone());
        *self.resolve.borrow_mut() = Rc::new(r.services.resolve.clone());
        let hostname = r.params.myhostname.clone();
        let mut services = self.smtpd_services.borrow_mut();
        for (i, smtpd) in r.listeners.iter().enumerate() {
            if let Some(slot) = services.get_mut(i) {
                *slot = Rc::new(SmtpdService::new(
                    &slot.name,
                    slot.process_limit,
                    smtpd.clone(),
                    &hostname,
                ));
            }
        }
        drop(services);
        self.anvil.set_time_unit(r.params.anvil_rate_time_unit);
        self.active.set_params(r.services.active());
        self.dispatch.set_params(
            r.services.smtp.clone(),
            r.services.tls_client(),
            r.services.resolver(),
            r.services.scheduler_params(),
        );
        tracing::info!(target: "master", "shard {}: configuration reloaded", self.id);
    }

    pub fn take_read_buffer(&self, len: usize) -> Vec<u8> {
        match self.read_buffers.borrow_mut().pop() {
            Some(b) if b.len() == len => b,
            _ => vec![0u8; len],
        }
    }

    pub fn return_read_buffer(&self, b: Vec<u8>) {
        let mut spares = self.read_buffers.borrow_mut();
        if spares.len() < SPARE_READ_BUFFERS {
            spares.push(b);
        }
    }

    /// The master asked us to stop.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.flag.is_draining()
    }
}

/// Group the shard's listeners by master.cf service, each group with this
/// shard's share of the service's process limit.
fn service_listeners(
    listeners: Vec<(Option<std::net::TcpListener>, SmtpdService)>,
    shard: usize,
    shards: usize,
) -> Vec<ServiceListeners> {
    let mut out: Vec<ServiceListeners> = Vec::new();
    for (index, (sock, service)) in listeners.into_iter().enumerate() {
        let Some(sock) = sock else { continue };
        let listener = crate::listen::into_glommio(sock);
        match out.iter_mut().find(|s| s.name == service.name) {
            Some(s) => s.listeners.push((index, listener)),
            None => out.push(ServiceListeners {
                share: shard_share(service.process_limit, shard, shards),
                name: service.name.clone(),
                listeners: vec![(index, listener)],
            }),
        }
    }
    out
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
        "shard {}: recovered {} messages from {} segments{}{}{}",
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
        },
        if report.voided_records > 0 {
            format!(", skipped {} records of refused batches", report.voided_records)
        } else {
            String::new()
        }
    );
    for qid in &report.corrupt {
        tracing::warn!(target: "master", "warning: {qid}: corrupt queue record; message moved to the corrupt queue");
    }
    let floor = report.max_arrival_us;
    let log = Rc::new(RefCell::new(log));
    let committer = Committer::new(log.clone());
    let qidgen = Rc::new(RefCell::new(QidGenerator::new(spec.id as u16, floor)));
    let (mesh, receivers) = Mesh::connect(spec.id, spec.mesh).await;
    let links = Rc::new(Links {
        id: spec.id,
        mesh: Rc::new(mesh),
        active: std::cell::OnceCell::new(),
        dispatch: std::cell::OnceCell::new(),
    });
    let active = Active::new(
        spec.id,
        log.clone(),
        committer.clone(),
        qidgen.clone(),
        spec.services.active(),
    );
    active.set_router(links.clone());
    let dispatch = Dispatch::new(
        spec.id,
        spec.services.scheduler(),
        spec.services.scache(),
        spec.services.resolver(),
        spec.services.smtp.clone(),
        spec.services.tls_client(),
        links.clone(),
    );
    let _ = links.active.set(active.clone());
    let _ = links.dispatch.set(dispatch.clone());
    let pickup = (spec.id == 0).then(|| Pickup::new(&spec.queue_dir));
    let services: Vec<Rc<SmtpdService>> = spec
        .listeners
        .iter()
        .map(|(_, s)| {
            Rc::new(SmtpdService::new(
                &s.name,
                s.process_limit,
                s.params.clone(),
                &spec.params.myhostname,
            ))
        })
        .collect();
    let anvil = AnvilService::new(
        spec.id,
        links.mesh.clone(),
        spec.params.anvil_rate_time_unit,
    );
    let shard = Rc::new(Shard {
        id: spec.id,
        cleanup: RefCell::new(Rc::new(spec.services.cleanup.clone())),
        resolve: RefCell::new(Rc::new(spec.services.resolve.clone())),
        params: RefCell::new(spec.params.clone()),
        smtpd_services: RefCell::new(services),
        committer: committer.clone(),
        log: log.clone(),
        qidgen,
        active: active.clone(),
        dispatch: dispatch.clone(),
        pickup: pickup.clone(),
        anvil: anvil.clone(),
        shutdown: ShutdownWatch {
            flag: spec.stop.clone(),
            forced: Cell::new(false),
        },
        sessions: RefCell::new(HashMap::new()),
        next_session: Cell::new(0),
        read_buffers: RefCell::new(Vec::new()),
        content_budget: Budget::new(content_share(&spec.params)),
    });
    let committer_task = glommio::spawn_local(committer.clone().run());
    let active_task = glommio::spawn_local(active.clone().run());
    let dispatch_task = glommio::spawn_local(dispatch.clone().run());
    let pickup_task = pickup
        .clone()
        .map(|p| glommio::spawn_local(p.run(shard.clone(), active.clone())));
    let mesh_tasks: Vec<_> = receivers
        .into_iter()
        .map(|rx| {
            let active = active.clone();
            let dispatch = dispatch.clone();
            let anvil = anvil.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = rx.recv().await {
                    match msg {
                        ShardMsg::Enqueue(dest, entries) => dispatch.enqueue(dest, entries),
                        ShardMsg::Outcome(o) => {
                            glommio::spawn_local(active.clone().on_outcome(o)).detach();
                        }
                        ShardMsg::Anvil(request) => anvil.handle(request),
                        ShardMsg::AnvilReply(reply) => anvil.on_reply(reply),
                        ShardMsg::Lost => {}
                    }
                }
            })
        })
        .collect();

    // The control socket for postqueue. Anyone may connect (mode 0666, as
    // Postfix's public/showq): each request is checked against its
    // caller's uid on our side (control::serve).
    let sock = control::showq_socket(&spec.queue_dir, spec.id);
    let _ = std::fs::remove_file(&sock);
    let bound = glommio::net::UnixListener::bind(&sock).and_then(|l| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666))?;
        Ok(l)
    });
    let control_listener = match bound {
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
                if shard.shutdown_requested() {
                    break;
                }
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
                        let shard = shard.clone();
                        glommio::spawn_local(async move {
                            let _ = control::serve(stream, shard).await;
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

    let accept_tasks: Vec<_> = service_listeners(spec.listeners, spec.id, spec.shards)
        .into_iter()
        .map(|svc| glommio::spawn_local(crate::process_limit::accept_loop(shard.clone(), svc)))
        .collect();
    let reload_task = {
        let shard = shard.clone();
        let reload = spec.reload.clone();
        glommio::spawn_local(async move {
            let mut seen = reload.generation();
            loop {
                let changed =
                    futures_lite::future::or(async { Some(reload.changed(seen).await) }, async {
                        shard.shutdown.draining().await;
                        None
                    })
                    .await;
                let Some(g) = changed else { break };
                seen = g;
                if let Some(r) = reload.latest() {
                    shard.apply_reload(&r);
                }
            }
        })
    };
    ready(Ok(()));

    shard.shutdown.draining().await;
    reload_task.await;
    for t in accept_tasks {
        t.await;
    }
    control_task.await;
    let _ = std::fs::remove_file(&sock);
    // Let sessions finish up to the drain deadline.
    let deadline = Instant::now() + spec.drain_limit;
    while shard.session_count() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(DRAIN_POLL).await;
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
            glommio::timer::sleep(DRAIN_POLL).await;
        }
    }
    // Stop starting deliveries; let running ones finish for a while.
    active.close();
    dispatch.close();
    active_task.await;
    if let Some(t) = pickup_task {
        t.await;
    }
    let limit = Instant::now() + DELIVERY_DRAIN_LIMIT;
    while dispatch.running() > 0 && Instant::now() < limit {
        glommio::timer::sleep(DRAIN_POLL).await;
    }
    // Let outcomes that are on their way be recorded.
    glommio::timer::sleep(DRAIN_POLL).await;
    committer.close();
    committer_task.await;
    dispatch_task.await;
    // The mesh receivers end when every other shard dropped its senders;
    // they hold nothing durable, so they are not awaited.
    drop(mesh_tasks);
    let (batches, records) = committer.counters();
    tracing::info!(
        target: "master",
        "shard {}: stopped; {records} records in {batches} commits",
        shard.id
    );
}
