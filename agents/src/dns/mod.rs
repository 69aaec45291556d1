//! MX and A/AAAA resolution for the smtp delivery agent: Postfix's
//! `smtp_host_lookup = dns, native` next-hop lookup.
//!
//! - **Role.** Turn a recipient domain into the ordered list of mail
//!   exchangers to try ([`Resolver::mx_hosts`]), or a `[host]` nexthop into
//!   its addresses ([`Resolver::host_addrs`]), with Postfix's failure
//!   texts and enhanced status codes ([`DnsError`]).
//! - **Trusts.** Nothing from the network: every reply is decoded with
//!   hickory-proto and must carry the query's ID and question, or it is
//!   ignored as if it never arrived. `/etc/resolv.conf` and `/etc/hosts`
//!   are trusted as the system's configuration.
//! - **Touches on disk.** Only what [`ResolvConf::load`] and [`Hosts::load`]
//!   are asked to read, once, at start-up or reload.
//! - **Limits.** At most [`MAXNS`] nameservers, [`CNAME_HOPS_MAX`] aliases,
//!   [`MX_HOSTS_MAX`] exchangers, [`ANSWER_RECORDS_MAX`] records per answer,
//!   [`DNS_MESSAGE_MAX_BYTES`] per reply; the file readers are bounded too.
//! - **Parameters.** `smtp_host_lookup` ([`LookupMode::parse_list`]),
//!   `inet_protocols` ([`InetProtocols::parse`]); resolv.conf's `nameserver`,
//!   `options timeout:n attempts:n`.
//!
//! The I/O is the engine's: the resolver builds queries and reads replies
//! (sans-IO, in [`wire`]) and sends them through a [`DnsTransport`], which
//! the engine implements with glommio sockets and tests implement in memory
//! (see [`testzone`] for a DNS answerer built on hickory).
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::time::Duration;
//! use sluice_agents::dns::{testzone, DnsTransport, Hosts, LookupMode, ResolvConf, Resolver};
//!
//! /// Answers every query from a zone, as a loopback test server would.
//! struct Memory(testzone::Zone);
//! impl DnsTransport for Memory {
//!     async fn udp(&self, _: SocketAddr, q: &[u8], _: Duration) -> std::io::Result<Vec<u8>> {
//!         testzone::answer_udp(q, &self.0).ok_or(std::io::ErrorKind::InvalidData.into())
//!     }
//!     async fn tcp(&self, _: SocketAddr, q: &[u8], _: Duration) -> std::io::Result<Vec<u8>> {
//!         testzone::answer(q, &self.0).ok_or(std::io::ErrorKind::InvalidData.into())
//!     }
//! }
//!
//! let zone = testzone::Zone::new()
//!     .mx("example.org", 10, "mx.example.org")
//!     .a("mx.example.org", Ipv4Addr::new(192, 0, 2, 25));
//! let resolver = Resolver::new(
//!     ResolvConf::parse("nameserver 127.0.0.1\n"),
//!     Hosts::default(),
//!     vec![LookupMode::Dns, LookupMode::Native],
//!     Memory(zone),
//! );
//! let hosts = futures_lite::future::block_on(resolver.mx_hosts("example.org", 7)).unwrap();
//! assert_eq!(hosts[0].name, "mx.example.org");
//! assert_eq!(hosts[0].addrs, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25))]);
//! ```

mod conf;
mod error;
mod resolver;
mod rng;
pub mod testzone;
pub mod wire;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use conf::{Hosts, ResolvConf, HOSTS_FILE_MAX_BYTES, MAXNS, RESOLV_CONF_MAX_BYTES};
pub use error::{DnsError, ParseLookupModeError};
pub use resolver::Resolver;
pub use rng::shuffle;

/// How many CNAMEs a lookup follows before giving up with "Name server
/// loop": Postfix's `dns_lookup()` bound.
pub const CNAME_HOPS_MAX: usize = 10;

/// How many mail exchangers of one domain get their addresses looked up.
/// Postfix delivers to at most `smtp_mx_address_limit` (5) addresses over
/// `smtp_mx_session_limit` (2) sessions, so exchangers past the first few
/// are never used; the bound keeps a hostile MX set from costing hundreds
/// of queries.
pub const MX_HOSTS_MAX: usize = 32;

