//! Reading a listener's `smtpd_tls_*` parameters (main.cf with its
//! master.cf `-o` overrides) into [`SmtpdTls`], loading the certificate.

use std::time::Duration;

use super::{load_server_config, parse_protocols, Level, SmtpdTls};
use crate::config::{ConfigError, MainCf};

impl SmtpdTls {
    /// Reads and checks the settings; a level that needs a certificate
    /// loads it now, so a bad file stops start-up.
    pub fn from_main(main: &MainCf) -> Result<SmtpdTls, ConfigError> {
        let level_name = "smtpd_tls_security_level";
        let use_tls = main.get_bool("smtpd_use_tls")?;
        let enforce_tls = main.get_bool("smtpd_enforce_tls")?;
        let level = main.typed(level_name, |v| Level::parse(v, use_tls, enforce_tls))?;
        let wrappermode = main.get_bool("smtpd_tls_wrappermode")?;
        // Postfix ignores the level in wrapper mode: TLS is mandatory from
        // the first byte (master.cf.dist's submissions service sets only
        // smtpd_tls_wrappermode=yes).
        let level = if wrappermode { Level::Encrypt } else { level };
        let loglevel: u32 = main.get_number("smtpd_tls_loglevel", 0)?;
        let mut tls = SmtpdTls {
            level,
            wrappermode,
            auth_only: main.get_bool("smtpd_tls_auth_only")?,
            received_header: main.get_bool("smtpd_tls_received_header")?,
            loglevel,
            starttls_timeout: main
                .get_time_min("smtpd_starttls_timeout", Duration::from_secs(1))?,
            cert: None,
        };
        // Read even when unused, so that a bad value is an error anyway.
        let mandatory = protocols(main, "smtpd_tls_mandatory_protocols")?;
        let opportunistic = protocols(main, "smtpd_tls_protocols")?;
        let chain_files = main.get_list("smtpd_tls_chain_files")?;
        let cert_file = main.get_str("smtpd_tls_cert_file")?;
        let key_file = main.get_str("smtpd_tls_key_file")?;
        if level == Level::None {
            return Ok(tls);
        }
        let versions = if level == Level::Encrypt {
            mandatory
        } else {
            opportunistic
        };
        let setting = if chain_files.is_empty() {
            "smtpd_tls_cert_file"
        } else {
            "smtpd_tls_chain_files"
        };
        if chain_files.is_empty() && cert_file.is_empty() {
            // Postfix turns TLS off with a warning; a listener that was
            // asked for TLS must not serve plaintext instead.
            let source = if wrappermode {
                "smtpd_tls_wrappermode"
            } else if !main.get_str(level_name)?.trim().is_empty() {
                level_name
            } else if enforce_tls {
                "smtpd_enforce_tls"
            } else {
                "smtpd_use_tls"
            };
            return Err(main.bad_value(
                source,
                "TLS needs a certificate: set smtpd_tls_chain_files or smtpd_tls_cert_file",
            ));
        }
        let cert =
            load_server_config(&chain_files, &cert_file, &key_file, &versions).map_err(|what| {
                ConfigError::Syntax {
                    origin: main.origin(setting),
                    what,
                }
            })?;
        tls.cert = Some(cert);
        Ok(tls)
    }
}

fn protocols(
    main: &MainCf,
    name: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, ConfigError> {
    parse_protocols(&main.get_str(name)?).map_err(|what| ConfigError::Syntax {
        origin: main.origin(name),
        what: format!("{name}: {what}"),
    })
}
