//! Facts about the machine that defaults depend on: host name, interface
//! addresses, online CPUs, IPv6 support. Probed once at load, and a plain
//! value so that tests can supply their own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One interface address with its netmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAddr {
    pub addr: IpAddr,
    pub netmask: IpAddr,
}

/// What the configuration needs to know about this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// gethostname(2), as is (may lack a domain).
    pub hostname: String,
    /// Addresses of the up interfaces (IPv6 link-local ones are left out:
    /// they need a scope that mynetworks cannot express).
    pub interfaces: Vec<InterfaceAddr>,
    /// sysconf(_SC_NPROCESSORS_ONLN), at least 1.
    pub online_cpus: usize,
    /// Whether this machine can use IPv6 at all (an `[::1]` socket binds).
    pub ipv6: bool,
}

impl HostFacts {
    /// Asks the operating system.
    pub fn probe() -> HostFacts {
        HostFacts {
            hostname: hostname(),
            interfaces: interfaces(),
            online_cpus: online_cpus(),
            ipv6: std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok(),
        }
    }

    /// Fixed facts for tests: `host.example.com`, loopback plus
    /// 192.0.2.10/24 and 2001:db8::10/64, 4 CPUs, IPv6 available.
    pub fn for_tests() -> HostFacts {
        let v4 = |a: [u8; 4], m: [u8; 4]| InterfaceAddr {
            addr: IpAddr::V4(Ipv4Addr::from(a)),
            netmask: IpAddr::V4(Ipv4Addr::from(m)),
        };
        let v6 = |a: &str, m: &str| InterfaceAddr {
            addr: a.parse().unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            netmask: m.parse().unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        HostFacts {
            hostname: "host.example.com".into(),
            interfaces: vec![
                v4([127, 0, 0, 1], [255, 0, 0, 0]),
                v4([192, 0, 2, 10], [255, 255, 255, 0]),
                v6("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                v6("2001:db8::10", "ffff:ffff:ffff:ffff::"),
            ],
            online_cpus: 4,
            ipv6: true,
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for buf.len() bytes; gethostname writes at
    // most that many and we stop at the first NUL ourselves.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => "localhost".into(),
    }
}

fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

fn interfaces() -> Vec<InterfaceAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, which
        // stays valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 {
            continue;
        }
        // SAFETY: non-null sockaddrs from getifaddrs are valid for their family.
        let (addr, mask) = unsafe { (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) };
        let Some(addr) = addr else { continue };
        if let IpAddr::V6(v6) = addr {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                continue;
            }
        }
        let netmask = mask.unwrap_or(match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        });
        out.push(InterfaceAddr { addr, netmask });
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// # Safety
/// `sa` is null or points to a sockaddr valid for its `sa_family`.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa.cast::<libc::sockaddr_in>());
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa.cast::<libc::sockaddr_in6>());
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_something_sane() {
        let facts = HostFacts::probe();
        assert!(!facts.hostname.is_empty());
        assert!(facts.online_cpus >= 1);
        // Loopback is up on any machine that runs these tests.
        assert!(facts.interfaces.iter().any(|i| i.addr.is_loopback()));
    }
}
