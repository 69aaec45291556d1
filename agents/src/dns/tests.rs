//! The resolver against an in-memory transport answering from a
//! [`testzone::Zone`], with faults injected per UDP exchange.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use futures_lite::future::block_on;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use proptest::prelude::*;

use super::testzone::{self, Zone};
use super::*;

/// What happens to one UDP exchange instead of a normal answer.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Timeout,
    /// The zone's answer, with another ID.
    WrongId,
    /// The zone's answer to a different question, with the right ID.
    WrongQuestion,
    Garbage,
    ServFail,
    Refused,
    FormErr,
    /// The zone's answer with only its CNAME records: the client must
    /// ask again for the target.
    CnameOnly,
}

#[derive(Default)]
struct Memory {
    zone: Zone,
    /// Servers that never answer.
    dead: Vec<SocketAddr>,
    /// One entry per UDP exchange, in order; `None` (or an empty script)
    /// means a normal answer.
    script: RefCell<VecDeque<Option<Fault>>>,
    /// (transport, server, "name TYPE") of every query sent.
    log: RefCell<Vec<(&'static str, SocketAddr, String)>>,
}

impl Memory {
    fn new(zone: Zone) -> Self {
        Memory {
            zone,
            ..Memory::default()
        }
    }

    fn script(self, faults: &[Option<Fault>]) -> Self {
        self.script.borrow_mut().extend(faults.iter().copied());
        self
    }

    fn record(&self, how: &'static str, server: SocketAddr, query: &[u8]) {
        let q = Message::from_vec(query).unwrap();
        let q = &q.queries[0];
        let name = q.name().to_ascii();
        let text = format!("{} {}", name.trim_end_matches('.'), q.query_type());
        self.log.borrow_mut().push((how, server, text));
    }

    fn questions(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .map(|(how, _, q)| format!("{how} {q}"))
            .collect()
    }
}

fn rewrite(reply: &[u8], f: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut m = Message::from_vec(reply).unwrap();
    f(&mut m);
    m.to_vec().unwrap()
}

impl DnsTransport for Memory {
    async fn udp(&self, server: SocketAddr, query: &[u8], _: Duration) -> io::Result<Vec<u8>> {
        self.record("udp", server, query);
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
        if self.dead.contains(&server) {
            return Err(timed_out());
        }
        let reply = testzone::answer_udp(query, &self.zone).ok_or_else(timed_out)?;
        let fault = self.script.borrow_mut().pop_front().flatten();
        let code = |rcode| {
            move |m: &mut Message| {
                m.answers.clear();
                m.metadata.response_code = rcode;
            }
        };
        Ok(match fault {
            None => reply,
            Some(Fault::Timeout) => return Err(timed_out()),
            Some(Fault::WrongId) => rewrite(&reply, |m| m.metadata.id ^= 0x5555),
            Some(Fault::WrongQuestion) => {
                let other = Message::from_vec(&reply).unwrap();
                let mut q = other.queries[0].clone();
                q.set_name("other.example.".parse().unwrap());
                rewrite(&reply, |m| m.queries = vec![q])
            }
            Some(Fault::Garbage) => vec![0xff; 30],
            Some(Fault::ServFail) => rewrite(&reply, code(ResponseCode::ServFail)),
            Some(Fault::Refused) => rewrite(&reply, code(ResponseCode::Refused)),
            Some(Fault::FormErr) => rewrite(&reply, code(ResponseCode::FormErr)),
            Some(Fault::CnameOnly) => rewrite(&reply, |m| {
                m.answers.retain(|r| matches!(r.data, RData::CNAME(_)))
            }),
        })
    }

    async fn tcp(&self, server: SocketAddr, query: &[u8], _: Duration) -> io::Result<Vec<u8>> {
        self.record("tcp", server, query);
        testzone::answer(query, &self.zone).ok_or(io::ErrorKind::InvalidData.into())
    }
}

const NS1: &str = "192.0.2.53:53";
const NS2: &str = "192.0.2.54:53";

fn conf() -> ResolvConf {
    ResolvConf::parse("nameserver 192.0.2.53\nnameserver 192.0.2.54\noptions attempts:2\n")
}

fn resolver(mem: Memory) -> Resolver<Memory> {
    resolver_with(mem, Hosts::default(), vec![LookupMode::Dns])
}

fn resolver_with(mem: Memory, hosts: Hosts, modes: Vec<LookupMode>) -> Resolver<Memory> {
    Resolver::new(conf(), hosts, modes, mem).with_query_id_seed(1)
}

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
}

