//! Lookup failures, worded and classed as Postfix's `dns_lookup()` and
//! `smtp_addr` word and class them.

/// Why a lookup gave no usable answer. `Display` (and [`DnsError::reason`])
/// is Postfix's text for the log line and the bounce; [`DnsError::dsn`] is
/// the enhanced status code; [`DnsError::is_permanent`] says bounce rather
/// than defer. `rtype` is the query type as Postfix prints it (`MX`, `A`,
/// `AAAA`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN (`HOST_NOT_FOUND`).
    #[error(
        "Host or domain name not found. Name service error for name={name} type={rtype}: Host not found"
    )]
    NotFound { name: String, rtype: &'static str },
    /// The name exists without records of the type (`NO_DATA`).
    #[error(
        "Host or domain name not found. Name service error for name={name} type={rtype}: Host found but no data record of requested type"
    )]
    NoData { name: String, rtype: &'static str },
    /// SERVFAIL, REFUSED, timeouts, unreachable servers (`TRY_AGAIN`).
    #[error(
        "Host or domain name not found. Name service error for name={name} type={rtype}: Host not found, try again"
    )]
    TryAgain { name: String, rtype: &'static str },
    /// FORMERR and the other answers the C library calls `NO_RECOVERY`.
    #[error(
        "Host or domain name not found. Name service error for name={name} type={rtype}: Non-recoverable error"
    )]
    NoRecovery { name: String, rtype: &'static str },
    /// An answer section with neither the type asked for nor a CNAME.
    #[error(
        "Name service error for name={name} type={rtype}: Malformed or unexpected name server reply"
    )]
    Unexpected { name: String, rtype: &'static str },
    /// Not a valid host name (Postfix checks before asking: `DNS_INVAL`).
    #[error("Name service error for name={name} type={rtype}: Malformed domain name")]
    Malformed { name: String, rtype: &'static str },
    /// More than [`super::CNAME_HOPS_MAX`] aliases.
    #[error("Name server loop for {name}")]
    Loop { name: String },
    /// The domain publishes a null MX (RFC 7505): it takes no mail.
    #[error("Domain {domain} does not accept mail (nullMX)")]
    NullMx { domain: String },
    /// The host table did not have the name (after any DNS error).
    /// `temporary` when an earlier mechanism failed temporarily, as Postfix
    /// keeps a soft status soft.
    #[error("unable to look up host {name}: Name or service not known")]
    Native { name: String, temporary: bool },
}

impl DnsError {
    /// Postfix's text: what goes in `status=… (reason)` and the bounce.
    pub fn reason(&self) -> String {
        self.to_string()
    }

    /// Whether the recipient bounces (5.x.x) rather than waits (4.x.x).
    pub fn is_permanent(&self) -> bool {
        self.dsn().starts_with('5')
    }

    /// The enhanced status code Postfix's smtp client gives this failure.
    /// Unexpected replies are deferred (Postfix would treat some of them as
    /// not found and bounce; a confused nameserver is not evidence that a
    /// domain is gone).
    pub fn dsn(&self) -> &'static str {
        match self {
            DnsError::NotFound { .. }
            | DnsError::NoData { .. }
            | DnsError::Malformed { .. }
            | DnsError::Loop { .. } => "5.4.4",
            DnsError::TryAgain { .. } | DnsError::Unexpected { .. } => "4.4.3",
            DnsError::NoRecovery { .. } => "5.4.3",
            DnsError::NullMx { .. } => "5.1.0",
            DnsError::Native {
                temporary: true, ..
            } => "4.4.4",
            DnsError::Native {
                temporary: false, ..
            } => "5.4.4",
        }
    }

    /// A failure that may go away on its own (timeouts, SERVFAIL): when
    /// the A and AAAA lookups disagree, such a failure wins over "not
    /// found", so that a flaky resolver defers mail instead of bouncing it.
    pub(crate) fn is_temporary(&self) -> bool {
        !self.is_permanent()
    }
}

/// A bad `smtp_host_lookup` value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseLookupModeError {
    #[error("smtp_host_lookup: unknown mechanism \"{0}\" (expected \"dns\" and/or \"native\")")]
    Unknown(String),
    #[error("smtp_host_lookup: empty list (expected \"dns\" and/or \"native\")")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_codes_are_postfixs() {
        let name = || "nosuch.example".to_string();
        let table: Vec<(DnsError, &str, &str, bool)> = vec![
            (
                DnsError::NotFound { name: name(), rtype: "A" },
                "Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found",
                "5.4.4",
                true,
            ),
            (
                DnsError::TryAgain { name: name(), rtype: "MX" },
                "Host or domain name not found. Name service error for name=nosuch.example type=MX: Host not found, try again",
                "4.4.3",
                false,
            ),
            (
                DnsError::NoRecovery { name: name(), rtype: "MX" },
                "Host or domain name not found. Name service error for name=nosuch.example type=MX: Non-recoverable error",
                "5.4.3",
                true,
            ),
            (
                DnsError::NullMx { domain: name() },
                "Domain nosuch.example does not accept mail (nullMX)",
                "5.1.0",
                true,
            ),
            (
                DnsError::Native { name: name(), temporary: true },
                "unable to look up host nosuch.example: Name or service not known",
                "4.4.4",
                false,
            ),
            (
                DnsError::Loop { name: name() },
                "Name server loop for nosuch.example",
                "5.4.4",
                true,
            ),
        ];
        for (err, reason, dsn, permanent) in table {
            assert_eq!(err.reason(), reason);
            assert_eq!(err.dsn(), dsn, "{reason}");
            assert_eq!(err.is_permanent(), permanent, "{reason}");
        }
    }
}
