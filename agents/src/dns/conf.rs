//! The system's resolver configuration (`/etc/resolv.conf`) and host table
//! (`/etc/hosts`), read the way the C library reads them, as far as an MTA
//! needs: nameservers, `timeout`, `attempts`; names to addresses.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// At most this many `nameserver` lines count; later ones are ignored
/// (glibc's `MAXNS`).
pub const MAXNS: usize = 3;

/// `options timeout:n` is capped here, in seconds (glibc's `RES_MAXRETRANS`).
const RES_MAXRETRANS_S: u64 = 30;
/// `options attempts:n` is capped here (glibc's `RES_MAXRETRY`).
const RES_MAXRETRY: u32 = 5;
/// glibc's defaults: `RES_TIMEOUT` seconds and `RES_DFLRETRY` attempts.
const RES_TIMEOUT_S: u64 = 5;
const RES_DFLRETRY: u32 = 2;

/// resolv.conf is a few lines; anything bigger is not one.
pub const RESOLV_CONF_MAX_BYTES: u64 = 64 * 1024;
/// A host table past this size is refused rather than held in memory.
pub const HOSTS_FILE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Where and how to ask: the parts of resolv.conf an MTA uses. `search`,
/// `domain` and `ndots` are ignored: Postfix's smtp client asks for names
/// as they are (no `RES_DEFNAMES`/`RES_DNSRCH` in `smtp_dns_resolver_options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    /// Port 53 of each `nameserver`, at most [`MAXNS`]; `127.0.0.1:53`
    /// when the file names none.
    pub nameservers: Vec<SocketAddr>,
    /// How long to wait for one reply (`options timeout:n`, default 5 s).
    pub timeout: Duration,
    /// How many rounds over all nameservers (`options attempts:n`,
    /// default 2).
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            timeout: Duration::from_secs(RES_TIMEOUT_S),
            attempts: RES_DFLRETRY,
        }
    }
}

impl ResolvConf {
    /// Parse resolv.conf text. Unknown keywords, malformed addresses and
    /// options are skipped, as the C library skips them.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            ..ResolvConf::default()
        };
        for line in text.lines() {
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("nameserver") if conf.nameservers.len() < MAXNS => {
                    if let Some(addr) = words.next().and_then(parse_addr) {
                        conf.nameservers.push(SocketAddr::new(addr, 53));
                    }
                }
                Some("options") => {
                    for option in words {
                        conf.apply_option(option);
                    }
                }
                _ => {} // comments ('#', ';'), search, domain, sortlist…
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers = ResolvConf::default().nameservers;
        }
        conf
    }

    /// Read and parse `path`. A missing file is not an error: the C
    /// library then uses its defaults, and so do we.
    pub fn load(path: &Path) -> io::Result<ResolvConf> {
        match read_bounded(path, RESOLV_CONF_MAX_BYTES) {
            Ok(text) => Ok(ResolvConf::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ResolvConf::default()),
            Err(e) => Err(e),
        }
    }

    fn apply_option(&mut self, option: &str) {
        let Some((name, value)) = option.split_once(':') else {
            return; // rotate, edns0, single-request…: no bearing here
        };
        let Ok(n) = value.parse::<u64>() else {
            return;
        };
        match name {
            // Zero would mean "never wait" / "never ask"; glibc's floor is 1.
            "timeout" => self.timeout = Duration::from_secs(n.clamp(1, RES_MAXRETRANS_S)),
            "attempts" => self.attempts = n.clamp(1, u64::from(RES_MAXRETRY)) as u32,
            _ => {}
        }
    }
}

/// An address in resolv.conf or hosts. A scoped IPv6 address (`fe80::1%eth0`) loses its
/// scope: resolving an interface name needs the OS, and link-local
/// nameservers are rare on mail servers.
fn parse_addr(word: &str) -> Option<IpAddr> {
    let addr = word.split_once('%').map_or(word, |(a, _)| a);
    addr.parse().ok()
}

