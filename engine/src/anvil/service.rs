//! anvil on the shards: each shard owns the entries of the clients that
//! [`shard_for_client`] gives it, and answers the other shards' sessions
//! over the mesh.
//!
//! A session asks and waits ([`AnvilService::connect`],
//! [`AnvilService::event`]); a request for a client this shard owns is
//! answered at once, without the mesh. A disconnect needs no answer. The
//! mesh channels are FIFO per pair of shards, so one session's connect
//! always reaches the owner before its disconnect.
//!
//! When no answer comes (the owner is gone, or does not answer within
//! [`ANVIL_REPLY_LIMIT`]) the caller gets `None` and lets the client in, as
//! Postfix's smtpd does when anvil fails (`ANVIL_STAT_FAIL`). Pending
//! requests are bounded by the sessions on the shard (one each).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalSender};
use hashbrown::HashMap;

use super::{shard_for_client, Anvil, ClientKey, ConnectCounts, Event, ANVIL_TABLE_LIMIT};
use crate::mesh::{Mesh, ShardMsg};

/// How long a session waits for the owning shard's answer before it goes
/// on without one. The owner answers from memory; only a stalled or
/// stopping shard takes this long.
pub const ANVIL_REPLY_LIMIT: Duration = Duration::from_secs(10);

/// A request to the shard that owns `key`'s entry.
#[derive(Debug)]
pub enum AnvilRequest {
    Connect {
        from: usize,
        id: u64,
        key: ClientKey,
    },
    Disconnect {
        key: ClientKey,
    },
    Event {
        from: usize,
        id: u64,
        key: ClientKey,
        event: Event,
    },
}

/// The owner's answer to request `id`.
#[derive(Debug)]
pub struct AnvilReply {
    pub id: u64,
    pub answer: Answer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Connect(ConnectCounts),
    Event(u32),
}

/// One shard's anvil: its slice of the table, and its pending questions.
pub struct AnvilService {
    id: usize,
    mesh: Rc<Mesh>,
    table: RefCell<Anvil>,
    pending: RefCell<HashMap<u64, LocalSender<Answer>>>,
    next_id: Cell<u64>,
}

impl AnvilService {
    pub fn new(id: usize, mesh: Rc<Mesh>, time_unit: Duration) -> Rc<AnvilService> {
        Rc::new(AnvilService {
            id,
            mesh,
            table: RefCell::new(Anvil::new(time_unit, ANVIL_TABLE_LIMIT)),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        })
    }

    pub fn set_time_unit(&self, time_unit: Duration) {
        self.table.borrow_mut().set_time_unit(time_unit);
    }

    /// Register a connection; the counts include it.
    pub async fn connect(&self, key: ClientKey) -> Option<ConnectCounts> {
        let owner = self.owner(&key);
        if owner == self.id {
            return Some(self.table.borrow_mut().connect(&key, Instant::now()));
        }
        let from = self.id;
        match self
            .ask(owner, |id| AnvilRequest::Connect { from, id, key })
            .await?
        {
            Answer::Connect(c) => Some(c),
            Answer::Event(_) => None,
        }
    }

    /// The connection ended (only after a [`connect`](Self::connect)).
    pub fn disconnect(&self, key: ClientKey) {
        let owner = self.owner(&key);
        if owner == self.id {
            self.table.borrow_mut().disconnect(&key, Instant::now());
            return;
        }
        let mesh = self.mesh.clone();
        glommio::spawn_local(async move {
            let _ = mesh
                .send(owner, ShardMsg::Anvil(AnvilRequest::Disconnect { key }))
                .await;
        })
        .detach();
    }

    /// Count one MAIL, RCPT or TLS handshake; the rate includes it.
    pub async fn event(&self, key: ClientKey, event: Event) -> Option<u32> {
        let owner = self.owner(&key);
        if owner == self.id {
            return Some(self.table.borrow_mut().event(&key, event, Instant::now()));
        }
        let from = self.id;
        match self
            .ask(owner, |id| AnvilRequest::Event {
                from,
                id,
                key,
                event,
            })
            .await?
        {
            Answer::Event(n) => Some(n),
            Answer::Connect(_) => None,
        }
    }

    /// A request from another shard's session, for a client we own.
    pub fn handle(&self, request: AnvilRequest) {
        let now = Instant::now();
        let mut table = self.table.borrow_mut();
        let (to, reply) = match request {
            AnvilRequest::Disconnect { key } => {
                table.disconnect(&key, now);
                return;
            }
            AnvilRequest::Connect { from, id, key } => {
                let answer = Answer::Connect(table.connect(&key, now));
                (from, AnvilReply { id, answer })
            }
            AnvilRequest::Event {
                from,
                id,
                key,
                event,
            } => {
                let answer = Answer::Event(table.event(&key, event, now));
                (from, AnvilReply { id, answer })
            }
        };
        let mesh = self.mesh.clone();
        glommio::spawn_local(async move {
            let _ = mesh.send(to, ShardMsg::AnvilReply(reply)).await;
        })
        .detach();
    }

    /// The owner's answer to one of our sessions' questions.
    pub fn on_reply(&self, reply: AnvilReply) {
        if let Some(tx) = self.pending.borrow_mut().remove(&reply.id) {
            let _ = tx.try_send(reply.answer);
        }
    }

    fn owner(&self, key: &ClientKey) -> usize {
        shard_for_client(key.addr, self.mesh.shards())
    }

    async fn ask(&self, owner: usize, request: impl FnOnce(u64) -> AnvilRequest) -> Option<Answer> {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        let answer = async {
            if self
                .mesh
                .send(owner, ShardMsg::Anvil(request(id)))
                .await
                .is_err()
            {
                return None;
            }
            rx.recv().await
        };
        let limit = async {
            glommio::timer::sleep(ANVIL_REPLY_LIMIT).await;
            tracing::warn!(target: "smtpd", "warning: problem talking to service anvil on shard {owner}: no answer within {}s", ANVIL_REPLY_LIMIT.as_secs());
            None
        };
        let got = futures_lite::future::or(answer, limit).await;
        self.pending.borrow_mut().remove(&id);
        got
    }
}
