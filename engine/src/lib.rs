//! Sluice's engine: configuration, shards, listeners, the session driver,
//! group commit, and the control socket. glommio appears only here.
//!
//! - [`config`]: main.cf / master.cf, typed parameters.
//! - [`master`]: start-up, signals, the pid lock, start/stop.
//! - [`preflight`]: io_uring and locked-memory checks before the shards start.
//! - [`privilege`]: mail_owner, setgid_group, and the drop from root.
//! - [`set_permissions`]: the queue directory's owners and modes.
//! - [`shard`]: one executor's state and its tasks.
//! - [`smtpd`]: the per-connection driver around the sans-IO session.
//! - [`anvil`]: per-client connection counts and rates, sharded by client.
//! - [`commit`]: group commit in front of the shard's queue log.
//! - [`control`]: the control socket used by postqueue.
//! - [`logging`]: Postfix-shaped log lines.

pub mod active;
pub mod anvil;
pub mod commit;
pub mod config;
pub mod control;
pub mod dispatch;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod listen;
pub mod logging;
pub mod master;
pub mod mesh;
pub mod passwd;
pub mod pickup;
pub mod preflight;
pub mod privilege;
pub mod process_limit;
pub mod qmgr;
pub mod runtime;
pub mod sasl;
pub mod scache;
pub mod sd_notify;
pub mod services;
pub mod set_permissions;
pub mod shard;
pub mod signal;
pub mod smtp_sasl;
pub mod smtp_tls;
pub mod smtpd;
pub mod smtpd_check;
pub mod smtpd_input;
pub mod smtpd_tls;
pub mod supervise;
pub mod tls;
pub mod user_acl;