fn v6(d: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, d))
}

fn summary(hosts: &[MxHost]) -> Vec<(u16, &str)> {
    hosts
        .iter()
        .map(|h| (h.preference, h.name.as_str()))
        .collect()
}

fn four_mx() -> Zone {
    Zone::new()
        .mx("example.org", 20, "c.example.org")
        .mx("example.org", 10, "a.example.org")
        .mx("example.org", 10, "b.example.org")
        .mx("example.org", 30, "d.example.org")
        .a("a.example.org", v4_addr(1))
        .a("b.example.org", v4_addr(2))
        .a("c.example.org", v4_addr(3))
        .a("d.example.org", v4_addr(4))
}

fn v4_addr(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, d)
}

#[test]
fn mx_sorted_by_preference_with_equal_preferences_shuffled_by_seed() {
    let r = resolver(Memory::new(four_mx()));
    let mut firsts = Vec::new();
    for seed in 0..32 {
        let hosts = block_on(r.mx_hosts("example.org", seed)).unwrap();
        let again = block_on(r.mx_hosts("example.org", seed)).unwrap();
        assert_eq!(hosts, again, "the same seed gives the same order");
        let s = summary(&hosts);
        assert_eq!(
            s.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [10, 10, 20, 30]
        );
        assert_eq!(&s[2..], [(20, "c.example.org"), (30, "d.example.org")]);
        assert_eq!(hosts[2].addrs, [v4(3)]);
        firsts.push(s[0].1.to_string());
    }
    assert!(firsts.iter().any(|n| n == "a.example.org"));
    assert!(firsts.iter().any(|n| n == "b.example.org"));
}

#[test]
fn mx_hosts_addresses_include_both_families_and_trailing_dots_are_ignored() {
    let zone = Zone::new()
        .mx("example.org", 10, "mx.example.org")
        .a("mx.example.org", v4_addr(25))
        .aaaa(
            "mx.example.org",
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 25),
        );
    let r = resolver(Memory::new(zone));
    let hosts = block_on(r.mx_hosts("Example.ORG.", 3)).unwrap();
    assert_eq!(summary(&hosts), [(10, "mx.example.org")]);
    let mut addrs = hosts[0].addrs.clone();
    addrs.sort();
    assert_eq!(addrs, [v4(25), v6(25)]);
    assert_eq!(
        r.transport().questions(),
        [
            "udp Example.ORG MX",
            "udp mx.example.org A",
            "udp mx.example.org AAAA"
        ]
    );
}

#[test]
fn a_domain_without_mx_stands_in_for_itself() {
    let zone = Zone::new().a("example.org", v4_addr(7));
    let r = resolver(Memory::new(zone));
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(
        hosts,
        [MxHost {
            preference: 0,
            name: "example.org".into(),
            addrs: vec![v4(7)]
        }]
    );
}

#[test]
fn nxdomain_bounces_with_postfixs_text_after_the_address_fallback() {
    let r = resolver(Memory::new(Zone::new()));
    let err = block_on(r.mx_hosts("nosuch.example", 0)).unwrap_err();
    assert_eq!(
        err.reason(),
        "Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found"
    );
    assert_eq!(err.dsn(), "5.4.4");
    assert!(err.is_permanent());
    // MX, then the A/AAAA fallback, each answered by the first server.
    assert_eq!(
        r.transport().questions(),
        [
            "udp nosuch.example MX",
            "udp nosuch.example A",
            "udp nosuch.example AAAA"
        ]
    );
}

#[test]
fn servfail_defers_after_every_server_and_attempt() {
    let r = resolver(Memory::new(Zone::new().servfail("example.org")));
    let err = block_on(r.mx_hosts("example.org", 0)).unwrap_err();
    assert_eq!(
        err.reason(),
        "Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again"
    );
    assert_eq!(err.dsn(), "4.4.3");
    assert!(!err.is_permanent());
    let servers: Vec<String> = r
        .transport()
        .log
        .borrow()
        .iter()
        .map(|(_, s, _)| s.to_string())
        .collect();
    assert_eq!(servers, [NS1, NS2, NS1, NS2]);
}

