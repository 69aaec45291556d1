//! SMTP AUTH in the smtp client (Postfix's `smtp_sasl_*`): credentials per
//! server or nexthop from `smtp_sasl_password_maps`, PLAIN or LOGIN as the
//! server offers them, and only when the session's security options allow
//! those plaintext mechanisms — by default only inside TLS.
//!
//! Trust: the credentials are secrets from our configuration and never
//! appear in logs or reasons (Debug is redacted); the server is untrusted
//! and its replies are read under `smtp_helo_timeout`.

use std::collections::HashMap;
use std::fmt;

use futures_lite::{AsyncRead, AsyncWrite};
use sluice_protocols::smtp::client::auth::{self, Mechanism};
use sluice_protocols::smtp::reply::EnhancedCode;

use super::error::{SessionError, Stage};
use super::session::Connection;
use crate::runtime::Clock;

/// The parts of `smtp_sasl_security_options` that matter for PLAIN and
/// LOGIN. `noanonymous`, `noactive`, `nodictionary`, `mutual_auth` and
/// `forward_secrecy` are satisfied by them or exclude them entirely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SaslSecurity {
    /// `noplaintext`: no mechanism that sends the password as it is.
    pub noplaintext: bool,
    /// `nodictionary`, `mutual_auth`, `forward_secrecy`: PLAIN and LOGIN
    /// cannot satisfy these.
    pub excludes_plain_and_login: bool,
}

impl SaslSecurity {
    pub fn parse(text: &str) -> Result<SaslSecurity, String> {
        let mut s = SaslSecurity::default();
        for word in text.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
            match word.to_ascii_lowercase().as_str() {
                "noplaintext" => s.noplaintext = true,
                "noanonymous" | "noactive" => {}
                "nodictionary" | "mutual_auth" | "forward_secrecy" => {
                    s.excludes_plain_and_login = true
                }
                _ => return Err(format!("unknown SASL security option {word:?}")),
            }
        }
        Ok(s)
    }
}

/// The smtp client's SASL settings, read at load.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslClientParams {
    /// `smtp_sasl_password_maps`: lower-cased key → `username:password`.
    pub passwords: HashMap<String, String>,
    /// `smtp_sasl_security_options`, for plaintext sessions.
    pub options: SaslSecurity,
    /// `smtp_sasl_tls_security_options`, for sessions inside TLS.
    pub tls_options: SaslSecurity,
    /// `smtp_sasl_mechanism_filter` (upper case; empty: no filter).
    pub mechanism_filter: Vec<String>,
    /// `smtp_sasl_auth_soft_bounce`: a 5xx to AUTH defers rather than
    /// bounces.
    pub soft_bounce: bool,
}

impl fmt::Debug for SaslClientParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClientParams")
            .field(
                "passwords",
                &format_args!("<{} entries>", self.passwords.len()),
            )
            .field("options", &self.options)
            .field("tls_options", &self.tls_options)
            .field("mechanism_filter", &self.mechanism_filter)
            .field("soft_bounce", &self.soft_bounce)
            .finish()
    }
}

/// A username and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl SaslClientParams {
    /// The credentials for a server, looked up as Postfix does: by the
    /// server's host name, then by the nexthop as written in the transport
    /// or relayhost (`[smtp.example.net]:587`).
    pub fn credentials(&self, mx_host: &str, nexthop: &str) -> Option<Credentials> {
        [mx_host, nexthop]
            .iter()
            .find_map(|k| self.passwords.get(&k.to_ascii_lowercase()))
            .and_then(|v| v.split_once(':'))
            .map(|(user, password)| Credentials {
                user: user.to_string(),
                password: password.to_string(),
            })
    }
}

