//! tls: the SMTP server's TLS settings and certificates (Postfix's
//! `smtpd_tls_*` parameters), loaded once at start and at reload.
//!
//! **Role.** Turns a listener's parameters into [`SmtpdTls`]: the security
//! level, wrapper mode, and a rustls `ServerConfig` built from the
//! certificate and key files. A bad file stops start-up (`sluice check`
//! too) with `file: what is wrong`; nothing is read per connection.
//!
//! **Trust.** The files are the administrator's; they are read at load,
//! before privileges are dropped (Postfix's smtpd reads them as root too).
//! The handshake itself runs in the driver ([`crate::smtpd`]) through
//! futures-rustls, over rustls's sans-IO `ServerConnection`: nothing
//! blocks a shard.
//!
//! **Sharing.** The `ServerConfig` is immutable and shared by `Arc` across
//! shards; each shard's listener gets its own copy ([`SmtpdTls::for_shard`])
//! with its own in-memory session cache, so no lock is shared between
//! shards. No session tickets are issued (rustls's default): a resumed
//! session works only on the shard that made it. A sharded ticket service
//! (`tlsmgr`) is future work.
//!
//! **Protocols.** rustls speaks TLS 1.2 and 1.3 only. Postfix's protocol
//! lists (`>=TLSv1`, `!SSLv2, !SSLv3`) are mapped onto those two; a list
//! that leaves neither is refused at load.

mod files;
mod info;
mod load;
mod protocols;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;

pub use files::load_server_config;
pub use info::tls_info;
pub use protocols::parse_protocols;

/// `smtpd_tls_security_level` (or the legacy `smtpd_use_tls` and
/// `smtpd_enforce_tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    None,
    May,
    Encrypt,
}

impl Level {
    /// Postfix's rule: a non-empty `smtpd_tls_security_level` wins; else
    /// `smtpd_enforce_tls = yes` means encrypt, `smtpd_use_tls = yes` may.
    pub fn parse(level: &str, use_tls: bool, enforce_tls: bool) -> Result<Level, &'static str> {
        match level.trim().to_ascii_lowercase().as_str() {
            "" if enforce_tls => Ok(Level::Encrypt),
            "" if use_tls => Ok(Level::May),
            "" | "none" => Ok(Level::None),
            "may" => Ok(Level::May),
            "encrypt" => Ok(Level::Encrypt),
            _ => Err("bad value (use none, may or encrypt)"),
        }
    }
}

/// A loaded certificate: the server config and what it says about our
/// signature, for the log line and the Received: header.
#[derive(Clone)]
pub struct ServerCert {
    pub config: Arc<ServerConfig>,
    /// `ECDSA (P-256)`, `RSA-PSS`, … (see [`info`]).
    pub signature: Option<String>,
    pub digest: Option<String>,
    /// The files it came from, for equality and Debug.
    pub files: String,
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerCert({})", self.files)
    }
}

impl PartialEq for ServerCert {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) || self.files == other.files
    }
}

/// One listener's TLS settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpdTls {
    pub level: Level,
    /// `smtpd_tls_wrappermode`: TLS from the first byte (port 465).
    pub wrappermode: bool,
    /// `smtpd_tls_auth_only` (for AUTH).
    pub auth_only: bool,
    /// `smtpd_tls_received_header`.
    pub received_header: bool,
    /// `smtpd_tls_loglevel`: 0 logs failures only, 1 also the summary
    /// line, 2 also the handshake's start.
    pub loglevel: u32,
    /// `smtpd_starttls_timeout`: the whole handshake must end within it.
    pub starttls_timeout: Duration,
    /// Present when the level is may or encrypt (load refuses a level
    /// without a certificate).
    pub cert: Option<ServerCert>,
}

impl SmtpdTls {
    /// No TLS (tests, tools).
    pub fn off() -> SmtpdTls {
        SmtpdTls {
            level: Level::None,
            wrappermode: false,
            auth_only: false,
            received_header: false,
            loglevel: 0,
            starttls_timeout: Duration::from_secs(300),
            cert: None,
        }
    }

    /// STARTTLS is offered (not in wrapper mode, where TLS is already on).
    pub fn offers_starttls(&self) -> bool {
        self.cert.is_some() && self.level != Level::None && !self.wrappermode
    }

    /// This shard's copy of the server config: shared certificates, its
    /// own session cache (a `Mutex` only this shard's thread takes).
    pub fn for_shard(&self) -> Option<Arc<ServerConfig>> {
        let cert = self.cert.as_ref()?;
        let mut config = (*cert.config).clone();
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(1024);
        Some(Arc::new(config))
    }
}
