//! smtp_tls: the smtp client's `smtp_tls_*` parameters read into
//! [`TlsClientParams`] at load (a bad level, protocol list, policy table
//! entry or CA file stops start-up with `file:line: …`), and the legacy
//! `smtp_use_tls` / `smtp_enforce_tls` mapped as Postfix maps them.
//!
//! Trust: configuration is trusted; the policy tables are read whole, once,
//! here (limits: the table's own).

use std::collections::HashMap;
use std::path::PathBuf;

use sluice_agents::smtp::tls::{
    Protocols, ServerNameMode, TlsClient, TlsClientParams, TlsLevel, TlsPolicy,
};
use sluice_storage::table::Table;

use crate::config::{Config, ConfigError};

fn bad(config: &Config, name: &str, what: String) -> ConfigError {
    ConfigError::Syntax {
        origin: config.main.origin(name),
        what,
    }
}

/// The level: `smtp_tls_security_level` when set (or, unset, when no
/// obsolete parameter is set either: its default, `may`); else Postfix's
/// mapping of the obsolete ones: `smtp_enforce_tls = yes` is `verify`
/// (`encrypt` with `smtp_tls_enforce_peername = no`), `smtp_use_tls = yes`
/// is `may`, neither is `none`.
fn level(config: &Config) -> Result<TlsLevel, ConfigError> {
    let main = &config.main;
    let name = "smtp_tls_security_level";
    let legacy = main.is_set("smtp_use_tls") || main.is_set("smtp_enforce_tls");
    let (use_tls, enforce_tls) = (
        main.get_bool("smtp_use_tls")?,
        main.get_bool("smtp_enforce_tls")?,
    );
    let enforce_peername = main.get_bool("smtp_tls_enforce_peername")?;
    let text = main.get_str(name)?;
    if !text.is_empty() && (main.is_set(name) || !legacy) {
        return TlsLevel::parse(&text).ok_or_else(|| {
            bad(
                config,
                name,
                format!("{name} = {text}: not implemented (none, may, encrypt, verify, secure)"),
            )
        });
    }
    Ok(if enforce_tls {
        if enforce_peername {
            TlsLevel::Verify
        } else {
            TlsLevel::Encrypt
        }
    } else if use_tls {
        TlsLevel::May
    } else {
        TlsLevel::None
    })
}

fn protocols(config: &Config, name: &str) -> Result<Protocols, ConfigError> {
    let text = config.main.get_str(name)?;
    Protocols::parse(&text).map_err(|e| bad(config, name, format!("{name}: {e}")))
}

fn path(config: &Config, name: &str) -> Result<Option<PathBuf>, ConfigError> {
    let text = config.main.get_str(name)?;
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

/// `smtp_tls_policy_maps`, every table read now; the first table with a
/// key wins, as in a Postfix lookup list.
fn policies(config: &Config) -> Result<HashMap<String, TlsPolicy>, ConfigError> {
    let name = "smtp_tls_policy_maps";
    let mut map = HashMap::new();
    for spec in config.main.get_list(name)? {
        let table = Table::open(&spec).map_err(|e| bad(config, name, format!("{name}: {e}")))?;
        for key in table.keys() {
            let value = table.lookup(key).unwrap_or_default();
            let policy = TlsPolicy::parse(value)
                .map_err(|e| bad(config, name, format!("{spec}: {key}: {e}")))?;
            map.entry(key.to_ascii_lowercase()).or_insert(policy);
        }
    }
    Ok(map)
}

/// Reads the parameters and builds a client once, so that a bad CA file
/// is reported at load rather than by every shard.
pub fn tls_client_params(config: &Config) -> Result<TlsClientParams, ConfigError> {
    let main = &config.main;
    let params = TlsClientParams {
        level: level(config)?,
        protocols: protocols(config, "smtp_tls_protocols")?,
        mandatory_protocols: protocols(config, "smtp_tls_mandatory_protocols")?,
        ca_file: path(config, "smtp_tls_CAfile")?,
        ca_path: path(config, "smtp_tls_CApath")?,
        servername: ServerNameMode::parse(&main.get_str("smtp_tls_servername")?),
        verify_match: main.get_list("smtp_tls_verify_cert_match")?,
        secure_match: main.get_list("smtp_tls_secure_cert_match")?,
        loglevel: main.get_number("smtp_tls_loglevel", 0)?,
        policies: policies(config)?,
    };
    TlsClient::new(&params).map_err(|e| bad(config, "smtp_tls_CAfile", e))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{from_text, HostFacts};

    fn level_of(main_cf: &str) -> TlsLevel {
        let config = from_text(
            Path::new("/etc/sluice"),
            (main_cf, Path::new("/etc/sluice/main.cf")),
            ("", Path::new("/etc/sluice/master.cf")),
            &HostFacts::for_tests(),
            Path::new("/"),
        )
        .unwrap();
        level(&config).unwrap()
    }

    #[test]
    fn levels_as_postfix_311_and_its_obsolete_parameters() {
        assert_eq!(level_of(""), TlsLevel::May);
        assert_eq!(
            level_of("smtp_tls_security_level = encrypt\n"),
            TlsLevel::Encrypt
        );
        assert_eq!(level_of("smtp_tls_security_level =\n"), TlsLevel::None);
        assert_eq!(level_of("smtp_use_tls = yes\n"), TlsLevel::May);
        assert_eq!(level_of("smtp_use_tls = no\n"), TlsLevel::None);
        assert_eq!(level_of("smtp_enforce_tls = yes\n"), TlsLevel::Verify);
        assert_eq!(
            level_of("smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n"),
            TlsLevel::Encrypt
        );
        // The new parameter, when set, wins (Postfix).
        assert_eq!(
            level_of("smtp_enforce_tls = yes\nsmtp_tls_security_level = may\n"),
            TlsLevel::May
        );
    }
}
