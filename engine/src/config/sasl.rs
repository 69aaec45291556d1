//! smtpd's SASL parameters (SMTP AUTH), per listener: main.cf's, or a
//! master.cf service's with its `-o` overrides (the `submission` entry's
//! `-o smtpd_sasl_auth_enable=yes`).
//!
//! Checked at load, so that `sluice check` and start-up refuse what would
//! otherwise fail at the first AUTH: an unknown `smtpd_sasl_type` (Postfix's
//! default `cyrus` is not available), an `inet:` Dovecot socket, a missing
//! or malformed password file (a `{PLAIN}` entry included), an unreadable
//! `smtpd_sender_login_maps` table.

use std::path::{Path, PathBuf};

use sluice_storage::table::Table;

use super::{ConfigError, MainCf};
use crate::sasl::passwd_file::PasswdFile;
use crate::sasl::SaslBackend;

/// The SASL side of one smtpd listener.
#[derive(Clone, Debug, PartialEq)]
pub struct SaslParams {
    /// `smtpd_sasl_auth_enable`.
    pub auth_enable: bool,
    /// `smtpd_sasl_type` with `smtpd_sasl_path` or
    /// `sluice_sasl_password_file`; `None` while AUTH is off.
    pub backend: Option<SaslBackend>,
    /// `smtpd_sasl_authenticated_header`: name the login in Received:.
    pub authenticated_header: bool,
    /// `smtpd_sender_login_maps`: MAIL FROM address → its owners' logins.
    pub sender_login_maps: LoginMaps,
}

/// `smtpd_sender_login_maps`, read at load. Equal when the specs are.
#[derive(Clone, Debug, Default)]
pub struct LoginMaps {
    specs: Vec<String>,
    tables: Vec<Table>,
}

impl PartialEq for LoginMaps {
    fn eq(&self, other: &Self) -> bool {
        self.specs == other.specs
    }
}

impl LoginMaps {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The owners of `sender` as Postfix looks them up: the whole address,
    /// then `@domain`; the first table with an answer decides. Owners are
    /// separated by commas or white space.
    pub fn owners(&self, sender: &str) -> Option<Vec<String>> {
        let lower = sender.to_ascii_lowercase();
        let domain = lower.rsplit_once('@').map(|(_, d)| format!("@{d}"));
        self.tables.iter().find_map(|t| {
            let hit = t
                .lookup(&lower)
                .or_else(|| domain.as_deref().and_then(|d| t.lookup(d)))?;
            Some(super::split_list(hit))
        })
    }

    /// Test helper: maps from parsed tables.
    pub fn from_tables(tables: Vec<Table>) -> LoginMaps {
        LoginMaps {
            specs: tables.iter().map(|_| String::new()).collect(),
            tables,
        }
    }
}

impl SaslParams {
    pub fn from_main(main: &MainCf) -> Result<SaslParams, ConfigError> {
        let auth_enable = main.get_bool("smtpd_sasl_auth_enable")?;
        // Read whether or not AUTH is on (so that `postconf`-style checks
        // see them used), checked only when it is.
        let kind = main.get_str("smtpd_sasl_type")?;
        let path = main.get_str("smtpd_sasl_path")?;
        let file = main.get_str("sluice_sasl_password_file")?;
        let backend = if auth_enable {
            Some(backend(main, &kind, &path, &file)?)
        } else {
            None
        };
        let name = "smtpd_sender_login_maps";
        let specs = main.get_list(name)?;
        let mut tables = Vec::new();
        for spec in &specs {
            tables.push(Table::open(spec).map_err(|e| main.bad_value(name, &e.to_string()))?);
        }
        Ok(SaslParams {
            auth_enable,
            backend,
            authenticated_header: main.get_bool("smtpd_sasl_authenticated_header")?,
            sender_login_maps: LoginMaps { specs, tables },
        })
    }
}

fn backend(main: &MainCf, kind: &str, path: &str, file: &str) -> Result<SaslBackend, ConfigError> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "dovecot" => {
            if path.is_empty() || path.starts_with("inet:") {
                return Err(main.bad_value(
                    "smtpd_sasl_path",
                    "give the path of Dovecot's auth client socket (inet: sockets are not supported)",
                ));
            }
            let path = path.strip_prefix("unix:").unwrap_or(path);
            // Postfix: a relative path is relative to queue_directory.
            let socket = if Path::new(path).is_absolute() {
                PathBuf::from(path)
            } else {
                let queue = PathBuf::from(main.get_str("queue_directory")?);
                std::env::current_dir()
                    .unwrap_or_default()
                    .join(queue)
                    .join(path)
            };
            Ok(SaslBackend::Dovecot { socket })
        }
        "sluice" => {
            let name = "sluice_sasl_password_file";
            if file.is_empty() {
                return Err(main.bad_value(
                    name,
                    "smtpd_sasl_type = sluice needs a password file (user:{SHA512-CRYPT}hash lines, as made by `doveadm pw`)",
                ));
            }
            let path = PathBuf::from(file);
            PasswdFile::load(&path).map_err(|e| main.bad_value(name, &e))?;
            Ok(SaslBackend::PasswdFile { path })
        }
        other => {
            let what = format!(
                "SASL type \"{other}\" is not available: use dovecot (with smtpd_sasl_path) or sluice (with sluice_sasl_password_file)"
            );
            // Left at Postfix's default (cyrus): point at the line that
            // turned AUTH on, usually a master.cf -o.
            if main.raw("smtpd_sasl_type").is_none() {
                return Err(ConfigError::Syntax {
                    origin: main.origin("smtpd_sasl_auth_enable"),
                    what: format!(
                        "smtpd_sasl_auth_enable = yes, but smtpd_sasl_type is not set: {what}"
                    ),
                });
            }
            Err(main.bad_value("smtpd_sasl_type", &what))
        }
    }
}
