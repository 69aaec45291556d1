//! systemd's readiness protocol (sd_notify(3)) for `Type=notify` units
//! (tools/systemd/sluice.service): one datagram to `$NOTIFY_SOCKET` with
//! `READY=1` once every listener and control socket accepts, and
//! `STOPPING=1` when the daemon begins to stop.
//!
//! Trust level: the socket's address comes from our own environment (the
//! service manager); we only ever send to it, through a socket connected
//! at start, before the privilege drop. Without `$NOTIFY_SOCKET`
//! (not started by systemd) nothing is sent. A plain Unix datagram
//! socket: the protocol is a few lines, so no crate.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The service manager's socket, connected while the daemon may still
/// reach it: before it drops its privileges (a root-owned socket file
/// would refuse `mail_owner` later).
pub struct Notifier {
    path: std::ffi::OsString,
    sock: std::io::Result<UnixDatagram>,
}

impl Notifier {
    /// `$NOTIFY_SOCKET`, connected now; `None` when not started by
    /// systemd. A failure to connect is kept and logged when used.
    pub fn from_env() -> Option<Notifier> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let sock = address(&path).and_then(|addr| {
            let sock = UnixDatagram::unbound()?;
            sock.connect_addr(&addr)?;
            Ok(sock)
        });
        Some(Notifier { path, sock })
    }

    /// Tell the service manager the daemon accepts on every socket.
    pub fn ready(&self) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS=accepting mail\n",
            std::process::id()
        ));
    }

    /// Tell the service manager the daemon is stopping.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining sessions\n");
    }

    /// A failure is logged, never fatal: the daemon serves either way
    /// (systemd then times the start out and says why).
    fn send(&self, state: &str) {
        let sent = match &self.sock {
            Ok(sock) => sock.send(state.as_bytes()).map(drop),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        if let Err(e) = sent {
            tracing::warn!(
                target: "master",
                "warning: NOTIFY_SOCKET {}: cannot notify the service manager: {e}",
                self.path.to_string_lossy()
            );
        }
    }
}

/// A path, or a name in the abstract namespace when it starts with `@`.
fn address(path: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match path.as_bytes() {
        [b'@', name @ ..] => SocketAddr::from_abstract_name(name),
        p => SocketAddr::from_pathname(std::path::Path::new(std::ffi::OsStr::from_bytes(p))),
    }
}

#[cfg(test)]
mod tests {
    use std::os::linux::net::SocketAddrExt;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        let a = super::address("@sluice/notify".as_ref()).unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"sluice/notify"[..]));
        let p = super::address("/run/systemd/notify".as_ref()).unwrap();
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
    }
}
