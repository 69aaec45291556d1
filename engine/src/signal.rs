//! Master → shard signals: stop and reload, as events rather than polls.
//!
//! Role: the master thread (a plain thread, not an executor) tells every
//! shard to drain or to pick up a reloaded configuration. Each signal is a
//! value in an atomic plus the wakers of the shard tasks waiting for it;
//! the master changes the value, then wakes those tasks (glommio wakers
//! may be woken from a foreign thread: the executor is notified and
//! unparks). Nothing polls on a timer, so an idle shard does no work and
//! a task that waits for a signal is woken once, when it changes.
//!
//! Trust: both ends are Sluice's own threads. Limits: one waker per
//! waiting task (`Waker::will_wake`), so the list is bounded by the number
//! of long-lived tasks that wait (listeners, the control socket, the
//! reload watcher, the shard's main task); it is emptied at every signal.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// A value that only grows, with the wakers of the tasks waiting for it
/// to change.
#[derive(Default)]
struct Watched {
    value: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Watched {
    fn get(&self) -> u64 {
        self.value.load(Ordering::SeqCst)
    }

    /// Raise the value to at least `v` and wake every waiting task.
    fn raise(&self, v: u64) {
        self.value.fetch_max(v, Ordering::SeqCst);
        self.wake_all();
    }

    /// Add one and wake every waiting task.
    fn bump(&self) {
        self.value.fetch_add(1, Ordering::SeqCst);
        self.wake_all();
    }

    fn wake_all(&self) {
        let wakers = match self.wakers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves with the value once it differs from `seen`.
    fn changed(&self, seen: u64) -> impl Future<Output = u64> + '_ {
        std::future::poll_fn(move |cx| {
            let v = self.get();
            if v != seen {
                return Poll::Ready(v);
            }
            {
                let mut wakers = match self.wakers.lock() {
                    Ok(w) => w,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
            }
            // The master may have changed the value between the first
            // look and the registration: look again, under no lock.
            let v = self.get();
            if v != seen {
                Poll::Ready(v)
            } else {
                Poll::Pending
            }
        })
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.wakers.lock().map(|w| w.len()).unwrap_or(0)
    }
}

/// The master's stop flag, shared by every shard (read-only for them).
#[derive(Clone, Default)]
pub struct StopFlag(Arc<Watched>);

impl StopFlag {
    const RUNNING: u64 = 0;
    const DRAINING: u64 = 1;

    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// Stop accepting; sessions may finish up to the drain deadline.
    pub fn drain(&self) {
        self.0.raise(Self::DRAINING);
    }

    pub fn is_draining(&self) -> bool {
        self.0.get() != Self::RUNNING
    }

    /// Resolves once the master asked to stop.
    pub async fn draining(&self) {
        if !self.is_draining() {
            self.0.changed(Self::RUNNING).await;
        }
    }
}

/// A reloaded configuration's mailbox: a generation number that shards
/// wait on, and the latest value (the lock is held only to clone the
/// `Arc`).
pub struct ReloadBox<T>(Arc<(Watched, Mutex<Option<Arc<T>>>)>);

impl<T> Clone for ReloadBox<T> {
    fn clone(&self) -> Self {
        ReloadBox(self.0.clone())
    }
}

impl<T> Default for ReloadBox<T> {
    fn default() -> Self {
        ReloadBox(Arc::new((Watched::default(), Mutex::new(None))))
    }
}

impl<T> ReloadBox<T> {
    pub fn publish(&self, r: T) {
        if let Ok(mut g) = self.0 .1.lock() {
            *g = Some(Arc::new(r));
        }
        self.0 .0.bump();
    }

    pub fn generation(&self) -> u64 {
        self.0 .0.get()
    }

    /// Resolves with the new generation once it differs from `seen`.
    pub async fn changed(&self, seen: u64) -> u64 {
        self.0 .0.changed(seen).await
    }

    pub fn latest(&self) -> Option<Arc<T>> {
        self.0 .1.lock().ok().and_then(|g| g.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_repolled_waiter_is_registered_once_and_woken_once() {
        let stop = StopFlag::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(stop.draining());
        for _ in 0..40_000 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(stop.0.waiting(), 1);
        stop.drain();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(stop.0.waiting(), 0);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_signal_from_another_thread_wakes_the_waiter() {
        let reload: ReloadBox<&'static str> = ReloadBox::default();
        let seen = reload.generation();
        let publisher = {
            let reload = reload.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                reload.publish("new");
            })
        };
        let g = futures_lite::future::block_on(reload.changed(seen));
        publisher.join().unwrap();
        assert_eq!(g, seen + 1);
        assert_eq!(reload.latest().as_deref(), Some(&"new"));
    }

    #[test]
    fn draining_resolves_at_once_after_the_stop() {
        let stop = StopFlag::new();
        stop.drain();
        assert!(stop.is_draining());
        futures_lite::future::block_on(stop.draining());
    }
}