#[test]
fn timeouts_defer() {
    let mut mem = Memory::new(four_mx());
    mem.dead = vec![NS1.parse().unwrap(), NS2.parse().unwrap()];
    let r = resolver(mem);
    let err = block_on(r.mx_hosts("example.org", 0)).unwrap_err();
    assert!(
        matches!(err, DnsError::TryAgain { rtype: "MX", .. }),
        "{err:?}"
    );
    assert_eq!(r.transport().log.borrow().len(), 4);
}

#[test]
fn a_dead_first_server_is_skipped() {
    let mut mem = Memory::new(four_mx());
    mem.dead = vec![NS1.parse().unwrap()];
    let r = resolver(mem);
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(hosts.len(), 4);
}

#[test]
fn transient_server_answers_move_on_to_the_next_server() {
    for fault in [
        Fault::Timeout,
        Fault::ServFail,
        Fault::Refused,
        Fault::Garbage,
    ] {
        let mem = Memory::new(four_mx()).script(&[Some(fault)]);
        let r = resolver(mem);
        let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
        assert_eq!(hosts.len(), 4, "{fault:?}");
        let log = r.transport().log.borrow();
        assert_eq!(log[0].1.to_string(), NS1, "{fault:?}");
        assert_eq!(log[1].1.to_string(), NS2, "{fault:?}");
    }
}

#[test]
fn replies_with_another_id_or_question_are_ignored() {
    for fault in [Fault::WrongId, Fault::WrongQuestion] {
        let mem = Memory::new(four_mx()).script(&[Some(fault), Some(fault), Some(fault)]);
        let r = resolver(mem);
        let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
        assert_eq!(hosts.len(), 4, "{fault:?}");
        // Three MX exchanges ignored, the fourth (last attempt) taken.
        let questions = r.transport().questions();
        assert_eq!(questions[..4], ["udp example.org MX"; 4], "{fault:?}");
    }
}

#[test]
fn formerr_is_non_recoverable() {
    let r = resolver(Memory::new(four_mx()).script(&[Some(Fault::FormErr)]));
    let err = block_on(r.mx_hosts("example.org", 0)).unwrap_err();
    assert_eq!(
        err.reason(),
        "Host or domain name not found. Name service error for name=example.org type=MX: Non-recoverable error"
    );
    assert_eq!(err.dsn(), "5.4.3");
}

#[test]
fn truncated_udp_answers_are_asked_again_over_tcp() {
    // Forced truncation.
    let zone = four_mx().truncate_over_udp("example.org");
    let r = resolver(Memory::new(zone));
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(hosts.len(), 4);
    assert_eq!(
        r.transport().questions()[..2],
        ["udp example.org MX", "tcp example.org MX"]
    );

    // An answer too big for 512 bytes.
    let mut zone = Zone::new().mx("example.org", 10, "big.example.org");
    for d in 1..=40 {
        zone = zone.a("big.example.org", v4_addr(d));
    }
    let r = resolver(Memory::new(zone).script(&[])).with_inet_protocols(InetProtocols::Ipv4);
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(hosts[0].addrs.len(), 40);
    assert_eq!(
        r.transport().questions(),
        [
            "udp example.org MX",
            "udp big.example.org A",
            "tcp big.example.org A"
        ]
    );
}

#[test]
fn null_mx_bounces() {
    let zone = Zone::new()
        .mx("example.org", 0, ".")
        .a("example.org", v4_addr(1));
    let r = resolver(Memory::new(zone));
    let err = block_on(r.mx_hosts("example.org", 0)).unwrap_err();
    assert_eq!(
        err,
        DnsError::NullMx {
            domain: "example.org".into()
        }
    );
    assert_eq!(
        err.reason(),
        "Domain example.org does not accept mail (nullMX)"
    );
    assert_eq!(err.dsn(), "5.1.0");
    assert_eq!(r.transport().log.borrow().len(), 1, "no address fallback");
}

