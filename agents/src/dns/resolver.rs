//! The lookup logic: which queries to send, in what order, to which
//! servers, and what the answers add up to (Postfix's `smtp_addr.c` over
//! `dns_lookup.c`, with the C library's retry loop in between).

use std::cell::Cell;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RData, RecordType};

use super::error::DnsError;
use super::rng::{splitmix64, XorShift};
use super::wire::{self, Reply};
use super::{
    DnsTransport, Hosts, InetProtocols, LookupMode, MxHost, ResolvConf, CNAME_HOPS_MAX,
    MX_HOSTS_MAX,
};

/// A stub resolver for the smtp agent. One per shard: it is not `Sync`
/// (the query-ID generator is a `Cell`), and needs no locking.
pub struct Resolver<T: DnsTransport> {
    conf: ResolvConf,
    hosts: Hosts,
    modes: Vec<LookupMode>,
    inet: InetProtocols,
    transport: T,
    /// xorshift state for query IDs.
    ids: Cell<u64>,
}

impl<T: DnsTransport> Resolver<T> {
    /// A resolver asking `conf`'s nameservers over `transport`, and
    /// `hosts` when `modes` (`smtp_host_lookup`) includes `Native`. An
    /// empty `modes` means DNS only. Both address families are looked up
    /// until [`Resolver::with_inet_protocols`] says otherwise. Query IDs
    /// are seeded from the clock; [`Resolver::with_query_id_seed`] fixes
    /// them for tests.
    pub fn new(conf: ResolvConf, hosts: Hosts, modes: Vec<LookupMode>, transport: T) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let modes = if modes.is_empty() {
            vec![LookupMode::Dns]
        } else {
            modes
        };
        Resolver {
            conf,
            hosts,
            modes,
            inet: InetProtocols::All,
            transport,
            ids: Cell::new(splitmix64(now ^ u64::from(std::process::id()))),
        }
    }

    /// Look up only the address families of `inet_protocols`.
    pub fn with_inet_protocols(mut self, inet: InetProtocols) -> Self {
        self.inet = inet;
        self
    }

    /// Draw query IDs from `seed` instead of the clock.
    pub fn with_query_id_seed(self, seed: u64) -> Self {
        self.ids.set(splitmix64(seed));
        self
    }

    /// The transport, for callers (and tests) that need to reach it.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Postfix's smtp next-hop lookup for `domain`: its MX hosts by
    /// preference, equal preferences in a `seed`-determined order, each
    /// with its addresses (also shuffled, as `smtp_randomize_addresses`
    /// does). A domain without MX records stands in for itself with
    /// preference 0. MX hosts whose addresses cannot be found are left
    /// out; if none is left, the last host's error is returned, as Postfix
    /// reports it. A null MX (RFC 7505) is [`DnsError::NullMx`]. The MX
    /// query always goes to DNS; `smtp_host_lookup` applies to addresses.
    /// An IP address (`192.0.2.1`, without brackets) is its own exchanger.
    pub async fn mx_hosts(&self, domain: &str, seed: u64) -> Result<Vec<MxHost>, DnsError> {
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let mut rng = XorShift::new(seed);
        self.ids.set(self.ids.get() ^ splitmix64(seed));
        if let Ok(ip) = domain.parse::<IpAddr>() {
            return Ok(vec![MxHost {
                preference: 0,
                name: domain.to_string(),
                addrs: self.literal(domain, ip)?,
            }]);
        }
        let exchangers = match self.lookup(domain, RecordType::MX).await {
            Ok(records) => exchangers(domain, records, &mut rng)?,
            Err(DnsError::NotFound { .. } | DnsError::NoData { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        if exchangers.is_empty() {
            let mut addrs = self.host_addrs(domain).await?;
            rng.shuffle(&mut addrs);
            return Ok(vec![MxHost {
                preference: 0,
                name: domain.to_string(),
                addrs,
            }]);
        }
        let mut hosts = Vec::with_capacity(exchangers.len());
        let mut last_error = None;
        for (preference, name) in exchangers {
            match self.host_addrs(&name).await {
                Ok(mut addrs) => {
                    rng.shuffle(&mut addrs);
                    hosts.push(MxHost {
                        preference,
                        name,
                        addrs,
                    });
                }
                Err(e) => {
                    tracing::debug!("MX host {name} of {domain}: {e}");
                    last_error = Some(e);
                }
            }
        }
        match (hosts.is_empty(), last_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(hosts),
        }
    }

    /// The addresses of host `name` (a `[host]` nexthop or an MX target),
    /// by the `smtp_host_lookup` mechanisms in order; the first that finds
    /// any wins. An IP address is its own answer. When all fail, the last
    /// mechanism's error is returned, kept temporary if an earlier one
    /// failed temporarily.
    pub async fn host_addrs(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.literal(name, ip);
        }
        let mut error: Option<DnsError> = None;
        for mode in &self.modes {
            let result = match mode {
                LookupMode::Dns => self.dns_addrs(name).await,
                LookupMode::Native => {
                    let mut addrs = self.hosts.lookup(name);
                    addrs.retain(|a| self.inet.allows(a));
                    if addrs.is_empty() {
                        Err(DnsError::Native {
                            name: name.to_string(),
                            temporary: error.as_ref().is_some_and(DnsError::is_temporary),
                        })
                    } else {
                        Ok(addrs)
                    }
                }
            };
            match result {
                Ok(addrs) => return Ok(addrs),
                Err(e) => error = Some(e),
            }
        }
        // `modes` is never empty (see `new`), so an error was recorded.
        Err(error.unwrap_or_else(|| DnsError::NotFound {
            name: name.to_string(),
            rtype: "A",
        }))
    }

    /// An address literal, if its family is enabled.
    fn literal(&self, name: &str, ip: IpAddr) -> Result<Vec<IpAddr>, DnsError> {
        if self.inet.allows(&ip) {
            Ok(vec![ip])
        } else {
            Err(DnsError::NotFound {
                name: name.to_string(),
                rtype: if ip.is_ipv4() { "A" } else { "AAAA" },
            })
        }
    }

    /// A, then AAAA (per `inet_protocols`). Any address is success; else
    /// the first temporary error, so that a lookup that might work later is
    /// deferred, not bounced; else the first error (Postfix reports the
    /// most preferred type's).
    async fn dns_addrs(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let types: &[RecordType] = match self.inet {
            InetProtocols::All => &[RecordType::A, RecordType::AAAA],
            InetProtocols::Ipv4 => &[RecordType::A],
            InetProtocols::Ipv6 => &[RecordType::AAAA],
        };
        let mut addrs = Vec::new();
        let mut errors = Vec::new();
        for &rtype in types {
            match self.lookup(name, rtype).await {
                Ok(records) => addrs.extend(records.iter().filter_map(|r| match r {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) => errors.push(e),
            }
        }
        let mut unique = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        if !unique.is_empty() {
            return Ok(unique);
        }
        Err(match errors.iter().position(DnsError::is_temporary) {
            Some(i) => errors.swap_remove(i),
            // Both types answered, with nothing usable (not reachable with
            // well-formed replies, whose records match the type asked).
            None => errors.into_iter().next().unwrap_or(DnsError::NoData {
                name: name.to_string(),
                rtype: wire::type_name(types[0]),
            }),
        })
    }

    /// `dns_lookup()`: records of `rtype` for `name`, following CNAMEs
    /// across queries when an answer stops at an alias.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, DnsError> {
        let rtype_name = wire::type_name(rtype);
        let Some(mut qname) = wire::host_name(name) else {
            return Err(DnsError::Malformed {
                name: name.to_string(),
                rtype: rtype_name,
            });
        };
        let mut shown = name.to_string();
        for _ in 0..CNAME_HOPS_MAX {
            match self.exchange(&qname, rtype).await {
                Reply::Records(records) => return Ok(records),
                Reply::Alias(target) => {
                    tracing::debug!("{shown} aliased to {}", wire::display(&target));
                    shown = wire::display(&target);
                    qname = target;
                }
                Reply::NxDomain => {
                    return Err(DnsError::NotFound {
                        name: shown,
                        rtype: rtype_name,
                    })
                }
                Reply::NoData => {
                    return Err(DnsError::NoData {
                        name: shown,
                        rtype: rtype_name,
                    })
                }
                Reply::Unexpected => {
                    return Err(DnsError::Unexpected {
                        name: shown,
                        rtype: rtype_name,
                    })
                }
                Reply::NoRecovery => {
                    return Err(DnsError::NoRecovery {
                        name: shown,
                        rtype: rtype_name,
                    })
                }
                // `exchange` turns these into a retry or `Ignore`.
                Reply::Truncated | Reply::ServerFailure | Reply::Ignore => {
                    return Err(DnsError::TryAgain {
                        name: shown,
                        rtype: rtype_name,
                    })
                }
            }
        }
        Err(DnsError::Loop { name: shown })
    }

    /// One question, asked as the C library asks it: `attempts` rounds
    /// over the nameservers, `timeout` each, over TCP when a UDP reply is
    /// truncated. Servers that fail, time out or send something that is
    /// not our answer are skipped. `Ignore` means nobody answered.
    async fn exchange(&self, qname: &Name, rtype: RecordType) -> Reply {
        let id = self.next_id();
        let Some(query) = wire::encode_query(qname, rtype, id) else {
            return Reply::Ignore;
        };
        let timeout = self.conf.timeout;
        for _ in 0..self.conf.attempts {
            for &server in &self.conf.nameservers {
                let reply = match self.transport.udp(server, &query, timeout).await {
                    Ok(bytes) => wire::read_reply(&bytes, id, qname, rtype, false),
                    Err(e) => {
                        tracing::debug!("DNS query to {server} over UDP: {e}");
                        continue;
                    }
                };
                let reply = if reply == Reply::Truncated {
                    match self.transport.tcp(server, &query, timeout).await {
                        Ok(bytes) => wire::read_reply(&bytes, id, qname, rtype, true),
                        Err(e) => {
                            tracing::debug!("DNS query to {server} over TCP: {e}");
                            continue;
                        }
                    }
                } else {
                    reply
                };
                match reply {
                    Reply::Ignore | Reply::ServerFailure | Reply::Truncated => continue,
                    answer => return answer,
                }
            }
        }
        Reply::Ignore
    }

    pub(super) fn next_id(&self) -> u16 {
        let mut rng = XorShift::new(self.ids.get());
        let value = rng.next_u64();
        self.ids.set(value);
        (value >> 48) as u16
    }
}

/// The MX records of `domain` as (preference, name) in the order to try:
/// sorted by preference, equal preferences shuffled, duplicates dropped,
/// at most [`MX_HOSTS_MAX`]. A lone null MX is [`DnsError::NullMx`]; null
/// and numeric exchangers among others are dropped (RFC 7505 §3, Postfix's
/// "numeric domain name in resource data of MX record").
fn exchangers(
    domain: &str,
    records: Vec<RData>,
    rng: &mut XorShift,
) -> Result<Vec<(u16, String)>, DnsError> {
    let mut mx: Vec<(u16, Name)> = records
        .into_iter()
        .filter_map(|r| match r {
            RData::MX(mx) => Some((mx.preference, mx.exchange)),
            _ => None,
        })
        .collect();
    if let [(_, exchange)] = mx.as_slice() {
        if exchange.is_root() {
            return Err(DnsError::NullMx {
                domain: domain.to_string(),
            });
        }
    }
    let mut list: Vec<(u16, String)> = mx
        .drain(..)
        .filter(|(_, exchange)| !exchange.is_root())
        .map(|(preference, exchange)| (preference, wire::display(&exchange)))
        .filter(|(_, name)| {
            let numeric = name.parse::<IpAddr>().is_ok();
            if numeric {
                tracing::warn!(
                    "numeric domain name in resource data of MX record for {domain}: {name}"
                );
            }
            !numeric
        })
        .collect();
    // Shuffle first, then a stable sort: equal preferences keep the
    // shuffled order.
    rng.shuffle(&mut list);
    list.sort_by_key(|(preference, _)| *preference);
    let mut seen: Vec<String> = Vec::with_capacity(list.len());
    list.retain(|(_, name)| {
        let key = name.to_ascii_lowercase();
        let fresh = !seen.contains(&key);
        if fresh {
            seen.push(key);
        }
        fresh
    });
    list.truncate(MX_HOSTS_MAX);
    Ok(list)
}