/// How many records of the asked-for type one answer contributes. A
/// generous multiple of `smtp_mx_address_limit`; more is a zone error or
/// an attack, and the rest are ignored.
pub const ANSWER_RECORDS_MAX: usize = 64;

/// The largest DNS message read: a TCP reply's 2-byte length prefix cannot
/// say more, and UDP datagrams are smaller still.
pub const DNS_MESSAGE_MAX_BYTES: usize = 65_535;

/// How queries reach a nameserver. The engine implements it with glommio's
/// `UdpSocket` and `TcpStream`; tests answer from memory.
///
/// Both methods take a complete DNS message (no length prefix) and return
/// one, and give up with an error (`io::ErrorKind::TimedOut` for a timeout)
/// once `timeout` has passed.
pub trait DnsTransport {
    /// Send `query` in one datagram to `server` and return the first
    /// datagram that comes back from `server` and passes
    /// [`wire::is_reply_to`]; other datagrams are dropped and the wait goes
    /// on, so that a stray or spoofed packet does not end the attempt.
    /// Read buffers of [`DNS_MESSAGE_MAX_BYTES`] suffice.
    fn udp(
        &self,
        server: SocketAddr,
        query: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Vec<u8>>>;

    /// Connect to `server`, send `query` framed with [`wire::tcp_frame`],
    /// read the 2-byte length ([`wire::tcp_reply_len`]) and that many bytes,
    /// and return them without the prefix.
    fn tcp(
        &self,
        server: SocketAddr,
        query: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<Vec<u8>>>;
}

/// One `smtp_host_lookup` mechanism for host addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupMode {
    /// A/AAAA queries to the resolv.conf nameservers.
    Dns,
    /// The system's host table (`/etc/hosts`). Postfix's "native" is
    /// getaddrinfo(), which reads the same file first; we read it directly
    /// rather than block a shard thread inside the C library.
    Native,
}

impl LookupMode {
    /// Parse an `smtp_host_lookup` value such as `dns, native`: names
    /// separated by commas and/or whitespace, case-insensitive, in the
    /// order to try them. Duplicates are dropped; an empty list is an error.
    pub fn parse_list(value: &str) -> Result<Vec<LookupMode>, ParseLookupModeError> {
        let mut modes = Vec::new();
        for word in value
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let mode = if word.eq_ignore_ascii_case("dns") {
                LookupMode::Dns
            } else if word.eq_ignore_ascii_case("native") {
                LookupMode::Native
            } else {
                return Err(ParseLookupModeError::Unknown(word.to_string()));
            };
            if !modes.contains(&mode) {
                modes.push(mode);
            }
        }
        if modes.is_empty() {
            return Err(ParseLookupModeError::Empty);
        }
        Ok(modes)
    }
}

/// Which address families to look up and connect to: Postfix's
/// `inet_protocols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InetProtocols {
    Ipv4,
    Ipv6,
    /// Both, IPv4 queried first (Postfix's `all`).
    #[default]
    All,
}

impl InetProtocols {
    /// Parse an `inet_protocols` value: `all`, `ipv4`, `ipv6` or a list
    /// such as `ipv4, ipv6`. `None` for an unknown word or an empty list.
    pub fn parse(value: &str) -> Option<InetProtocols> {
        let (mut v4, mut v6) = (false, false);
        for word in value
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            match word.to_ascii_lowercase().as_str() {
                "all" => (v4, v6) = (true, true),
                "ipv4" => v4 = true,
                "ipv6" => v6 = true,
                _ => return None,
            }
        }
        match (v4, v6) {
            (true, true) => Some(InetProtocols::All),
            (true, false) => Some(InetProtocols::Ipv4),
            (false, true) => Some(InetProtocols::Ipv6),
            (false, false) => None,
        }
    }

    /// Whether `addr`'s family is enabled.
    pub fn allows(self, addr: &IpAddr) -> bool {
        match self {
            InetProtocols::All => true,
            InetProtocols::Ipv4 => addr.is_ipv4(),
            InetProtocols::Ipv6 => addr.is_ipv6(),
        }
    }
}

/// One mail exchanger and its addresses, in the order to try them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxHost {
    /// The MX preference; 0 for a domain without MX records, whose own
    /// address records stand in.
    pub preference: u16,
    /// The exchanger's name, without the trailing dot.
    pub name: String,
    pub addrs: Vec<IpAddr>,
}