#[test]
fn null_and_numeric_exchangers_among_others_are_dropped() {
    let zone = Zone::new()
        .mx("example.org", 0, ".")
        .mx("example.org", 5, "192.0.2.9")
        .mx("example.org", 10, "mx.example.org")
        .a("mx.example.org", v4_addr(1));
    let r = resolver(Memory::new(zone));
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(summary(&hosts), [(10, "mx.example.org")]);
}

#[test]
fn cname_chains_in_the_answer_are_followed() {
    let zone = Zone::new()
        .cname("alias.example", "example.org")
        .mx("example.org", 10, "mx.example.org")
        .cname("mx.example.org", "real.example.net")
        .a("real.example.net", v4_addr(5));
    let r = resolver(Memory::new(zone)).with_inet_protocols(InetProtocols::Ipv4);
    let hosts = block_on(r.mx_hosts("alias.example", 0)).unwrap();
    assert_eq!(summary(&hosts), [(10, "mx.example.org")]);
    assert_eq!(hosts[0].addrs, [v4(5)]);
    assert_eq!(
        r.transport().questions(),
        ["udp alias.example MX", "udp mx.example.org A"]
    );
}

#[test]
fn a_cname_without_its_target_is_asked_again_for_the_target() {
    let zone = Zone::new()
        .cname("mx.example.org", "real.example.net")
        .a("real.example.net", v4_addr(5));
    let mem = Memory::new(zone).script(&[Some(Fault::CnameOnly)]);
    let r = resolver(mem).with_inet_protocols(InetProtocols::Ipv4);
    assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), [v4(5)]);
    assert_eq!(
        r.transport().questions(),
        ["udp mx.example.org A", "udp real.example.net A"]
    );
}

#[test]
fn a_cname_loop_ends() {
    let zone = Zone::new()
        .cname("a.example", "b.example")
        .cname("b.example", "a.example");
    let r = resolver(Memory::new(zone)).with_inet_protocols(InetProtocols::Ipv4);
    let err = block_on(r.host_addrs("a.example")).unwrap_err();
    assert!(err.reason().starts_with("Name server loop for "), "{err}");
    assert!(err.is_permanent());
    assert_eq!(r.transport().log.borrow().len(), CNAME_HOPS_MAX);
}

#[test]
fn native_lookup_follows_the_smtp_host_lookup_order() {
    let hosts = || Hosts::parse("192.0.2.80 mx.example.org\n");
    let zone = || Zone::new().a("mx.example.org", v4_addr(1));

    // native only: the host table, no query.
    let r = resolver_with(Memory::new(zone()), hosts(), vec![LookupMode::Native]);
    assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), [v4(80)]);
    assert!(r.transport().log.borrow().is_empty());

    // dns, native: DNS wins when it answers…
    let both = vec![LookupMode::Dns, LookupMode::Native];
    let r = resolver_with(Memory::new(zone()), hosts(), both.clone())
        .with_inet_protocols(InetProtocols::Ipv4);
    assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), [v4(1)]);

    // …and the host table stands in when DNS has nothing.
    let r = resolver_with(Memory::new(Zone::new()), hosts(), both.clone());
    assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), [v4(80)]);

    // native, dns: the host table first.
    let r = resolver_with(
        Memory::new(zone()),
        hosts(),
        vec![LookupMode::Native, LookupMode::Dns],
    );
    assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), [v4(80)]);
    assert!(r.transport().log.borrow().is_empty());

    // Neither has it: Postfix's native text; soft after a soft DNS error.
    let r = resolver_with(Memory::new(Zone::new()), Hosts::default(), both.clone());
    let err = block_on(r.host_addrs("nosuch.example")).unwrap_err();
    assert_eq!(
        err.reason(),
        "unable to look up host nosuch.example: Name or service not known"
    );
    assert_eq!(err.dsn(), "5.4.4");
    let r = resolver_with(
        Memory::new(Zone::new().servfail("nosuch.example")),
        Hosts::default(),
        both,
    );
    let err = block_on(r.host_addrs("nosuch.example")).unwrap_err();
    assert_eq!(err.dsn(), "4.4.4");
}

#[test]
fn mx_targets_use_the_host_table_too() {
    let zone = Zone::new().mx("example.org", 10, "mx.example.org");
    let r = resolver_with(
        Memory::new(zone),
        Hosts::parse("192.0.2.80 mx.example.org\n"),
        vec![LookupMode::Dns, LookupMode::Native],
    );
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(hosts[0].addrs, [v4(80)]);
}

