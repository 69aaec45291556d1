//! master.cf: service lines (`service type private unpriv chroot wakeup
//! maxproc command args…`), continuation lines, comments, `-o name=value`
//! and `-o { name = value }` overrides. Every service is parsed and kept (for
//! `postconf -M`); only `inet` services become listeners, and the engine
//! runs those whose command it implements.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use super::maincf::Origin;
use super::ConfigError;

/// One master.cf service line. `None` in a column means `-` (the default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterService {
    /// `smtp`, `2525`, `127.0.0.1:2525`, `[::1]:submission`, a socket name…
    pub service: String,
    /// `inet`, `unix`, `unix-dgram`, `fifo` or `pass`.
    pub service_type: String,
    pub private: Option<bool>,
    pub unpriv: Option<bool>,
    pub chroot: Option<bool>,
    /// As written (`60`, `300?`).
    pub wakeup: Option<String>,
    pub maxproc: Option<u32>,
    pub command: String,
    /// The command's arguments other than `-o` overrides, in order.
    pub args: Vec<String>,
    /// `-o name=value` overrides, in order.
    pub overrides: Vec<(String, String)>,
    /// The line the service starts on.
    pub origin: Origin,
}

const SERVICE_TYPES: [&str; 5] = ["inet", "unix", "unix-dgram", "fifo", "pass"];

/// Parses master.cf text. A later line with the same service name and type
/// replaces an earlier one (with a warning), as in Postfix.
pub fn parse(
    text: &str,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<MasterService>, ConfigError> {
    let mut services: Vec<MasterService> = Vec::new();
    for (line, logical) in logical_lines(text) {
        let origin = Origin::new(path, line);
        let svc = parse_service(&logical, origin)?;
        if let Some(pos) = services
            .iter()
            .position(|s| s.service == svc.service && s.service_type == svc.service_type)
        {
            let old = services.remove(pos);
            warnings.push(format!(
                "{}: duplicate service {}/{}; the entry at {} is ignored",
                svc.origin, svc.service, svc.service_type, old.origin
            ));
        }
        services.push(svc);
    }
    Ok(services)
}

/// Logical lines as in main.cf (readlline), numbered by their first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match out.last_mut() {
            Some((_, logical)) if line.starts_with(|c: char| c.is_ascii_whitespace()) => {
                logical.push(' ');
                logical.push_str(trimmed);
            }
            _ => out.push((n + 1, line.to_string())),
        }
    }
    out
}

fn syntax(origin: &Origin, what: String) -> ConfigError {
    ConfigError::Syntax {
        origin: origin.clone(),
        what,
    }
}

