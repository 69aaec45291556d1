//! master.cf `maxproc` for smtpd services: how many sessions one service
//! holds at once, and the accept loop that keeps to it.
//!
//! **Per shard or in total.** Postfix's maxproc bounds a service's
//! processes in total. Sluice keeps it a total without cross-shard
//! accounting: each shard gets a fixed share, and the shares add up to
//! exactly maxproc ([`shard_share`]: ⌊maxproc/shards⌋, plus one for the
//! first `maxproc mod shards` shards). A shard whose share is 0 does not
//! listen on that service at all, so the kernel never routes a connection
//! to it. The total therefore never exceeds maxproc. The price: SO_REUSEPORT
//! hashes each connection to one shard, and a connection that lands on a
//! full shard waits there even while another shard has a free slot (with
//! the default maxproc of 100 on a few shards, each share is large and
//! this rarely shows). A shared counter would need a cross-shard message
//! per connection, or shared memory between shards, which the design
//! rules out.
//!
//! **Beyond the cap, the kernel's backlog.** At its share a shard stops
//! accepting: the loop waits for a slot (a semaphore that a session's end
//! releases, an event, no timer), then for a connection, then accepts it.
//! Connections meanwhile complete their handshake into the listening
//! socket's backlog (`listen::LISTEN_BACKLOG`) and get no greeting, as
//! with Postfix's master at its process limit; none is accepted and
//! dropped. One service's addresses (`inet_interfaces = all` gives one
//! socket per address family) share one slot pool per shard: the loop waits
//! until any of them has a connection, without accepting on the others.
//!
//! Trust: none needed; it moves accepted sockets to [`crate::smtpd`].

use std::future::Future;
use std::rc::Rc;

use glommio::net::TcpListener;
use glommio::sync::Semaphore;

use crate::shard::Shard;
use crate::smtpd;

/// This shard's part of a service's `process_limit` (`None`: no limit).
pub fn shard_share(process_limit: u32, shard: usize, shards: usize) -> Option<u32> {
    if process_limit == 0 {
        return None;
    }
    let n = shards.max(1) as u64;
    let limit = u64::from(process_limit);
    let extra = u64::from((shard as u64) < limit % n);
    Some((limit / n + extra) as u32)
}

/// One service's listeners on this shard, each with its index in the
/// shard's listener list (for its current smtpd parameters).
pub struct ServiceListeners {
    pub name: String,
    pub share: Option<u32>,
    pub listeners: Vec<(usize, TcpListener)>,
}

/// Accept on one service's listeners until the shard drains.
pub async fn accept_loop(shard: Rc<Shard>, svc: ServiceListeners) {
    let slots = svc.share.map(|n| Rc::new(Semaphore::new(u64::from(n))));
    loop {
        // A steady stream of connections must not keep a draining shard
        // accepting (or() polls its first future first).
        if shard.shutdown_requested() {
            break;
        }
        let permit = match &slots {
            Some(s) => {
                let acquired = futures_lite::future::or(
                    async { Some(Semaphore::acquire_static_permit(s, 1).await) },
                    async {
                        shard.shutdown.draining().await;
                        None
                    },
                )
                .await;
                match acquired {
                    Some(Ok(p)) => Some(p),
                    // Closed semaphore or draining: stop.
                    _ => break,
                }
            }
            None => None,
        };
        let Some(ready) = wait_any(&shard, &svc.listeners).await else {
            break;
        };
        let (index, listener) = &svc.listeners[ready];
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shard.shutdown.draining().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok(stream)) => {
                let Some(service) = shard.smtpd_service(*index) else {
                    continue;
                };
                let guard = shard.register(std::os::fd::AsRawFd::as_raw_fd(&stream));
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    smtpd::serve(shard, service, stream).await;
                    drop(guard);
                    // The session's end frees its slot: the loop wakes.
                    drop(permit);
                })
                .detach();
            }
            Some(Err(e)) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(target: "smtpd", "warning: accept: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// The index of a listener with a connection waiting, without accepting
/// anything (a readiness poll, safe to abandon); `None` once draining.
async fn wait_any(shard: &Shard, listeners: &[(usize, TcpListener)]) -> Option<usize> {
    if listeners.len() == 1 {
        // One socket: accept() itself waits (and takes the fast path).
        return Some(0);
    }
    let mut polls: Vec<_> = listeners
        .iter()
        .map(|(_, l)| Box::pin(l.readable()))
        .collect();
    let readable = futures_lite::future::poll_fn(|cx| {
        for (i, p) in polls.iter_mut().enumerate() {
            if p.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(i);
            }
        }
        std::task::Poll::Pending
    });
    futures_lite::future::or(async { Some(readable.await) }, async {
        shard.shutdown.draining().await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::shard_share;

    #[test]
    fn shares_add_up_to_the_limit() {
        for limit in 0..40u32 {
            for shards in 1..9usize {
                let shares: Vec<Option<u32>> =
                    (0..shards).map(|s| shard_share(limit, s, shards)).collect();
                if limit == 0 {
                    assert!(shares.iter().all(Option::is_none));
                    continue;
                }
                let total: u32 = shares.iter().map(|s| s.unwrap()).sum();
                assert_eq!(total, limit, "{limit} over {shards}");
                let (min, max) = (
                    shares.iter().flatten().min().unwrap(),
                    shares.iter().flatten().max().unwrap(),
                );
                assert!(max - min <= 1);
            }
        }
        assert_eq!(shard_share(2, 0, 2), Some(1));
        assert_eq!(shard_share(1, 1, 2), Some(0));
    }
}