#[test]
fn mx_hosts_without_addresses_are_skipped_and_the_last_error_reported() {
    let zone = Zone::new()
        .mx("example.org", 10, "gone.example.org")
        .mx("example.org", 20, "mx.example.org")
        .a("mx.example.org", v4_addr(2));
    let r = resolver(Memory::new(zone));
    let hosts = block_on(r.mx_hosts("example.org", 0)).unwrap();
    assert_eq!(summary(&hosts), [(20, "mx.example.org")]);

    let zone = Zone::new()
        .mx("example.org", 10, "gone.example.org")
        .mx("example.org", 20, "flaky.example.org")
        .servfail("flaky.example.org");
    let r = resolver(Memory::new(zone));
    let err = block_on(r.mx_hosts("example.org", 0)).unwrap_err();
    assert_eq!(
        err.reason(),
        "Host or domain name not found. Name service error for name=flaky.example.org type=A: Host not found, try again"
    );
}

#[test]
fn a_temporary_failure_of_one_address_type_defers_rather_than_bounces() {
    // A: NXDOMAIN from the zone; AAAA: SERVFAIL from every server.
    let fail = Some(Fault::ServFail);
    let mem = Memory::new(Zone::new()).script(&[None, fail, fail, fail, fail]);
    let r = resolver(mem);
    let err = block_on(r.host_addrs("nosuch.example")).unwrap_err();
    assert!(
        matches!(err, DnsError::TryAgain { rtype: "AAAA", .. }),
        "{err:?}"
    );
}

