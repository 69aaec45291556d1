//! Listening sockets, created by us rather than by glommio.
//!
//! glommio's `TcpListener::bind` always sets SO_REUSEPORT, so binding a port
//! that another process holds would silently succeed and split its traffic.
//! We first bind the address once *without* SO_REUSEPORT: if that fails the
//! port is taken and start-up stops with a message that says so. Then every
//! shard binds its own SO_REUSEPORT socket and the kernel spreads incoming
//! connections over the shards.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// The listen(2) backlog. Postfix leaves it to the kernel's somaxconn for
/// inet listeners (its default is large); 1024 matches a busy relay.
const LISTEN_BACKLOG: i32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("bind {addr}: address already in use (another program, perhaps Postfix or another sluice, listens there; `ss -ltnp` shows which)")]
    InUse { addr: SocketAddr },
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