/// The host table: each name (canonical or alias, compared without case
/// and trailing dot) with its addresses in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    by_name: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// Parse hosts(5) text: `address name [aliases…]`, `#` comments.
    /// Lines with a bad address are skipped.
    pub fn parse(text: &str) -> Hosts {
        let mut hosts = Hosts::default();
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(l, _)| l);
            let mut words = line.split_ascii_whitespace();
            let Some(addr) = words.next().and_then(parse_addr) else {
                continue;
            };
            for name in words {
                let addrs = hosts.by_name.entry(normalize(name)).or_default();
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
        }
        hosts
    }

    /// Read and parse `path`; a missing file is an empty table.
    pub fn load(path: &Path) -> io::Result<Hosts> {
        match read_bounded(path, HOSTS_FILE_MAX_BYTES) {
            Ok(text) => Ok(Hosts::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Hosts::default()),
            Err(e) => Err(e),
        }
    }

    /// The addresses listed for `name`, in file order; empty if none.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        self.by_name
            .get(&normalize(name))
            .cloned()
            .unwrap_or_default()
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Read a small text file, refusing one over `limit` bytes (or not UTF-8)
/// with an error that says which file and why.
fn read_bounded(path: &Path, limit: u64) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: larger than {limit} bytes", path.display()),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not UTF-8 text", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn ns(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 53)
    }

    #[test]
    fn resolv_conf_table() {
        let five = Duration::from_secs(5);
        let table: Vec<(&str, Vec<SocketAddr>, Duration, u32)> = vec![
            ("", vec![ns("127.0.0.1")], five, 2),
            ("# nothing\n; here\n", vec![ns("127.0.0.1")], five, 2),
            ("nameserver 192.0.2.53\n", vec![ns("192.0.2.53")], five, 2),
            (
                "search example.org\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n",
                vec![ns("192.0.2.1"), ns("2001:db8::1")],
                five,
                2,
            ),
            // Scope dropped; a bad address skipped; at most MAXNS servers.
            (
                "nameserver fe80::1%eth0\nnameserver bogus\nnameserver 192.0.2.2\n\
                 nameserver 192.0.2.3\nnameserver 192.0.2.4\n",
                vec![ns("fe80::1"), ns("192.0.2.2"), ns("192.0.2.3")],
                five,
                2,
            ),
            (
                "nameserver 192.0.2.1\noptions ndots:2 timeout:1 attempts:3 rotate\n",
                vec![ns("192.0.2.1")],
                Duration::from_secs(1),
                3,
            ),
            // Caps and floors as glibc's; garbage values ignored.
            (
                "options timeout:99 attempts:9\n",
                vec![ns("127.0.0.1")],
                Duration::from_secs(30),
                5,
            ),
            (
                "options timeout:0 attempts:0\n",
                vec![ns("127.0.0.1")],
                Duration::from_secs(1),
                1,
            ),
            (
                "options timeout:x attempts:\n",
                vec![ns("127.0.0.1")],
                five,
                2,
            ),
            // Tabs, and keywords only at the start of a line.
            (
                "\tnameserver\t192.0.2.9 \n#nameserver 192.0.2.8\n",
                vec![ns("192.0.2.9")],
                five,
                2,
            ),
        ];
        for (text, servers, timeout, attempts) in table {
            let conf = ResolvConf::parse(text);
            assert_eq!(conf.nameservers, servers, "{text:?}");
            assert_eq!(conf.timeout, timeout, "{text:?}");
            assert_eq!(conf.attempts, attempts, "{text:?}");
        }
    }

    #[test]
    fn hosts_table() {
        let hosts = Hosts::parse(
            "127.0.0.1\tlocalhost\n\
             ::1 localhost ip6-localhost # the loopback\n\
             # 192.0.2.99 commented.example\n\
             192.0.2.10 Mail.Example.ORG mail\n\
             192.0.2.11 mail.example.org\n\
             192.0.2.10 mail.example.org\n\
             not-an-address bad.example\n\
             2001:db8::25 mail.example.org.\n",
        );
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        let table: Vec<(&str, Vec<IpAddr>)> = vec![
            (
                "localhost",
                vec![v4(127, 0, 0, 1), IpAddr::V6(Ipv6Addr::LOCALHOST)],
            ),
            ("ip6-localhost", vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]),
            (
                "mail.example.org",
                vec![
                    v4(192, 0, 2, 10),
                    v4(192, 0, 2, 11),
                    "2001:db8::25".parse().unwrap(),
                ],
            ),
            (
                "MAIL.example.org.",
                vec![
                    v4(192, 0, 2, 10),
                    v4(192, 0, 2, 11),
                    "2001:db8::25".parse().unwrap(),
                ],
            ),
            ("mail", vec![v4(192, 0, 2, 10)]),
            ("commented.example", vec![]),
            ("bad.example", vec![]),
            ("the", vec![]),
        ];
        for (name, addrs) in table {
            assert_eq!(hosts.lookup(name), addrs, "{name}");
        }
    }

    #[test]
    fn missing_files_mean_defaults_and_big_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-dns-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        assert_eq!(ResolvConf::load(&missing).unwrap(), ResolvConf::default());
        assert_eq!(Hosts::load(&missing).unwrap(), Hosts::default());

        let conf = dir.join("resolv.conf");
        std::fs::write(&conf, "nameserver 192.0.2.7\n").unwrap();
        assert_eq!(
            ResolvConf::load(&conf).unwrap().nameservers,
            vec![ns("192.0.2.7")]
        );

        let big = dir.join("big");
        std::fs::write(&big, vec![b'#'; RESOLV_CONF_MAX_BYTES as usize + 1]).unwrap();
        let err = ResolvConf::load(&big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("larger than"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