fn parse_service(line: &str, origin: Origin) -> Result<MasterService, ConfigError> {
    let tokens = tokenize(line).map_err(|what| syntax(&origin, what))?;
    if tokens.len() < 8 {
        return Err(syntax(
            &origin,
            format!(
                "expected at least 8 fields (service type private unpriv chroot wakeup maxproc command), found {}",
                tokens.len()
            ),
        ));
    }
    // `{ }` makes an empty token; the eight fixed fields may not be empty
    // (Postfix has no braces there, so it never sees one).
    const FIELDS: [&str; 8] = [
        "service",
        "type",
        "private",
        "unprivileged",
        "chroot",
        "wakeup",
        "process count",
        "command",
    ];
    if let Some(i) = tokens[..8].iter().position(String::is_empty) {
        return Err(syntax(&origin, format!("empty {} field", FIELDS[i])));
    }
    let service_type = tokens[1].clone();
    if !SERVICE_TYPES.contains(&service_type.as_str()) {
        return Err(syntax(
            &origin,
            format!("bad transport type: {service_type}"),
        ));
    }
    let flag = |i: usize, what: &str| -> Result<Option<bool>, ConfigError> {
        match tokens[i].as_str() {
            "-" => Ok(None),
            "y" => Ok(Some(true)),
            "n" => Ok(Some(false)),
            other => Err(syntax(&origin, format!("bad {what} field: {other}"))),
        }
    };
    let private = flag(2, "private")?;
    let unpriv = flag(3, "unprivileged")?;
    let chroot = flag(4, "chroot")?;
    let wakeup = match tokens[5].as_str() {
        "-" => None,
        w if !w.trim_end_matches('?').is_empty()
            && w.trim_end_matches('?').bytes().all(|b| b.is_ascii_digit())
            && w.matches('?').count() <= 1 =>
        {
            Some(w.to_string())
        }
        w => return Err(syntax(&origin, format!("bad wakeup time field: {w}"))),
    };
    let maxproc = match tokens[6].as_str() {
        "-" => None,
        m => Some(
            m.parse::<u32>()
                .ok()
                .filter(|_| m.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| syntax(&origin, format!("bad process count field: {m}")))?,
        ),
    };
    let command = tokens[7].clone();
    let mut args = Vec::new();
    let mut overrides = Vec::new();
    let mut rest = tokens[8..].iter();
    while let Some(arg) = rest.next() {
        let setting = if arg == "-o" {
            let Some(next) = rest.next() else {
                return Err(syntax(&origin, "missing value after -o".to_string()));
            };
            next.as_str()
        } else if let Some(inline) = arg.strip_prefix("-o").filter(|s| !s.is_empty()) {
            // `-oname=value`: getopt accepts the value glued to the option.
            inline
        } else {
            args.push(arg.clone());
            continue;
        };
        let (name, value) = setting.split_once('=').ok_or_else(|| {
            syntax(
                &origin,
                format!("-o {setting}: missing '=' (expected -o name=value)"),
            )
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(syntax(
                &origin,
                format!("-o {setting}: missing parameter name"),
            ));
        }
        overrides.push((name.to_string(), value.trim().to_string()));
    }
    Ok(MasterService {
        service: tokens[0].clone(),
        service_type,
        private,
        unpriv,
        chroot,
        wakeup,
        maxproc,
        command,
        args,
        overrides,
        origin,
    })
}

/// Splits on whitespace; `{ … }` (balanced) is one token with the braces
/// removed and the inside trimmed, so that it may hold whitespace.
fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'{' {
            let mut depth = 0usize;
            loop {
                match b.get(i) {
                    None => return Err(format!("unbalanced '{{' in: {}", &line[start..])),
                    Some(b'{') => depth += 1,
                    Some(b'}') => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                }
                i += 1;
            }
            tokens.push(line[start + 1..i].trim().to_string());
            i += 1;
            if b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                return Err(format!(
                    "text after '}}' must be separated by whitespace: {}",
                    &line[start..]
                ));
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            tokens.push(line[start..i].to_string());
        }
    }
    Ok(tokens)
}

/// Which address families `inet_protocols` allows (and the machine has).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocols {
    pub ipv4: bool,
    pub ipv6: bool,
}

impl Protocols {
    /// Parses inet_protocols (`all`, `ipv4`, `ipv6`, `ipv4, ipv6`). IPv6 is
    /// dropped when the machine lacks it, as Postfix does (with a warning).
    pub fn parse(items: &[String], have_ipv6: bool) -> Result<(Protocols, Option<String>), String> {
        let mut p = Protocols {
            ipv4: false,
            ipv6: false,
        };
        for item in items {
            match item.to_ascii_lowercase().as_str() {
                "all" => {
                    p.ipv4 = true;
                    p.ipv6 = true;
                }
                "ipv4" => p.ipv4 = true,
                "ipv6" => p.ipv6 = true,
                other => return Err(format!("bad inet_protocols value: {other}")),
            }
        }
        if !p.ipv4 && !p.ipv6 {
            return Err("inet_protocols: specify ipv4, ipv6 or all".to_string());
        }
        let mut warning = None;
        if p.ipv6 && !have_ipv6 {
            p.ipv6 = false;
            if !p.ipv4 {
                return Err("inet_protocols = ipv6, but this machine has no IPv6".to_string());
            }
            warning = Some("inet_protocols: disabling IPv6 name/address support".to_string());
        }
        Ok((p, warning))
    }

    fn allows(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.ipv4,
            IpAddr::V6(_) => self.ipv6,
        }
    }
}

/// The addresses an inet service without a host binds: those of
/// inet_interfaces. `all` is the wildcard of each enabled family (an IPv6
/// wildcard must be bound IPV6_V6ONLY next to the IPv4 one);
/// `loopback-only` is 127.0.0.1 and ::1; anything else is an address or a
/// host name to resolve.
pub fn interface_addrs(items: &[String], protocols: Protocols) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in items {
        let candidates: Vec<IpAddr> = match item.to_ascii_lowercase().as_str() {
            "all" => vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ],
            "loopback-only" => vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ],
            _ => resolve_host(item)?,
        };
        for ip in candidates {
            if protocols.allows(ip) && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

/// An address literal (`1.2.3.4`, `::1`, `[::1]`) or a host name.
fn resolve_host(host: &str) -> Result<Vec<IpAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let addrs = (bare, 0u16)
        .to_socket_addrs()
        .map_err(|e| format!("host not found: {host}: {e}"))?;
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a.ip()) {
            out.push(a.ip());
        }
    }
    if out.is_empty() {
        return Err(format!("host not found: {host}"));
    }
    Ok(out)
}

