//! `local_header_rewrite_clients`: which smtpd clients get their missing
//! `Message-Id:`, `Date:` and `From:` headers added (cleanup always adds
//! them for pickup, and for everyone with `always_add_missing_headers`).
//!
//! Trust: configuration only. The decision is pure: the client's address,
//! whether it matched mynetworks, and whether it logged in. Postfix's
//! other forms (`permit_tls_clientcerts`, `permit_tls_all_clientcerts`,
//! `check_address_map`) are refused at load with the list of what is
//! implemented, rather than silently matching nobody.

use std::net::IpAddr;

use super::{ConfigError, MainCf};

/// The parsed list; an empty list matches no client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderRewriteClients {
    /// `static:all` (master.cf.dist's submission services).
    pub all: bool,
    /// `permit_inet_interfaces` (the default): a client on one of our own
    /// addresses; loopback stands in for "our interfaces".
    pub inet_interfaces: bool,
    /// `permit_mynetworks`.
    pub mynetworks: bool,
    /// `permit_sasl_authenticated`.
    pub sasl_authenticated: bool,
}

impl HeaderRewriteClients {
    const NAME: &'static str = "local_header_rewrite_clients";

    pub fn from_main(main: &MainCf) -> Result<HeaderRewriteClients, ConfigError> {
        let mut c = HeaderRewriteClients::default();
        for item in main.get_list(Self::NAME)? {
            match item.to_ascii_lowercase().as_str() {
                "static:all" => c.all = true,
                "permit_inet_interfaces" => c.inet_interfaces = true,
                "permit_mynetworks" => c.mynetworks = true,
                "permit_sasl_authenticated" => c.sasl_authenticated = true,
                _ => {
                    return Err(main.bad_value(
                        Self::NAME,
                        "Sluice implements static:all, permit_inet_interfaces, \
                         permit_mynetworks and permit_sasl_authenticated only",
                    ))
                }
            }
        }
        Ok(c)
    }

    /// Whether this client's mail gets its missing headers added.
    pub fn matches(&self, addr: IpAddr, in_mynetworks: bool, authenticated: bool) -> bool {
        self.all
            || (self.inet_interfaces && addr.to_canonical().is_loopback())
            || (self.mynetworks && in_mynetworks)
            || (self.sasl_authenticated && authenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_matches_its_clients() {
        let lo: IpAddr = "127.0.0.5".parse().unwrap();
        let far: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let default = HeaderRewriteClients {
            inet_interfaces: true,
            ..Default::default()
        };
        assert!(default.matches(lo, false, false));
        assert!(default.matches(mapped, false, false));
        assert!(!default.matches(far, true, true));
        let all = HeaderRewriteClients {
            all: true,
            ..Default::default()
        };
        assert!(all.matches(far, false, false));
        let nets = HeaderRewriteClients {
            mynetworks: true,
            ..Default::default()
        };
        assert!(nets.matches(far, true, false) && !nets.matches(lo, false, false));
        let sasl = HeaderRewriteClients {
            sasl_authenticated: true,
            ..Default::default()
        };
        assert!(sasl.matches(far, false, true) && !sasl.matches(far, true, false));
        assert!(!HeaderRewriteClients::default().matches(lo, true, true));
    }
}
