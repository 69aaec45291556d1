//! The shards' mesh: one bounded channel from every shard to every other.
//!
//! Cross-shard traffic is typed ([`ShardMsg`]) and small: qmgr entries go
//! from the storing shard to the destination's scheduling shard, delivery
//! outcomes come back; sessions ask the shard that owns their client's
//! anvil entry (`crate::anvil`). A full channel is backpressure (the sender awaits),
//! never a drop. A shard talks to itself by direct call, not through here.

use std::path::PathBuf;
use std::sync::Arc;

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use sluice_agents::delivery::{DeliveryRcpt, DeliveryReport, Destination};
use sluice_protocols::envelope::MailParams;
use sluice_storage::qid::QueueId;

/// Capacity of each shard-to-shard channel. glommio's shared channels
/// move 10–20 M small messages/s at capacity ≥ 1024 (DESIGN.md); entries
/// are per recipient, so this bounds a burst at 1024 recipients in flight
/// per pair before the sender waits.
pub const MESH_CAPACITY: usize = 1024;

/// What every recipient entry of one message shares: read once, never
/// copied (the content stays in one allocation, shared by reference).
#[derive(Debug)]
pub struct MessageShared {
    pub origin: usize,
    pub qid: QueueId,
    pub sender: String,
    pub mail: MailParams,
    pub arrival_us: u64,
    /// When the message entered the active queue (delays `a`/`b`).
    pub active_us: u64,
    pub content: Arc<Vec<u8>>,
    /// Where the content lives, for the logs of a later reader.
    pub segment: Option<PathBuf>,
}

/// One recipient for one destination: qmgr's entry.
#[derive(Clone, Debug)]
pub struct QmgrEntry {
    pub msg: Arc<MessageShared>,
    pub rcpt: DeliveryRcpt,
}

impl crate::qmgr::Entry for QmgrEntry {
    type Key = QueueId;
    fn message(&self) -> &QueueId {
        &self.msg.qid
    }
}

/// A delivery's outcome on its way back to the storing shard.
#[derive(Debug)]
pub struct Outcome {
    pub qid: QueueId,
    pub destination: Destination,
    pub report: DeliveryReport,
}

#[derive(Debug)]
pub enum ShardMsg {
    /// Entries for destinations this shard schedules.
    Enqueue(Destination, Vec<QmgrEntry>),
    /// Results for messages this shard stores.
    Outcome(Outcome),
    /// A question or a disconnect for the anvil entries this shard owns.
    Anvil(crate::anvil::service::AnvilRequest),
    /// anvil's answer to one of this shard's sessions.
    AnvilReply(crate::anvil::service::AnvilReply),
    /// Stands for a message a failed send did not hand back.
    Lost,
}

/// One shard's unconnected ends, made on the master thread.
pub struct MeshEnds {
    /// `senders[to]`; `None` for the shard itself.
    pub senders: Vec<Option<SharedSender<ShardMsg>>>,
    pub receivers: Vec<SharedReceiver<ShardMsg>>,
}

/// Build the full mesh for `n` shards.
pub fn build(n: usize) -> Vec<MeshEnds> {
    let mut ends: Vec<MeshEnds> = (0..n)
        .map(|_| MeshEnds {
            senders: (0..n).map(|_| None).collect(),
            receivers: Vec::new(),
        })
        .collect();
    for from in 0..n {
        for to in 0..n {
            if from == to {
                continue;
            }
            let (tx, rx) = shared_channel::new_bounded(MESH_CAPACITY);
            ends[from].senders[to] = Some(tx);
            ends[to].receivers.push(rx);
        }
    }
    ends
}

/// A shard's connected ends.
pub struct Mesh {
    pub id: usize,
    senders: Vec<Option<ConnectedSender<ShardMsg>>>,
}

impl Mesh {
    /// Connect this shard's ends (inside its executor); returns the
    /// receivers to poll.
    pub async fn connect(id: usize, ends: MeshEnds) -> (Mesh, Vec<ConnectedReceiver<ShardMsg>>) {
        // A connect completes only when the other end connects too, so all
        // ends connect at once (one after another would deadlock shards
        // that wait for each other). glommio notices the peer's connect
        // only when its reactor runs, and nothing wakes a parked executor
        // for it: a ticking timer keeps the reactor turning meanwhile.
        let connecting = std::rc::Rc::new(std::cell::Cell::new(true));
        let ticker = {
            let connecting = connecting.clone();
            glommio::spawn_local(async move {
                while connecting.get() {
                    glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        };
        let senders: Vec<_> = ends
            .senders
            .into_iter()
            .map(|s| s.map(|s| glommio::spawn_local(s.connect())))
            .collect();
        let receivers: Vec<_> = ends
            .receivers
            .into_iter()
            .map(|r| glommio::spawn_local(r.connect()))
            .collect();
        let mut connected = Vec::with_capacity(senders.len());
        for s in senders {
            connected.push(match s {
                Some(t) => Some(t.await),
                None => None,
            });
        }
        let mut rx = Vec::with_capacity(receivers.len());
        for r in receivers {
            rx.push(r.await);
        }
        connecting.set(false);
        ticker.await;
        (
            Mesh {
                id,
                senders: connected,
            },
            rx,
        )
    }

    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Send to another shard, waiting while its channel is full. Returns
    /// the message if that shard has gone (shutdown).
    pub async fn send(&self, to: usize, msg: ShardMsg) -> Result<(), ShardMsg> {
        match self.senders.get(to).and_then(|s| s.as_ref()) {
            Some(s) => s.send(msg).await.map_err(|e| match e {
                glommio::GlommioError::Closed(glommio::ResourceType::Channel(m))
                | glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m)) => m,
                // Other errors carry no message back; nothing to return.
                _ => ShardMsg::Lost,
            }),
            None => Err(msg),
        }
    }
}

/// Which shard schedules a destination: a pure function of the
/// destination (FNV-1a over transport and nexthop, lower-cased).
pub fn shard_for(dest: &Destination, shards: usize) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in dest
        .transport
        .bytes()
        .chain(std::iter::once(b':'))
        .chain(dest.nexthop.bytes())
    {
        h ^= u64::from(b.to_ascii_lowercase());
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_is_stable_and_case_blind() {
        let a = Destination::new("smtp", "Example.ORG");
        let b = Destination::new("smtp", "example.org");
        assert_eq!(shard_for(&a, 4), shard_for(&b, 4));
        assert_eq!(shard_for(&a, 1), 0);
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|i| shard_for(&Destination::new("smtp", format!("d{i}.example")), 4))
            .collect();
        assert_eq!(spread.len(), 4, "destinations spread over every shard");
    }
}