/// Well-known service names (so as not to depend on /etc/services).
const SERVICE_PORTS: [(&str, u16); 6] = [
    ("smtp", 25),
    ("submission", 587),
    ("submissions", 465),
    ("smtps", 465),
    ("lmtp", 24),
    ("qmqp", 628),
];

fn port_of(name: &str) -> Result<u16, String> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("bad port number: {name}"));
    }
    SERVICE_PORTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, p)| p)
        .ok_or_else(|| format!("unknown service name: {name} (use a port number)"))
}

/// The socket addresses of one inet service: `port` or `name` binds every
/// address in `default_addrs` (from inet_interfaces); `host:port`,
/// `[v6]:port` bind that host's addresses.
pub fn service_addrs(
    service: &str,
    default_addrs: &[IpAddr],
    protocols: Protocols,
) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = if let Some(rest) = service.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("bad service address: {service}"))?;
        (Some(h), p)
    } else {
        match service.rsplit_once(':') {
            Some((h, p)) => (Some(h), p),
            None => (None, service),
        }
    };
    let port = port_of(port)?;
    let ips = match host {
        None => default_addrs.to_vec(),
        Some(h) => {
            let ips: Vec<IpAddr> = resolve_host(h)?
                .into_iter()
                .filter(|ip| protocols.allows(*ip))
                .collect();
            if ips.is_empty() {
                return Err(format!(
                    "{h}: no address of an enabled protocol (see inet_protocols)"
                ));
            }
            ips
        }
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<MasterService> {
        let mut w = Vec::new();
        parse(text, Path::new("/etc/sluice/master.cf"), &mut w).unwrap()
    }

    fn err(text: &str) -> String {
        let mut w = Vec::new();
        parse(text, Path::new("/etc/sluice/master.cf"), &mut w)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn services_and_overrides() {
        let svcs = parse_ok(concat!(
            "# service type  private unpriv  chroot  wakeup  maxproc command + args\n",
            "smtp      inet  n       -       y       -       -       smtpd\n",
            "127.0.0.1:2525 inet n - n - 10 smtpd -v\n",
            "  -o smtpd_timeout=60s\n",
            "  # comment inside continuation\n",
            "  -o { smtpd_banner = $myhostname  says hi }\n",
            "  -o smtpd_recipient_restrictions=\n",
            "pickup    unix  n       -       y       60      1       pickup\n",
            "qmgr      unix  n       -       n       300?    1       qmgr\n",
        ));
        assert_eq!(svcs.len(), 4);
        let s = &svcs[0];
        assert_eq!(
            (
                s.service.as_str(),
                s.service_type.as_str(),
                s.command.as_str()
            ),
            ("smtp", "inet", "smtpd")
        );
        assert_eq!(
            (s.private, s.unpriv, s.chroot, s.maxproc),
            (Some(false), None, Some(true), None)
        );
        let s = &svcs[1];
        assert_eq!(s.args, ["-v"]);
        assert_eq!(s.maxproc, Some(10));
        assert_eq!(s.origin.to_string(), "/etc/sluice/master.cf:3");
        assert_eq!(
            s.overrides,
            [
                ("smtpd_timeout".to_string(), "60s".to_string()),
                (
                    "smtpd_banner".to_string(),
                    "$myhostname  says hi".to_string()
                ),
                ("smtpd_recipient_restrictions".to_string(), String::new()),
            ]
        );
        assert_eq!(svcs[2].wakeup.as_deref(), Some("60"));
        assert_eq!(svcs[3].wakeup.as_deref(), Some("300?"));
    }

    /// Found by fuzzing (fuzz/seeds/master_cf/empty_command_field): `{ }`
    /// in a fixed field made an empty command or service name.
    #[test]
    fn empty_fixed_fields_are_refused() {
        assert_eq!(
            err("smtp inet - - - - - { }\n"),
            "/etc/sluice/master.cf:1: empty command field"
        );
        assert_eq!(
            err("{ } inet - - - - - smtpd\n"),
            "/etc/sluice/master.cf:1: empty service field"
        );
        assert_eq!(parse_ok("smtp inet - - - - - smtpd { }\n")[0].args, [""]);
    }

    #[test]
    fn last_duplicate_wins() {
        let mut w = Vec::new();
        let svcs = parse(
            "smtp inet n - n - - smtpd\nsmtp unix n - n - - smtpd\nsmtp inet n - n - 5 smtpd\n",
            Path::new("/m/master.cf"),
            &mut w,
        )
        .unwrap();
        assert_eq!(svcs.len(), 2);
        assert_eq!(svcs[1].maxproc, Some(5));
        assert_eq!(
            w,
            ["/m/master.cf:3: duplicate service smtp/inet; the entry at /m/master.cf:1 is ignored"]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let table = [
            ("smtp inet n - n - -\n", "/etc/sluice/master.cf:1: expected at least 8 fields (service type private unpriv chroot wakeup maxproc command), found 7"),
            ("\nsmtp tcp n - n - - smtpd\n", "/etc/sluice/master.cf:2: bad transport type: tcp"),
            ("smtp inet x - n - - smtpd\n", "/etc/sluice/master.cf:1: bad private field: x"),
            ("smtp inet n - n 1x - smtpd\n", "/etc/sluice/master.cf:1: bad wakeup time field: 1x"),
            ("smtp inet n - n - many smtpd\n", "/etc/sluice/master.cf:1: bad process count field: many"),
            ("smtp inet n - n - - smtpd -o\n", "/etc/sluice/master.cf:1: missing value after -o"),
            ("smtp inet n - n - - smtpd -o foo\n", "/etc/sluice/master.cf:1: -o foo: missing '=' (expected -o name=value)"),
            ("smtp inet n - n - - smtpd -o { a = b\n", "/etc/sluice/master.cf:1: unbalanced '{' in: { a = b"),
        ];
        for (input, want) in table {
            assert_eq!(err(input), want, "{input:?}");
        }
    }

    #[test]
    fn glued_o_option() {
        let svcs = parse_ok("smtp inet n - n - - smtpd -osmtpd_timeout=5s\n");
        assert_eq!(svcs[0].overrides, [("smtpd_timeout".into(), "5s".into())]);
    }

    fn both() -> Protocols {
        Protocols {
            ipv4: true,
            ipv6: true,
        }
    }

    #[test]
    fn interfaces_to_addresses() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let v4only = Protocols {
            ipv4: true,
            ipv6: false,
        };
        assert_eq!(
            interface_addrs(&s(&["all"]), both()).unwrap(),
            [
                IpAddr::from([0, 0, 0, 0]),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            ]
        );
        assert_eq!(
            interface_addrs(&s(&["all"]), v4only).unwrap(),
            [IpAddr::from([0, 0, 0, 0])]
        );
        assert_eq!(
            interface_addrs(&s(&["loopback-only"]), both()).unwrap(),
            [
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(
            interface_addrs(&s(&["192.0.2.1", "[::1]", "192.0.2.1"]), both()).unwrap(),
            [
                IpAddr::from([192, 0, 2, 1]),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
    }

    #[test]
    fn service_addresses() {
        let defaults = [
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let sa = |s: &str| service_addrs(s, &defaults, both());
        assert_eq!(
            sa("2525").unwrap(),
            [
                "127.0.0.1:2525".parse().unwrap(),
                "[::1]:2525".parse::<SocketAddr>().unwrap()
            ]
        );
        assert_eq!(sa("smtp").unwrap()[0].port(), 25);
        assert_eq!(
            sa("127.0.0.1:2525").unwrap(),
            ["127.0.0.1:2525".parse().unwrap()]
        );
        assert_eq!(
            sa("[::1]:submission").unwrap(),
            ["[::1]:587".parse().unwrap()]
        );
        assert!(sa("localhost:2525")
            .unwrap()
            .iter()
            .all(|a| a.ip().is_loopback()));
        assert_eq!(sa("0").unwrap_err(), "bad port number: 0");
        assert_eq!(
            sa("nosuch").unwrap_err(),
            "unknown service name: nosuch (use a port number)"
        );
        assert!(sa("[::1").is_err());
    }

    #[test]
    fn protocols() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(Protocols::parse(&s(&["all"]), true).unwrap().0, both());
        let (p, warning) = Protocols::parse(&s(&["all"]), false).unwrap();
        assert!(!p.ipv6 && p.ipv4 && warning.is_some());
        assert!(Protocols::parse(&s(&["ipv6"]), false).is_err());
        assert!(Protocols::parse(&s(&["ipx"]), true).is_err());
    }
}
