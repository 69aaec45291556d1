//! The committer over a disk whose fdatasync fails (issue 7): a batch
//! answered with an error never comes back after a restart, while the
//! mail around it in the same segment does. The fault is injected through
//! [`Committer::fail_syncs`], compiled only for tests.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use sluice_protocols::envelope::{Envelope, Recipient};
use sluice_storage::log::{LogOptions, ShardLog};
use sluice_storage::qid::{QidGenerator, QueueId};
use sluice_storage::record::{MessageRecord, QueueState, RecipientStatus, Record};

use super::{CommitError, Committer};

const NOW: u64 = 1_700_000_000_000_000;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "sluice-engine-commit-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts() -> LogOptions {
    LogOptions {
        segment_size: 1 << 20,
        preallocate: false,
    }
}

fn message(qid: &QueueId) -> Record {
    Record::Message(MessageRecord {
        qid: qid.clone(),
        arrival_us: NOW,
        envelope: Envelope {
            sender: "alice@example.com".into(),
            recipients: vec![Recipient::new("bob@example.org")],
            ..Envelope::default()
        },
        client: None,
        content: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
    })
}

fn deferred(qid: &QueueId) -> Record {
    Record::RcptStatus {
        qid: qid.clone(),
        rcpt: 0,
        status: RecipientStatus::Deferred {
            reason: "connect to example.org: Connection refused".into(),
            next_attempt_us: NOW + 300_000_000,
        },
    }
}

/// Runs `scenario` on a fresh executor with a committer over the shard log
/// in `dir`, then closes the committer and waits for its task.
fn with_committer<F, Fut>(dir: &Path, scenario: F)
where
    F: FnOnce(Rc<Committer>, Rc<RefCell<ShardLog>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let dir = dir.to_path_buf();
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move {
            let (log, _) = ShardLog::open(&dir, 0, opts()).unwrap();
            let log = Rc::new(RefCell::new(log));
            let committer = Committer::new(log.clone());
            let task = glommio::spawn_local(committer.clone().run());
            scenario(committer.clone(), log).await;
            committer.close();
            task.await;
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Queue IDs that are live after a restart.
fn live_after_restart(dir: &Path) -> Vec<QueueId> {
    let (log, report) = ShardLog::open(dir, 0, opts()).unwrap();
    assert!(report.corrupt.is_empty(), "{report:?}");
    let mut live: Vec<QueueId> = log.index().iter().map(|m| m.qid.clone()).collect();
    live.sort();
    live
}

fn qids(n: usize) -> Vec<QueueId> {
    let mut ids = QidGenerator::new(0, 0);
    (0..n).map(|_| ids.next(NOW)).collect()
}

/// The tester's scenario: A is deferred in segment 1, B's fdatasync fails
/// (451), C comes later. The committer writes the void on its own; after a
/// restart A and C are there and B is not.
#[test]
fn a_refused_message_is_not_delivered_after_a_restart() {
    let dir = TempDir::new("refused");
    let q = qids(3);
    let s = q.clone();
    with_committer(&dir.0, move |c, log| async move {
        c.commit(&message(&s[0])).await.unwrap();
        c.commit(&deferred(&s[0])).await.unwrap();
        c.fail_syncs.set(1);
        assert_eq!(c.commit(&message(&s[1])).await, Err(CommitError::Io));
        assert!(log.borrow().index().get(&s[1]).is_none());
        // Degraded: new mail is refused at once.
        assert_eq!(c.commit(&message(&s[2])).await, Err(CommitError::Io));
        // No mail comes: the committer writes the void by itself.
        for _ in 0..100 {
            if log.borrow().voids_pending() == 0 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            log.borrow().voids_pending(),
            0,
            "the void was never written"
        );
        c.commit(&message(&s[2])).await.unwrap();
    });
    assert_eq!(live_after_restart(&dir.0), [q[0].clone(), q[2].clone()]);
    let (log, _) = ShardLog::open(&dir.0, 0, opts()).unwrap();
    assert_eq!(log.index().get(&q[0]).unwrap().state, QueueState::Deferred);
}

/// A refused "delivered" and `Done` did not happen: the index (which qmgr
/// reads) still has the recipient pending, and so does a restart.
#[test]
fn a_refused_state_change_did_not_happen() {
    let dir = TempDir::new("state");
    let q = qids(1);
    let s = q.clone();
    with_committer(&dir.0, move |c, log| async move {
        c.commit(&message(&s[0])).await.unwrap();
        c.fail_syncs.set(1);
        let done = [
            Record::RcptStatus {
                qid: s[0].clone(),
                rcpt: 0,
                status: RecipientStatus::Delivered,
            },
            Record::Done { qid: s[0].clone() },
        ];
        assert_eq!(c.commit_all(&done).await, Err(CommitError::Io));
        let log = log.borrow();
        let m = log.index().get(&s[0]).expect("still queued");
        assert!(!m.recipients[0].done);
    });
    // Closing wrote the void: the state change stays undone.
    let (log, _) = ShardLog::open(&dir.0, 0, opts()).unwrap();
    assert!(!log.index().get(&q[0]).unwrap().recipients[0].done);
}

/// The void's own write fails: nothing is acknowledged meanwhile, the
/// committer keeps trying, and neither refused batch comes back.
#[test]
fn the_committer_keeps_trying_to_write_the_void() {
    let dir = TempDir::new("again");
    let q = qids(3);
    let s = q.clone();
    with_committer(&dir.0, move |c, log| async move {
        c.commit(&message(&s[0])).await.unwrap();
        c.fail_syncs.set(2);
        assert_eq!(c.commit(&message(&s[1])).await, Err(CommitError::Io));
        // The first probe (the void alone) fails too; the second succeeds.
        for _ in 0..100 {
            if log.borrow().voids_pending() == 0 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(log.borrow().voids_pending(), 0);
        c.commit(&message(&s[2])).await.unwrap();
    });
    assert_eq!(live_after_restart(&dir.0), [q[0].clone(), q[2].clone()]);
}
