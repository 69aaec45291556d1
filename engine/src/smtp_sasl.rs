//! smtp_sasl: the smtp client's `smtp_sasl_*` parameters read at load into
//! [`SaslClientParams`]; `smtp_sasl_password_maps` is read whole, once
//! (a missing table or an entry that is not `username:password` stops
//! start-up with `file:line: …`).
//!
//! Trust: configuration is trusted; the passwords it holds are secrets and
//! are never logged (errors name the key, not the value).

use std::collections::HashMap;

use sluice_agents::smtp::auth::{SaslClientParams, SaslSecurity};
use sluice_storage::table::Table;

use crate::config::{Config, ConfigError};

fn bad(config: &Config, name: &str, what: String) -> ConfigError {
    ConfigError::Syntax {
        origin: config.main.origin(name),
        what,
    }
}

fn security(config: &Config, name: &str) -> Result<SaslSecurity, ConfigError> {
    let text = config.main.get_str(name)?;
    SaslSecurity::parse(&text).map_err(|e| bad(config, name, format!("{name}: {e}")))
}

fn passwords(config: &Config) -> Result<HashMap<String, String>, ConfigError> {
    let name = "smtp_sasl_password_maps";
    let mut map = HashMap::new();
    for spec in config.main.get_list(name)? {
        let table = Table::open(&spec).map_err(|e| bad(config, name, format!("{name}: {e}")))?;
        for key in table.keys() {
            let value = table.lookup(key).unwrap_or_default();
            if !value.contains(':') {
                return Err(bad(
                    config,
                    name,
                    format!("{spec}: {key}: the value must be username:password"),
                ));
            }
            map.entry(key.to_ascii_lowercase())
                .or_insert_with(|| value.to_string());
        }
    }
    Ok(map)
}

/// `None` unless `smtp_sasl_auth_enable = yes`; every parameter is read
/// (and checked) either way.
pub fn sasl_client_params(config: &Config) -> Result<Option<SaslClientParams>, ConfigError> {
    let main = &config.main;
    let enabled = main.get_bool("smtp_sasl_auth_enable")?;
    let params = SaslClientParams {
        passwords: passwords(config)?,
        options: security(config, "smtp_sasl_security_options")?,
        tls_options: security(config, "smtp_sasl_tls_security_options")?,
        mechanism_filter: main
            .get_list("smtp_sasl_mechanism_filter")?
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        soft_bounce: main.get_bool("smtp_sasl_auth_soft_bounce")?,
    };
    Ok(enabled.then_some(params))
}
