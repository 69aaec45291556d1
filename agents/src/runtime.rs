//! The few things an agent needs from the engine, as traits, so that
//! agents are tested over in-memory streams with a fake clock and never
//! name glommio.

use std::future::Future;
use std::time::Duration;

/// Time, for timeouts. The engine implements it with glommio's timers.
pub trait Clock {
    /// Resolves after `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// Run `fut`, or give `None` when `limit` passes first.
pub async fn with_timeout<C: Clock, T>(
    clock: &C,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        clock.sleep(limit).await;
        None
    })
    .await
}