/// The mechanism to use: PLAIN, else LOGIN, among those the server offers
/// and the filter keeps, unless the security options exclude both.
pub fn choose_mechanism(
    offered: &[String],
    filter: &[String],
    security: SaslSecurity,
) -> Option<Mechanism> {
    if security.noplaintext || security.excludes_plain_and_login {
        return None;
    }
    [Mechanism::Plain, Mechanism::Login].into_iter().find(|m| {
        offered.iter().any(|o| o == m.name())
            && (filter.is_empty() || filter.iter().any(|f| f == m.name()))
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Authenticates when the server offers AUTH (Postfix goes on without
    /// it when not offered). A refusal, or no usable mechanism, is a
    /// session error in Postfix's words.
    pub async fn authenticate<C: Clock>(
        &mut self,
        creds: &Credentials,
        sasl: &SaslClientParams,
        clock: &C,
    ) -> Result<(), SessionError> {
        if self.ext.auth.is_empty() {
            return Ok(());
        }
        let security = if self.tls.is_some() {
            sasl.tls_options
        } else {
            sasl.options
        };
        let Some(mech) = choose_mechanism(&self.ext.auth, &sasl.mechanism_filter, security) else {
            self.usable = false;
            return Err(SessionError::Sasl {
                reason: format!(
                    "SASL authentication failed; cannot authenticate to server {}: no mechanism available",
                    self.namaddr
                ),
                dsn: EnhancedCode(4, 7, 0),
            });
        };
        let stage = Stage::Auth;
        let reply = match mech {
            Mechanism::Plain => {
                self.write(clock, stage, &auth::plain(&creds.user, &creds.password))
                    .await?;
                self.read_reply(clock, stage).await?
            }
            Mechanism::Login => {
                self.write(clock, stage, auth::LOGIN).await?;
                let mut reply = self.read_reply(clock, stage).await?;
                for value in [&creds.user, &creds.password] {
                    if reply.code != 334 {
                        break;
                    }
                    self.write(clock, stage, &auth::login_response(value))
                        .await?;
                    reply = self.read_reply(clock, stage).await?;
                }
                reply
            }
        };
        if reply.code == 235 {
            return Ok(());
        }
        self.usable = false;
        let mut dsn = super::session::failure_dsn(&reply);
        if dsn.0 == 5 && sasl.soft_bounce {
            dsn.0 = 4;
        }
        Err(SessionError::Sasl {
            reason: format!(
                "SASL authentication failed; server {} said: {}",
                self.namaddr,
                reply.one_line()
            ),
            dsn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mechanisms_by_preference_filter_and_options() {
        let open = SaslSecurity::default();
        let noplain = SaslSecurity::parse("noplaintext, noanonymous").unwrap();
        assert_eq!(
            choose_mechanism(&offered(&["LOGIN", "PLAIN"]), &[], open),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            choose_mechanism(&offered(&["LOGIN", "CRAM-MD5"]), &[], open),
            Some(Mechanism::Login)
        );
        assert_eq!(
            choose_mechanism(&offered(&["LOGIN", "PLAIN"]), &offered(&["LOGIN"]), open),
            Some(Mechanism::Login)
        );
        assert_eq!(choose_mechanism(&offered(&["PLAIN"]), &[], noplain), None);
        assert_eq!(choose_mechanism(&offered(&["CRAM-MD5"]), &[], open), None);
        assert!(SaslSecurity::parse("noanonymous").is_ok());
        assert!(SaslSecurity::parse("bogus").is_err());
    }

    #[test]
    fn credentials_by_host_then_nexthop() {
        let mut passwords = HashMap::new();
        passwords.insert("[smtp.example.net]:587".to_string(), "u1:p:1".to_string());
        passwords.insert("mx.example.org".to_string(), "u2:p2".to_string());
        let sasl = SaslClientParams {
            passwords,
            options: SaslSecurity::default(),
            tls_options: SaslSecurity::default(),
            mechanism_filter: Vec::new(),
            soft_bounce: true,
        };
        let c = sasl
            .credentials("smtp.example.net", "[smtp.example.net]:587")
            .unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("u1", "p:1"));
        let c = sasl.credentials("MX.example.org", "example.org").unwrap();
        assert_eq!(c.user, "u2");
        assert!(sasl.credentials("other", "other").is_none());
        assert!(!format!("{sasl:?}").contains("p2"));
    }
}