#[test]
fn inet_protocols_choose_the_address_queries() {
    let zone = Zone::new().a("mx.example.org", v4_addr(1)).aaaa(
        "mx.example.org",
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let table = [
        (
            InetProtocols::Ipv4,
            vec![v4(1)],
            vec!["udp mx.example.org A"],
        ),
        (
            InetProtocols::Ipv6,
            vec![v6(1)],
            vec!["udp mx.example.org AAAA"],
        ),
        (
            InetProtocols::All,
            vec![v4(1), v6(1)],
            vec!["udp mx.example.org A", "udp mx.example.org AAAA"],
        ),
    ];
    for (inet, addrs, questions) in table {
        let r = resolver(Memory::new(zone.clone())).with_inet_protocols(inet);
        assert_eq!(block_on(r.host_addrs("mx.example.org")).unwrap(), addrs);
        assert_eq!(r.transport().questions(), questions);
    }
}

#[test]
fn ip_literals_resolve_to_themselves() {
    let r = resolver(Memory::new(Zone::new()));
    assert_eq!(block_on(r.host_addrs("192.0.2.1")).unwrap(), [v4(1)]);
    assert_eq!(block_on(r.host_addrs("2001:db8::1")).unwrap(), [v6(1)]);
    let hosts = block_on(r.mx_hosts("192.0.2.1", 0)).unwrap();
    assert_eq!(summary(&hosts), [(0, "192.0.2.1")]);
    assert!(r.transport().log.borrow().is_empty());

    let r = resolver(Memory::new(Zone::new())).with_inet_protocols(InetProtocols::Ipv6);
    assert!(block_on(r.host_addrs("192.0.2.1")).is_err());
}

#[test]
fn malformed_names_are_refused_without_a_query() {
    let r = resolver(Memory::new(Zone::new()));
    for name in ["bad..example", "-x.example", "a b.example", "1.2.3"] {
        let err = block_on(r.mx_hosts(name, 0)).unwrap_err();
        assert_eq!(
            err.reason(),
            format!("Name service error for name={name} type=MX: Malformed domain name")
        );
        assert_eq!(err.dsn(), "5.4.4");
    }
    assert!(r.transport().log.borrow().is_empty());
}

#[test]
fn query_ids_vary_and_follow_the_seed() {
    let ids = |seed| {
        let r = Resolver::new(conf(), Hosts::default(), vec![], Memory::new(four_mx()))
            .with_query_id_seed(seed);
        (0..8).map(|_| r.next_id()).collect::<Vec<u16>>()
    };
    let a = ids(1);
    assert_eq!(a, ids(1));
    assert_ne!(a, ids(2));
    let mut unique = a.clone();
    unique.sort_unstable();
    unique.dedup();
    assert!(unique.len() >= 7, "{a:?}");
}

#[test]
fn lookup_mode_lists() {
    use LookupMode::{Dns, Native};
    let ok: [(&str, Vec<LookupMode>); 5] = [
        ("dns", vec![Dns]),
        ("native", vec![Native]),
        ("dns, native", vec![Dns, Native]),
        ("NATIVE dns", vec![Native, Dns]),
        ("dns,dns ,native", vec![Dns, Native]),
    ];
    for (value, modes) in ok {
        assert_eq!(LookupMode::parse_list(value), Ok(modes), "{value}");
    }
    assert_eq!(
        LookupMode::parse_list("dns, nis"),
        Err(ParseLookupModeError::Unknown("nis".into()))
    );
    assert_eq!(
        LookupMode::parse_list(" , "),
        Err(ParseLookupModeError::Empty)
    );
}

#[test]
fn inet_protocols_values() {
    let table = [
        ("all", Some(InetProtocols::All)),
        ("ipv4", Some(InetProtocols::Ipv4)),
        ("IPv6", Some(InetProtocols::Ipv6)),
        ("ipv4, ipv6", Some(InetProtocols::All)),
        ("", None),
        ("ipv5", None),
    ];
    for (value, want) in table {
        assert_eq!(InetProtocols::parse(value), want, "{value}");
    }
}

/// The testzone server on a real loopback socket, as the end-to-end tests
/// use it, with a blocking std transport.
#[test]
fn testzone_serves_over_loopback_udp() {
    struct Std;
    impl DnsTransport for Std {
        async fn udp(&self, server: SocketAddr, q: &[u8], t: Duration) -> io::Result<Vec<u8>> {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.set_read_timeout(Some(t))?;
            socket.send_to(q, server)?;
            let mut buf = vec![0; DNS_MESSAGE_MAX_BYTES];
            loop {
                let (len, from) = socket.recv_from(&mut buf)?;
                if from == server && wire::is_reply_to(q, &buf[..len]) {
                    return Ok(buf[..len].to_vec());
                }
            }
        }
        async fn tcp(&self, _: SocketAddr, _: &[u8], _: Duration) -> io::Result<Vec<u8>> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let zone = four_mx();
    let server = std::thread::spawn(move || testzone::serve_udp(&socket, &zone, 5));
    let mut conf = ResolvConf::parse("options timeout:5 attempts:1\n");
    conf.nameservers = vec![addr];
    let r = Resolver::new(conf, Hosts::default(), vec![LookupMode::Dns], Std)
        .with_inet_protocols(InetProtocols::Ipv4);
    let hosts = block_on(r.mx_hosts("example.org", 9)).unwrap();
    assert_eq!(hosts.len(), 4);
    assert_eq!(server.join().unwrap().unwrap(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the MX set, the list comes out sorted by preference with
    /// each exchanger once, at its best preference.
    #[test]
    fn exchanger_lists_are_sorted_and_unique(
        mx in proptest::collection::vec((0u16..4, 0usize..6), 1..12),
        seed: u64,
    ) {
        let mut zone = Zone::new();
        for &(preference, host) in &mx {
            zone = zone.mx("example.org", preference, &format!("h{host}.example.org"));
        }
        for host in 0..6 {
            zone = zone.a(&format!("h{host}.example.org"), v4_addr(host as u8 + 1));
        }
        let r = resolver(Memory::new(zone)).with_inet_protocols(InetProtocols::Ipv4);
        let hosts = block_on(r.mx_hosts("example.org", seed)).unwrap();
        let prefs: Vec<u16> = hosts.iter().map(|h| h.preference).collect();
        let mut sorted = prefs.clone();
        sorted.sort_unstable();
        prop_assert_eq!(&prefs, &sorted);
        let mut names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), total);
        for h in &hosts {
            let best = mx
                .iter()
                .filter(|(_, host)| format!("h{host}.example.org") == h.name)
                .map(|(p, _)| *p)
                .min();
            prop_assert_eq!(Some(h.preference), best);
        }
    }
}
