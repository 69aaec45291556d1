//! How the master learns that a shard is ready, has ended, or panicked.
//!
//! Every shard thread reports to one channel of [`ShardEvent`]s and rings
//! the master's doorbell (SIGUSR1, directed at the master thread, which
//! waits for it with the other blocked signals in `sigtimedwait`):
//!
//! - `Ready` once it accepts connections (or why it could not);
//! - `Exited` when its executor future ends, however it ends, and also
//!   when the executor never started (the [`ExitNotice`] travels inside
//!   the closure glommio calls only after its reactor is up);
//! - `Panicked`, from the process's panic hook, on any thread named
//!   `shard-N` (glommio names its threads `shard-N-K`). A panicking shard
//!   leaves its sessions, control socket and mesh peers hanging, so the
//!   master treats it as fatal and exits (acknowledged mail is on disk).
//!
//! The panic hook is process-wide by nature: [`install_panic_hook`] chains
//! to the previous hook, so the usual `thread '…' panicked at …` line
//! still reaches the log.

use std::sync::mpsc;

/// The doorbell: a signal the master thread keeps blocked and waits for.
pub const DOORBELL: libc::c_int = libc::SIGUSR1;

/// What a shard tells the master.
#[derive(Debug)]
pub enum ShardEvent {
    Ready(usize, Result<(), String>),
    Exited(usize),
    Panicked(usize, String),
}

/// The master's end: where events go and which thread to wake.
#[derive(Clone)]
pub struct Doorbell {
    tx: mpsc::Sender<ShardEvent>,
    master: libc::pthread_t,
}

impl Doorbell {
    /// A doorbell that wakes the calling thread (the master), which must
    /// already block [`DOORBELL`] (or the signal would end the process).
    pub fn for_this_thread() -> (Doorbell, mpsc::Receiver<ShardEvent>) {
        let (tx, rx) = mpsc::channel();
        // SAFETY: pthread_self has no preconditions.
        let master = unsafe { libc::pthread_self() };
        (Doorbell { tx, master }, rx)
    }

    /// Send an event and wake the master.
    pub fn ring(&self, event: ShardEvent) {
        let _ = self.tx.send(event);
        // SAFETY: the master thread is the process's main thread, alive
        // for as long as any shard thread; the signal is blocked there and
        // taken by its sigtimedwait.
        unsafe { libc::pthread_kill(self.master, DOORBELL) };
    }
}

/// Sent when a shard's executor future ends, or when its executor never
/// ran it (dropped with the unused closure).
pub struct ExitNotice {
    pub shard: usize,
    pub doorbell: Doorbell,
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        self.doorbell.ring(ShardEvent::Exited(self.shard));
    }
}

/// The shard a thread named `shard-N` or `shard-N-K` belongs to.
pub fn shard_of_thread(name: &str) -> Option<usize> {
    name.strip_prefix("shard-")?.split('-').next()?.parse().ok()
}

/// The text of a panic's payload.
fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let p = info.payload();
    let text = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-text panic)".to_string());
    // One log line: the message's first line.
    text.lines().next().unwrap_or_default().to_string()
}

/// Report panics on shard threads to the master (see the module doc).
pub fn install_panic_hook(doorbell: Doorbell) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let thread = std::thread::current();
        let Some(shard) = thread.name().and_then(shard_of_thread) else {
            return;
        };
        doorbell.ring(ShardEvent::Panicked(shard, panic_message(info)));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_thread_names() {
        assert_eq!(shard_of_thread("shard-0-1"), Some(0));
        assert_eq!(shard_of_thread("shard-12"), Some(12));
        assert_eq!(shard_of_thread("main"), None);
        assert_eq!(shard_of_thread("shard-x-1"), None);
    }
}
