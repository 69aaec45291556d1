//! Listening sockets, created by us rather than by glommio.
//!
//! glommio's `TcpListener::bind` always sets SO_REUSEPORT, so binding a port
//! that another process holds would silently succeed and split its traffic.
//! We first bind the address once *without* SO_REUSEPORT: if that fails the
//! port is taken and start-up stops with a message that says so. Then every
//! shard binds its own SO_REUSEPORT socket and the kernel spreads incoming
//! connections over the shards.
//!
//! A killed predecessor's listening sockets outlive it for a moment (up to
//! about a second: io_uring tears its requests down asynchronously), and
//! the kernel even completes handshakes into their backlog meanwhile. So
//! an address in use is waited for, a bounded while, before it is an
//! error; and the error names the process that holds the port only when
//! /proc says which one does.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// The listen(2) backlog. Postfix leaves it to the kernel's somaxconn for
/// inet listeners (its default is large); 1024 matches a busy relay.
const LISTEN_BACKLOG: i32 = 1024;
/// How long start-up waits for a previous listener on its address to
/// close (a killed instance's sockets linger for up to about a second).
pub const PREVIOUS_LISTENER_WAIT: Duration = Duration::from_secs(5);
/// How often the address is tried again meanwhile (nothing to wait on:
/// the other socket belongs to no process of ours).
const RETRY_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("bind {addr}: address already in use")]
    InUse { addr: SocketAddr },
    #[error("bind {addr}: address already in use by {holder}; stop it, or listen elsewhere in master.cf")]
    HeldBy { addr: SocketAddr, holder: String },
    #[error("bind {addr}: address still in use after {}s (`ss -ltnp 'sport = :{}'` shows who holds it)", .waited.as_secs(), .addr.port())]
    StillInUse { addr: SocketAddr, waited: Duration },
    #[error("bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    Ok(s)
}

/// Refuse to start when someone else holds `addr`.
pub fn probe(addr: SocketAddr) -> Result<(), ListenError> {
    let s = socket_for(addr).map_err(|source| ListenError::Bind { addr, source })?;
    match s.bind(&addr.into()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(ListenError::InUse { addr }),
        Err(source) => Err(ListenError::Bind { addr, source }),
    }
}

/// [`probe`], waiting up to `limit` while the address is in use (calling
/// `on_wait` once, when the wait begins). Then who holds it, if /proc says.
pub fn probe_waiting(
    addr: SocketAddr,
    limit: Duration,
    on_wait: impl FnOnce(),
) -> Result<(), ListenError> {
    let start = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        match probe(addr) {
            Err(ListenError::InUse { .. }) if start.elapsed() < limit => {
                if let Some(f) = on_wait.take() {
                    f();
                }
                std::thread::sleep(RETRY_INTERVAL);
            }
            Err(ListenError::InUse { .. }) => {
                return Err(match holder::find(addr) {
                    Some(holder) => ListenError::HeldBy { addr, holder },
                    None => ListenError::StillInUse {
                        addr,
                        waited: start.elapsed(),
                    },
                })
            }
            other => return other,
        }
    }
}

/// One shard's SO_REUSEPORT listening socket, ready to be handed to glommio.
pub fn bind_shard(addr: SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let map = |source| ListenError::Bind { addr, source };
    let s = socket_for(addr).map_err(map)?;
    s.set_reuse_port(true).map_err(map)?;
    s.set_nonblocking(true).map_err(map)?;
    s.bind(&addr.into()).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            ListenError::InUse { addr }
        } else {
            map(e)
        }
    })?;
    s.listen(LISTEN_BACKLOG).map_err(map)?;
    Ok(s.into())
}

mod holder {
    //! Who listens on an address: /proc/net/tcp{,6} gives the LISTEN
    //! socket's inode, /proc/PID/fd the process that has it open. Only the
    //! processes we may look into are seen (all of them as root).

    use std::net::SocketAddr;

    /// The kernel's TCP state number for LISTEN.
    const TCP_LISTEN: &str = "0A";

    /// `pid N (comm)` of a process listening on `addr`'s port, if found.
    pub fn find(addr: SocketAddr) -> Option<String> {
        let inodes = listening_inodes(addr.port());
        if inodes.is_empty() {
            return None;
        }
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if owns_any(pid, &inodes) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
        None
    }

    /// Inodes of LISTEN sockets on `port` (any local address).
    fn listening_inodes(port: u16) -> Vec<String> {
        let hex_port = format!(":{port:04X}");
        let mut out = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                if f.len() > 9 && f[1].ends_with(&hex_port) && f[3] == TCP_LISTEN {
                    out.push(format!("socket:[{}]", f[9]));
                }
            }
        }
        out
    }

    fn owns_any(pid: u32, inodes: &[String]) -> bool {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
        })
    }
}

/// Hand a std listener to the current glommio executor.
pub fn into_glommio(l: std::net::TcpListener) -> glommio::net::TcpListener {
    // SAFETY: the fd comes from a listener we own and give up here; glommio
    // takes ownership of it.
    unsafe { glommio::net::TcpListener::from_raw_fd(l.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_port_names_its_holder_after_the_wait() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let mut waited = false;
        let e = probe_waiting(addr, Duration::from_millis(200), || waited = true).unwrap_err();
        assert!(waited);
        let text = e.to_string();
        let me = format!("pid {}", std::process::id());
        assert!(
            text.contains("already in use by") && text.contains(&me),
            "{text}"
        );
    }

    #[test]
    fn a_port_freed_during_the_wait_is_taken() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        probe_waiting(addr, Duration::from_secs(5), || {}).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn a_held_port_is_refused() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        assert!(matches!(probe(addr), Err(ListenError::InUse { .. })));
    }

    #[test]
    fn shards_share_a_free_port() {
        let probe_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe_l.local_addr().unwrap();
        drop(probe_l);
        probe(addr).unwrap();
        let a = bind_shard(addr).unwrap();
        let b = bind_shard(addr).unwrap();
        assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
        // Once we hold it, a third program probing it is refused.
        assert!(matches!(probe(addr), Err(ListenError::InUse { .. })));
    }
}
