//! Network blocks as Postfix writes them in `mynetworks` and cidr tables:
//! `a.b.c.d/n`, `[v6]/n`, `v6/n`, or a bare address (a host block).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One network block. Host bits below the prefix are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a network block did not parse. Display gives Postfix's wording.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("bad address pattern: \"{0}\"")]
    BadAddress(String),
    #[error("bad net/mask pattern: \"{0}\"")]
    BadPrefix(String),
    /// Postfix refuses `10.1.2.3/8` instead of silently widening it.
    #[error(
        "non-null host address bits in \"{given}\", perhaps you should use \"{suggest}\" instead"
    )]
    HostBits { given: String, suggest: String },
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `[v6]/n`, `v6/n`, `a.b.c.d`, `[v6]` or `v6`.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (addr_part, prefix_part) = match s.rfind('/') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let bare = addr_part
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr_part);
        // "[1.2.3.4]" is accepted too: Postfix strips the brackets the same way.
        let addr: IpAddr = bare
            .parse()
            .map_err(|_| CidrError::BadAddress(s.to_string()))?;
        let max = max_prefix(addr);
        let prefix = match prefix_part {
            None => max,
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::BadPrefix(s.to_string()))?,
        };
        let net = mask(addr, prefix);
        if net != addr {
            let cidr = Cidr { net, prefix };
            return Err(CidrError::HostBits {
                given: s.to_string(),
                suggest: cidr.to_string(),
            });
        }
        Ok(Cidr { net, prefix })
    }

    /// The block that holds exactly `addr`.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            net: addr,
            prefix: max_prefix(addr),
        }
    }

    /// The block of `prefix` bits around `addr` (host bits are cleared).
    /// `prefix` is clamped to the address family's width.
    pub fn containing(addr: IpAddr, prefix: u8) -> Cidr {
        let prefix = prefix.min(max_prefix(addr));
        Cidr {
            net: mask(addr, prefix),
            prefix,
        }
    }

    pub fn network(&self) -> IpAddr {
        self.net
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this block. An IPv4-mapped IPv6 client
    /// (`::ffff:a.b.c.d`) matches IPv4 blocks, as it does in Postfix, where
    /// smtpd sees such clients as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if self.net.is_ipv4() => IpAddr::V4(v4),
                _ => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        if ip.is_ipv4() != self.net.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix) == self.net
    }
}

/// Postfix's form: `10.0.0.0/8`, `[::1]/128`.
impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.net {
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix),
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix),
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// Number of leading one bits of a netmask (`255.255.255.0` → 24).
pub(crate) fn mask_prefix_len(mask: IpAddr) -> u8 {
    let ones = match mask {
        IpAddr::V4(m) => u32::from(m).leading_ones(),
        IpAddr::V6(m) => u128::from(m).leading_ones(),
    };
    // leading_ones() is at most 128, which fits.
    u8::try_from(ones).unwrap_or(128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_forms() {
        let table = [
            ("127.0.0.0/8", "127.0.0.0/8"),
            ("10.1.2.3", "10.1.2.3/32"),
            ("[::1]/128", "[::1]/128"),
            ("[::1]", "[::1]/128"),
            ("2001:db8::/32", "[2001:db8::]/32"),
            ("[2001:db8::]/32", "[2001:db8::]/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("[1.2.3.4]/32", "1.2.3.4/32"),
        ];
        for (input, want) in table {
            assert_eq!(Cidr::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Cidr::parse("10.1.2.3/8").unwrap_err().to_string(),
            "non-null host address bits in \"10.1.2.3/8\", perhaps you should use \"10.0.0.0/8\" instead"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/33").unwrap_err(),
            CidrError::BadPrefix("10.0.0.0/33".into())
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/").unwrap_err(),
            CidrError::BadPrefix("10.0.0.0/".into())
        );
        assert_eq!(
            Cidr::parse("example.com").unwrap_err(),
            CidrError::BadAddress("example.com".into())
        );
        assert!(Cidr::parse("[::1/128").is_err());
    }

    #[test]
    fn contains_v4_v6_and_mapped() {
        let net = Cidr::parse("192.168.0.0/16").unwrap();
        assert!(net.contains(ip("192.168.200.1")));
        assert!(!net.contains(ip("192.169.0.1")));
        assert!(
            net.contains(ip("::ffff:192.168.1.1")),
            "mapped v6 matches v4 net"
        );
        assert!(!net.contains(ip("2001:db8::1")));

        let v6 = Cidr::parse("[2001:db8::]/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("192.168.1.1")));

        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let host = Cidr::parse("[::1]/128").unwrap();
        assert!(host.contains(ip("::1")));
        assert!(!host.contains(ip("::2")));
    }

    #[test]
    fn containing_and_masks() {
        assert_eq!(
            Cidr::containing(ip("10.1.2.3"), 8).to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(mask_prefix_len(ip("255.255.255.0")), 24);
        assert_eq!(mask_prefix_len(ip("ffff:ffff:ffff:ffff::")), 64);
    }
}
