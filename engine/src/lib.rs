//! Sluice's engine: configuration, shards, listeners, the session driver,
//! group commit, and the control socket. glommio appears only here.

pub mod config;
pub mod smtpd_check;
