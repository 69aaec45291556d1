//! The DNS wire parser (`agents/src/dns/wire.rs`), reached the way a
//! hostile nameserver reaches it: through [`Resolver`] and a transport
//! that answers every query, over UDP and TCP alike, with the fuzzer's
//! message.
//!
//! Input layout: the first byte picks the lookup (bit 0: `host_addrs`
//! instead of `mx_hosts`; bit 1: the message goes out as it is, without
//! the splice below); the rest is a DNS message. Unless told otherwise the
//! transport splices each query into it: the query's ID replaces bytes
//! 0..2, QDCOUNT becomes 1 and the query's question is inserted after the
//! 12-byte header, so that the fuzzer's answer records (which can point at
//! the question's name, offset 12) reach the answer-following code instead
//! of stopping at "not our ID".
//!
//! Checked: no panic; a bounded number of queries per lookup; a result
//! within the resolver's bounds (at most `MX_HOSTS_MAX` exchangers, in
//! preference order, each with at most twice `ANSWER_RECORDS_MAX`
//! addresses); an error with a non-empty text and a 4.x.x or 5.x.x status.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use sluice_agents::dns::{
    DnsTransport, Hosts, LookupMode, ResolvConf, Resolver, ANSWER_RECORDS_MAX, MX_HOSTS_MAX,
};

/// The domain looked up; the fuzzer's records may name anything.
const DOMAIN: &str = "example.org";

/// More queries than any lookup may make: the MX query, then A and AAAA
/// (each with its CNAME chain and retries) for every exchanger.
const QUERIES_MAX: usize = 10_000;

/// Answers every query with the fuzz message (spliced, see module docs).
struct Replay<'a> {
    message: &'a [u8],
    splice: bool,
    queries: Cell<usize>,
}

impl Replay<'_> {
    fn answer(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        self.queries.set(self.queries.get() + 1);
        assert!(
            self.queries.get() <= QUERIES_MAX,
            "more than {QUERIES_MAX} queries for one lookup"
        );
        Ok(splice(self.message, query, self.splice))
    }
}

/// `message` made into an answer to `query` (see the module docs).
pub fn splice(message: &[u8], query: &[u8], splice: bool) -> Vec<u8> {
    if !splice || message.len() < 12 || query.len() < 12 {
        return message.to_vec();
    }
    let mut out = Vec::with_capacity(message.len() + query.len());
    out.extend_from_slice(&query[..2]);
    out.extend_from_slice(&message[2..4]);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&message[6..12]);
    out.extend_from_slice(&query[12..]);
    out.extend_from_slice(&message[12..]);
    out
}

impl DnsTransport for Replay<'_> {
    async fn udp(&self, _: SocketAddr, query: &[u8], _: Duration) -> io::Result<Vec<u8>> {
        self.answer(query)
    }

    async fn tcp(&self, _: SocketAddr, query: &[u8], _: Duration) -> io::Result<Vec<u8>> {
        self.answer(query)
    }
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let Some((&flags, message)) = data.split_first() else {
        return;
    };
    let transport = Replay {
        message,
        splice: flags & 2 == 0,
        queries: Cell::new(0),
    };
    let resolver = Resolver::new(
        ResolvConf::parse("nameserver 127.0.0.1\n"),
        Hosts::default(),
        vec![LookupMode::Dns],
        transport,
    )
    .with_query_id_seed(u64::from(flags));
    let addrs_max = 2 * ANSWER_RECORDS_MAX;
    if flags & 1 != 0 {
        match futures_lite::future::block_on(resolver.host_addrs(DOMAIN)) {
            Ok(addrs) => assert!(addrs.len() <= addrs_max, "{} addresses", addrs.len()),
            Err(e) => check_error(&e),
        }
        return;
    }
    match futures_lite::future::block_on(resolver.mx_hosts(DOMAIN, u64::from(flags))) {
        Ok(hosts) => {
            assert!(!hosts.is_empty());
            assert!(hosts.len() <= MX_HOSTS_MAX, "{} exchangers", hosts.len());
            assert!(hosts.windows(2).all(|w| w[0].preference <= w[1].preference));
            for h in &hosts {
                assert!(!h.name.is_empty());
                assert!(!h.addrs.is_empty(), "{h:?} has no address");
                assert!(h.addrs.len() <= addrs_max, "{} addresses", h.addrs.len());
            }
        }
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &sluice_agents::dns::DnsError) {
    assert!(!e.reason().is_empty(), "{e:?}");
    let dsn = e.dsn();
    assert!(
        dsn.starts_with("4.") || dsn.starts_with("5."),
        "{e:?}: {dsn}"
    );
}
