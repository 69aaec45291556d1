//! A tiny authoritative answerer for tests: a [`Zone`] of MX, A, AAAA and
//! CNAME records, and [`answer`] / [`answer_udp`] that turn a query's bytes
//! into a reply's bytes with hickory-proto. Unit tests use it behind an
//! in-memory [`super::DnsTransport`]; end-to-end tests run [`serve_udp`]
//! on a loopback socket and point the resolver at it.
//!
//! Not for production: no wildcards, no delegation, no EDNS, and the zone
//! is searched linearly.
//!
//! ```
//! use std::net::{Ipv4Addr, UdpSocket};
//! use std::time::Duration;
//! use sluice_agents::dns::testzone::{serve_udp, Zone};
//!
//! let zone = Zone::new()
//!     .mx("example.org", 10, "mx.example.org")
//!     .a("mx.example.org", Ipv4Addr::new(127, 0, 0, 1));
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
//! // In a real test: a thread runs `serve_udp` while the MTA resolves
//! // against `socket.local_addr()`. Here nobody asks, so it times out.
//! assert_eq!(serve_udp(&socket, &zone, 10).unwrap(), 0);
//! ```

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::CNAME_HOPS_MAX;

/// Answers bigger than this go out over UDP truncated (TC set, no
/// records), as a server without EDNS must (RFC 1035 §4.2.1).
pub const UDP_PAYLOAD_MAX_BYTES: usize = 512;

/// Records in the answers' TTL field.
const TTL_S: u32 = 300;

#[derive(Clone, Debug)]
enum Data {
    Mx(u16, String),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
}

/// Test records by owner name (compared without case or trailing dot),
/// plus names that fail on purpose.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: Vec<(String, Data)>,
    servfail: Vec<String>,
    truncate: Vec<String>,
}

impl Zone {
    pub fn new() -> Self {
        Zone::default()
    }

    /// `owner MX preference exchange`; `exchange` "." is a null MX.
    pub fn mx(mut self, owner: &str, preference: u16, exchange: &str) -> Self {
        self.records
            .push((key(owner), Data::Mx(preference, exchange.to_string())));
        self
    }

    pub fn a(mut self, owner: &str, addr: Ipv4Addr) -> Self {
        self.records.push((key(owner), Data::A(addr)));
        self
    }

    pub fn aaaa(mut self, owner: &str, addr: Ipv6Addr) -> Self {
        self.records.push((key(owner), Data::Aaaa(addr)));
        self
    }

    pub fn cname(mut self, owner: &str, target: &str) -> Self {
        self.records
            .push((key(owner), Data::Cname(target.to_string())));
        self
    }

    /// Every query for `owner` gets SERVFAIL.
    pub fn servfail(mut self, owner: &str) -> Self {
        self.servfail.push(key(owner));
        self
    }

    /// UDP answers for `owner` come back truncated whatever their size,
    /// so that the client must retry over TCP.
    pub fn truncate_over_udp(mut self, owner: &str) -> Self {
        self.truncate.push(key(owner));
        self
    }

    fn owns(&self, name: &str) -> bool {
        self.records.iter().any(|(owner, _)| owner == name)
    }
}

fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The full reply to `query` (as over TCP), or `None` if `query` is not a
/// standard query with one question. Follows CNAMEs inside the zone, as a
/// recursive server returns whole chains; a name the zone does not hold
/// is NXDOMAIN. Records whose names hickory rejects are left out.
pub fn answer(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    build(query, zone).and_then(|m| m.to_vec().ok())
}

/// The reply to `query` as sent over UDP: truncated (TC, no records) when
/// the full reply exceeds [`UDP_PAYLOAD_MAX_BYTES`] or the name is marked
/// with [`Zone::truncate_over_udp`].
pub fn answer_udp(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    let message = build(query, zone)?;
    let full = message.to_vec().ok()?;
    let forced = message
        .queries
        .first()
        .is_some_and(|q| zone.truncate.contains(&key(&q.name().to_ascii())));
    if forced || full.len() > UDP_PAYLOAD_MAX_BYTES {
        message.truncate().to_vec().ok()
    } else {
        Some(full)
    }
}

/// Answer up to `max_queries` datagrams on `socket` from `zone`, returning
/// how many were answered. Stops early, with `Ok`, when a read times out:
/// set a read timeout on the socket so that the serving thread ends.
/// Undecodable datagrams are dropped unanswered (and not counted).
pub fn serve_udp(socket: &UdpSocket, zone: &Zone, max_queries: usize) -> io::Result<usize> {
    let mut buf = vec![0u8; super::DNS_MESSAGE_MAX_BYTES];
    let mut answered = 0;
    while answered < max_queries {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(e),
        };
        if let Some(reply) = answer_udp(&buf[..len], zone) {
            socket.send_to(&reply, peer)?;
            answered += 1;
        }
    }
    Ok(answered)
}

fn build(query: &[u8], zone: &Zone) -> Option<Message> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query
        || request.metadata.op_code != OpCode::Query
    {
        return None;
    }
    let [question] = request.queries.as_slice() else {
        return None;
    };
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(question.clone());

    let qtype = question.query_type();
    let mut current = key(&question.name().to_ascii());
    if zone.servfail.contains(&current) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return Some(reply);
    }
    for _ in 0..=CNAME_HOPS_MAX {
        if !zone.owns(&current) {
            reply.metadata.response_code = ResponseCode::NXDomain;
            break;
        }
        let owner = Name::from_ascii(format!("{current}.")).ok()?;
        let mut alias = None;
        let mut matched = false;
        for (_, data) in zone.records.iter().filter(|(n, _)| *n == current) {
            let rdata = match data {
                Data::Cname(target) => {
                    alias = Some(key(target));
                    fqdn(target).map(|t| RData::CNAME(CNAME(t)))
                }
                Data::Mx(preference, exchange) => {
                    fqdn(exchange).map(|e| RData::MX(MX::new(*preference, e)))
                }
                Data::A(addr) => Some(RData::A(A(*addr))),
                Data::Aaaa(addr) => Some(RData::AAAA(AAAA(*addr))),
            };
            let Some(rdata) = rdata else { continue };
            let rtype = rdata.record_type();
            if rtype == qtype || rtype == RecordType::CNAME {
                matched |= rtype == qtype;
                reply.add_answer(Record::from_rdata(owner.clone(), TTL_S, rdata));
            }
        }
        match alias {
            Some(target) if !matched && qtype != RecordType::CNAME => current = target,
            _ => break,
        }
    }
    Some(reply)
}

fn fqdn(name: &str) -> Option<Name> {
    if name == "." {
        return Some(Name::root());
    }
    let mut n = Name::from_ascii(name).ok()?;
    n.set_fqdn(true);
    Some(n)
}
