//! scache: idle SMTP connections kept per destination for reuse.
//!
//! Each destination's connections live on the shard that schedules it, so
//! the cache is shard-local and needs no locking. A connection is reused
//! while it is younger than `smtp_connection_reuse_time_limit` and has
//! been used fewer than `smtp_connection_reuse_count_limit` times (0 = no
//! count limit); an idle one is closed after
//! `smtp_connection_cache_time_limit`. The core is generic over the
//! connection type so that it is tested without sockets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use sluice_agents::delivery::Destination;

#[derive(Clone, Copy, Debug)]
pub struct ScacheParams {
    /// smtp_connection_cache_time_limit (2s): idle time before closing.
    pub idle_limit: Duration,
    /// smtp_connection_reuse_time_limit (300s): age limit for reuse.
    pub reuse_time_limit: Duration,
    /// smtp_connection_reuse_count_limit (0 = unlimited).
    pub reuse_count_limit: u32,
    /// Bound on idle connections per destination: no more than the
    /// destination's concurrency limit are ever open at once.
    pub per_destination: usize,
}

struct Idle<C> {
    conn: C,
    idle_since: Instant,
    born: Instant,
    uses: u32,
}

/// A reusable connection with its age and use count.
pub struct Cached<C> {
    pub conn: C,
    pub born: Instant,
    pub uses: u32,
}

pub struct Scache<C> {
    params: ScacheParams,
    idle: HashMap<Destination, VecDeque<Idle<C>>>,
}

impl<C> Scache<C> {
    pub fn new(params: ScacheParams) -> Self {
        Scache {
            params,
            idle: HashMap::new(),
        }
    }

    /// The most recently idle connection for `dest`, if one is still good.
    pub fn take(&mut self, dest: &Destination, now: Instant) -> Option<Cached<C>> {
        let q = self.idle.get_mut(dest)?;
        // The most recently idled is the freshest; if even it is too old,
        // none is good (expire() closes them).
        let fresh = q
            .back()
            .is_some_and(|i| now.duration_since(i.idle_since) <= self.params.idle_limit);
        if !fresh {
            return None;
        }
        q.pop_back().map(|i| Cached {
            conn: i.conn,
            born: i.born,
            uses: i.uses,
        })
    }

    /// Whether a connection that has done `uses` deliveries since `born`
    /// may be offered again.
    pub fn reusable(&self, born: Instant, uses: u32, now: Instant) -> bool {
        (self.params.reuse_count_limit == 0 || uses < self.params.reuse_count_limit)
            && now.duration_since(born) < self.params.reuse_time_limit
    }

    /// Offer a connection back; returns it when it must be closed instead.
    pub fn put(&mut self, dest: Destination, c: Cached<C>, now: Instant) -> Option<C> {
        if !self.reusable(c.born, c.uses, now) {
            return Some(c.conn);
        }
        let q = self.idle.entry(dest).or_default();
        if q.len() >= self.params.per_destination {
            return Some(c.conn);
        }
        q.push_back(Idle {
            conn: c.conn,
            idle_since: now,
            born: c.born,
            uses: c.uses,
        });
        None
    }

    /// Remove connections idle longer than the cache time limit.
    pub fn expire(&mut self, now: Instant) -> Vec<C> {
        let limit = self.params.idle_limit;
        let mut out = Vec::new();
        self.idle.retain(|_, q| {
            while q
                .front()
                .is_some_and(|i| now.duration_since(i.idle_since) > limit)
            {
                if let Some(i) = q.pop_front() {
                    out.push(i.conn);
                }
            }
            !q.is_empty()
        });
        out
    }

    /// Everything, for shutdown.
    pub fn drain(&mut self) -> Vec<C> {
        self.idle
            .drain()
            .flat_map(|(_, q)| q.into_iter().map(|i| i.conn))
            .collect()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ScacheParams {
        ScacheParams {
            idle_limit: Duration::from_secs(2),
            reuse_time_limit: Duration::from_secs(300),
            reuse_count_limit: 3,
            per_destination: 2,
        }
    }

    #[test]
    fn reuse_within_limits() {
        let mut c: Scache<u32> = Scache::new(params());
        let d = Destination::new("smtp", "example.org");
        let t0 = Instant::now();
        assert!(c
            .put(
                d.clone(),
                Cached {
                    conn: 7,
                    born: t0,
                    uses: 1
                },
                t0
            )
            .is_none());
        let got = c.take(&d, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!((got.conn, got.uses), (7, 1));
        assert!(c.take(&d, t0).is_none());
    }

    #[test]
    fn idle_connections_expire() {
        let mut c: Scache<u32> = Scache::new(params());
        let d = Destination::new("smtp", "example.org");
        let t0 = Instant::now();
        assert!(c
            .put(
                d.clone(),
                Cached {
                    conn: 1,
                    born: t0,
                    uses: 1
                },
                t0
            )
            .is_none());
        assert!(c.take(&d, t0 + Duration::from_secs(3)).is_none());
        assert_eq!(c.expire(t0 + Duration::from_secs(3)), vec![1]);
        assert_eq!(c.idle_count(), 0);
    }

    #[test]
    fn count_age_and_size_limits_refuse_reuse() {
        let mut c: Scache<u32> = Scache::new(params());
        let d = Destination::new("smtp", "example.org");
        let t0 = Instant::now();
        assert_eq!(
            c.put(
                d.clone(),
                Cached {
                    conn: 1,
                    born: t0,
                    uses: 3
                },
                t0
            ),
            Some(1)
        );
        let old = t0;
        let later = t0 + Duration::from_secs(301);
        assert_eq!(
            c.put(
                d.clone(),
                Cached {
                    conn: 2,
                    born: old,
                    uses: 1
                },
                later
            ),
            Some(2)
        );
        assert!(c
            .put(
                d.clone(),
                Cached {
                    conn: 3,
                    born: t0,
                    uses: 1
                },
                t0
            )
            .is_none());
        assert!(c
            .put(
                d.clone(),
                Cached {
                    conn: 4,
                    born: t0,
                    uses: 1
                },
                t0
            )
            .is_none());
        assert_eq!(
            c.put(
                d.clone(),
                Cached {
                    conn: 5,
                    born: t0,
                    uses: 1
                },
                t0
            ),
            Some(5)
        );
    }
}
