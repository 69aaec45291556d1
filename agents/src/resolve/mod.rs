//! trivial-rewrite's `resolve`: which transport and next hop a recipient
//! goes to, and whether this host may accept it from a stranger.
//!
//! Role: map one recipient address (already in standard form, see
//! [`crate::rewrite`]) to its address class, its destination
//! (`transport:nexthop`, what qmgr keys its per-destination queues on) and,
//! when the address cannot be delivered at all, the bounce reason. qmgr
//! calls [`resolve`] on the queued (standard form) address; smtpd's relay
//! check calls [`resolve_external`] on the address as the client gave it,
//! which is [`crate::rewrite::standard_form`] (cleanup's rewrite, with the
//! same parameters) followed by [`resolve`]: one decision, seen the same
//! way by the relay check and by delivery.
//!
//! 0. The address is routed first, as Postfix's `resolve_addr()` does:
//!    while the domain is local, it is stripped and what is left is
//!    rewritten again, so `u%remote@local`, `remote!u@local`,
//!    `u@remote@local` and `@local:u@remote` all end at `remote`. With
//!    `resolve_dequoted_address = yes` (the default) a quoted local part
//!    is cracked open too: `"u@remote"@local` and `"u%remote"` go to
//!    `remote`. An address left with `@`, `!` or `%` in its local part is
//!    *routed*: its real destination is not known here, so it is never an
//!    authorized destination (Postfix's `RESOLVE_FLAG_ROUTED`). An empty
//!    domain (`u@`) is a syntax error, bounced as "bad address syntax"
//!    (Postfix's default `resolve_null_domain = no`; the parameter itself
//!    is not offered).
//! 1. The class, checked in Postfix's order: **local** (domain in
//!    `mydestination`, or `[ip]` of one of `inet_interfaces`' addresses),
//!    **virtual alias** (`virtual_alias_domains`), **virtual mailbox**
//!    (`virtual_mailbox_domains`), **relay** (`relay_domains`, which also
//!    matches subdomains: it is in `parent_domain_matches_subdomains`), and
//!    **default**. In every list a `.domain` entry matches subdomains. An
//!    address without a domain is local (`@$myhostname` is appended).
//! 2. The class's transport: `local_transport` (`local:$myhostname`),
//!    `error` with "User unknown in virtual alias table" (a virtual alias
//!    domain without a matching alias), `virtual_transport`,
//!    `relay_transport`, `default_transport`. The next hop is the recipient
//!    domain, or `relayhost` (when set) for the relay and default classes;
//!    a `transport:nexthop` setting in the parameter overrides it.
//! 3. `transport_maps` override both (not for the virtual alias class).
//!    Keys, first match wins: `user+ext@domain`, `user@domain` (when
//!    `recipient_delimiter` is set), `domain`, then `.parent` for each
//!    parent domain, then `*`. A result `transport:nexthop` with an empty
//!    transport keeps the current one (and its next hop unless one is
//!    given); a non-empty transport with an empty next hop sends to the
//!    recipient domain (`error` and `retry` get "Address is
//!    undeliverable"); `[host]:port` is kept as written (brackets mean "no
//!    MX lookup" to the smtp agent).
//! 4. Recipients that start with `-` are bounced (`allow_min_user = no`:
//!    "5.1.3 bad address syntax"), as Postfix's qmgr does, so that no pipe
//!    command ever sees one as an option.
//!
//! Names of transports are returned as configured: `relay` is an smtp
//! client in Postfix's master.cf, and mapping transport names to agents is
//! the engine's business.
//!
//! Not here (yet): `relocated_maps`, sender-dependent relayhost,
//! `proxy_interfaces`, recipient validity (`local_recipient_maps` and
//! friends), `resolve_numeric_domain` (`u@1.2.3.4` is an ordinary, and
//! unknown, domain), host name syntax checks, and domain lists with `!`
//! or lookup-table entries (the engine flattens table keys into the lists).
//!
//! Trust: addresses come from clients; nothing here panics or does I/O,
//! and the routing loop is bounded (Postfix's `strlen(addr) + 100`).

use std::net::IpAddr;

use sluice_storage::table::Table;

use crate::delivery::Destination;
use crate::rewrite::{
    is_quoted_string, quote_822_local, standard_form, tokenize, RewriteParams, Tok, Token,
};

/// Postfix's address classes (`RESOLVE_CLASS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    Local,
    VirtualAlias,
    VirtualMailbox,
    Relay,
    Default,
}

/// The resolver's configuration. Domains are compared case-insensitively
/// and without a trailing dot.
#[derive(Clone, Debug)]
pub struct ResolveParams {
    pub myhostname: String,
    pub mydestination: Vec<String>,
    /// This host's addresses (inet_interfaces): `user@[ip]` is local.
    pub inet_interface_addrs: Vec<IpAddr>,
    pub virtual_alias_domains: Vec<String>,
    pub virtual_mailbox_domains: Vec<String>,
    /// An entry matches the domain and its subdomains; a `.domain` entry
    /// matches subdomains only.
    pub relay_domains: Vec<String>,
    /// Next hop for the relay and default classes when non-empty
    /// (`[mx.isp.example]:587`).
    pub relayhost: String,
    /// `smtp`
    pub default_transport: String,
    /// `relay`
    pub relay_transport: String,
    /// `local:$myhostname`, expanded.
    pub local_transport: String,
    /// `virtual`
    pub virtual_transport: String,
    /// Searched in order; the first table with the key wins.
    pub transport_maps: Vec<Table>,
    /// `MAILER-DAEMON`: the null recipient becomes this `@$myhostname`.
    pub empty_address_recipient: String,
    /// Characters that start an address extension (`+`); empty = none.
    pub recipient_delimiter: String,
    /// `allow_min_user = no` bounces recipients that start with `-`.
    pub allow_min_user: bool,
    /// The standard form's parameters (`myorigin`, `swap_bangpath`,
    /// `allow_percent_hack`, `append_at_myorigin`): the same value cleanup
    /// rewrites the envelope with.
    pub rewrite: RewriteParams,
    /// `resolve_dequoted_address` (yes): look for `@`, `%` and `!` inside a
    /// quoted local part.
    pub resolve_dequoted_address: bool,
}

impl ResolveParams {
    /// Postfix's defaults for a host named `myhostname` (with
    /// `mydestination = $myhostname, localhost`).
    pub fn new(myhostname: &str) -> ResolveParams {
        ResolveParams {
            myhostname: myhostname.to_string(),
            mydestination: vec![myhostname.to_string(), "localhost".to_string()],
            inet_interface_addrs: Vec::new(),
            virtual_alias_domains: Vec::new(),
            virtual_mailbox_domains: Vec::new(),
            relay_domains: Vec::new(),
            relayhost: String::new(),
            default_transport: "smtp".to_string(),
            relay_transport: "relay".to_string(),
            local_transport: format!("local:{myhostname}"),
            virtual_transport: "virtual".to_string(),
            transport_maps: Vec::new(),
            empty_address_recipient: "MAILER-DAEMON".to_string(),
            recipient_delimiter: String::new(),
            allow_min_user: false,
            rewrite: RewriteParams::new(myhostname),
            resolve_dequoted_address: true,
        }
    }
}

/// Where one recipient goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub class: AddressClass,
    /// Transport and next hop. A next hop taken from the recipient domain
    /// is lower-cased; one from main.cf or a table is kept as written (a
    /// unix-domain socket path is case-sensitive).
    pub destination: Destination,
    /// The recipient as resolved: always `local@domain` (the null address
    /// becomes `MAILER-DAEMON@$myhostname`, a bare `user` gets
    /// `@$myhostname`, a cracked quoted local part stays cracked).
    pub recipient: String,
    /// `@`, `!` or `%` is left in the local part: the real destination is
    /// decided elsewhere (Postfix's `RESOLVE_FLAG_ROUTED`).
    pub routed: bool,
    /// `Some((dsn, reason))` when the recipient must be bounced without a
    /// delivery attempt (the `error` transport): e.g. `("5.1.1", "User
    /// unknown in virtual alias table")`.
    pub error: Option<(String, String)>,
}

const ERROR_TRANSPORT: &str = "error";
/// qmgr's text for an address it cannot resolve (and for `-user`).
const BAD_SYNTAX: &str = "5.1.3 bad address syntax";
const RETRY_TRANSPORT: &str = "retry";

impl Resolved {
    /// Postfix's `permit_auth_destination`: mail for this recipient stays
    /// here (local, virtual alias, virtual mailbox) or is relayed on our
    /// authority (`relay_domains`), and its local part routes nowhere else.
    pub fn is_auth_destination(&self) -> bool {
        !self.routed && self.class != AddressClass::Default
    }
}

/// Rewrites `addr`, as a client gave it, to standard form with
/// `p.rewrite` (what cleanup queues), then resolves it: the relay check's
/// view of the address, which is delivery's.
pub fn resolve_external(p: &ResolveParams, addr: &str) -> Resolved {
    resolve(p, &standard_form(addr, &p.rewrite))
}

/// Resolves one recipient in standard form (see the module doc).
pub fn resolve(p: &ResolveParams, recipient: &str) -> Resolved {
    let (recipient, remote) = route(p, recipient);
    let at = last_at(&recipient);
    let routed = recipient[..at.start].contains(['@', '!', '%']);
    let domain = normalize_domain(recipient[at.end..].trim());
    if domain.is_empty() {
        // `u@`: Postfix's RESOLVE_FLAG_ERROR, which qmgr bounces.
        return Resolved {
            class: AddressClass::Default,
            destination: Destination::new(ERROR_TRANSPORT, BAD_SYNTAX),
            error: Some(error_reason(BAD_SYNTAX)),
            recipient,
            routed,
        };
    }

    let (class, channel, mut nexthop) = match remote {
        false => (
            AddressClass::Local,
            p.local_transport.as_str(),
            domain.clone(),
        ),
        true if domain_matches(&p.virtual_alias_domains, &domain, false) => (
            AddressClass::VirtualAlias,
            ERROR_TRANSPORT,
            "5.1.1 User unknown in virtual alias table".into(),
        ),
        true if domain_matches(&p.virtual_mailbox_domains, &domain, false) => (
            AddressClass::VirtualMailbox,
            p.virtual_transport.as_str(),
            domain.clone(),
        ),
        true if domain_matches(&p.relay_domains, &domain, true) => (
            AddressClass::Relay,
            p.relay_transport.as_str(),
            relayhost_or(p, &domain),
        ),
        true => (
            AddressClass::Default,
            p.default_transport.as_str(),
            relayhost_or(p, &domain),
        ),
    };
    // An explicit `transport:nexthop` in main.cf overrides the next hop
    // (this is what makes every local domain share one queue).
    let (transport, own_nexthop) = split_transport(channel);
    if !own_nexthop.is_empty() {
        nexthop = own_nexthop.to_string();
    }
    let mut destination = Destination::new(transport, nexthop);

    if class != AddressClass::VirtualAlias {
        if let Some(value) = transport_lookup(p, &recipient, &domain) {
            apply_transport_entry(&mut destination, value, &domain);
        }
    }
    if !p.allow_min_user && recipient.starts_with('-') {
        destination = Destination::new(ERROR_TRANSPORT, BAD_SYNTAX);
    }

    let error =
        (destination.transport == ERROR_TRANSPORT).then(|| error_reason(&destination.nexthop));
    Resolved {
        class,
        destination,
        recipient,
        routed,
        error,
    }
}

/// The last `@` operator of `addr` (outside quotes and literals); `route`
/// guarantees there is one.
fn last_at(addr: &str) -> Token {
    tokenize(addr.as_bytes())
        .into_iter()
        .rev()
        .find(|t| t.tok == Tok::Op(b'@'))
        .unwrap_or(Token {
            tok: Tok::Op(b'@'),
            start: addr.len(),
            end: addr.len(),
        })
}

/// Postfix's `resolve_addr()` loop: strips local domains and rewrites what
/// is left until a remote domain or a plain local part remains. Returns
/// the recipient as `local@domain` and whether its domain is remote.
fn route(p: &ResolveParams, addr: &str) -> (String, bool) {
    let mut s = addr.to_string();
    let mut saved_domain: Option<String> = None;
    for _ in 0..addr.len() + 100 {
        let toks = tokenize(s.as_bytes());
        if let Some(at) = toks.iter().rev().find(|t| t.tok == Tok::Op(b'@')) {
            let domain = s[at.end..].trim();
            if domain.is_empty() || !is_local(p, &normalize_domain(domain)) {
                return (s, true);
            }
            saved_domain = Some(s.split_off(at.start));
            continue;
        }
        let has = |c: u8| toks.iter().any(|t| t.tok == Tok::Op(c));
        if (p.rewrite.swap_bangpath && has(b'!')) || (p.rewrite.allow_percent_hack && has(b'%')) {
            s = standard_form(&s, &p.rewrite);
            continue;
        }
        if let Some(cracked) = crack_quoted(p, &s, &toks) {
            s = standard_form(&cracked, &p.rewrite);
            continue;
        }
        break;
    }
    if s.is_empty() || s == "\"\"" {
        s.clone_from(&p.empty_address_recipient);
    }
    match saved_domain {
        Some(d) => s.push_str(&d),
        None => {
            s.push('@');
            s.push_str(&p.myhostname);
        }
    }
    (s, false)
}

/// With `resolve_dequoted_address`, a local part that is one quoted string
/// holding a routing operator (`@`, else `%`, else `!`, the last one) comes
/// out unquoted, `%` turned into `@` and the new local part quoted again
/// where it needs to be.
fn crack_quoted(p: &ResolveParams, s: &str, toks: &[Token]) -> Option<String> {
    let [only] = toks else { return None };
    let quoted = &s[only.start..only.end];
    if !p.resolve_dequoted_address || !is_quoted_string(quoted) {
        return None;
    }
    let mut inner = unescape(&quoted[1..quoted.len() - 1]);
    let op = inner
        .rfind('@')
        .or_else(|| inner.rfind('%').filter(|_| p.rewrite.allow_percent_hack))
        .or_else(|| inner.rfind('!').filter(|_| p.rewrite.swap_bangpath))?;
    if inner.as_bytes()[op] == b'!' {
        return Some(inner);
    }
    inner.replace_range(op..op + 1, "@");
    Some(quote_822_local(&inner).into_owned())
}

/// The text of a quoted string without its backslash escapes.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

fn normalize_domain(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// Postfix's domain list matching (case-insensitive, entries without a
/// trailing dot): `example.com` matches itself, and its subdomains when
/// `parent_matches` (the list is in `parent_domain_matches_subdomains`);
/// `.example.com` matches subdomains only.
fn domain_matches(list: &[String], domain: &str, parent_matches: bool) -> bool {
    list.iter().any(|e| {
        let e = e.strip_suffix('.').unwrap_or(e);
        match e.strip_prefix('.') {
            Some(parent) => is_subdomain(domain, parent),
            None => e.eq_ignore_ascii_case(domain) || (parent_matches && is_subdomain(domain, e)),
        }
    })
}

fn is_subdomain(domain: &str, parent: &str) -> bool {
    !parent.is_empty()
        && domain.len() > parent.len() + 1
        && domain.as_bytes()[domain.len() - parent.len() - 1] == b'.'
        && domain[domain.len() - parent.len()..].eq_ignore_ascii_case(parent)
}

/// Postfix's `resolve_local()`: `domain` (normalized) is in
/// `mydestination`, or is `[ip]` of one of our interfaces.
fn is_local(p: &ResolveParams, domain: &str) -> bool {
    if domain_matches(&p.mydestination, domain, false) {
        return true;
    }
    // `[1.2.3.4]` or `[IPv6:::1]` naming one of our own addresses.
    let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) else {
        return false;
    };
    let ip = match literal.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => literal[5..].parse::<IpAddr>().ok(),
        _ => literal.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    };
    ip.is_some_and(|ip| p.inet_interface_addrs.contains(&ip))
}

fn relayhost_or(p: &ResolveParams, domain: &str) -> String {
    if p.relayhost.is_empty() {
        domain.to_string()
    } else {
        p.relayhost.clone()
    }
}

/// `smtp:[mx]:25` → (`smtp`, `[mx]:25`); `smtp` → (`smtp`, ``).
fn split_transport(value: &str) -> (&str, &str) {
    match value.split_once(':') {
        Some((t, n)) => (t.trim(), n.trim()),
        None => (value.trim(), ""),
    }
}

/// transport(5)'s search order; the first table that has a key wins.
fn transport_lookup<'p>(p: &'p ResolveParams, recipient: &str, domain: &str) -> Option<&'p str> {
    if p.transport_maps.is_empty() {
        return None;
    }
    let find = |key: &str| p.transport_maps.iter().find_map(|t| t.lookup(key));
    let full = recipient.to_ascii_lowercase();
    if let Some(v) = find(&full) {
        return Some(v);
    }
    if let Some(stripped) = strip_extension(&full, &p.recipient_delimiter) {
        if let Some(v) = find(&stripped) {
            return Some(v);
        }
    }
    if let Some(v) = find(domain) {
        return Some(v);
    }
    // `.parent` for every parent: `a.b.c` → `.b.c`, `.c`.
    let mut rest = domain;
    while let Some(dot) = rest.find('.') {
        let parent = &rest[dot..];
        if parent.len() > 1 {
            if let Some(v) = find(parent) {
                return Some(v);
            }
        }
        rest = &rest[dot + 1..];
    }
    find("*")
}

/// `user+ext@d` → `user@d` when `+` is a recipient delimiter.
fn strip_extension(addr: &str, delimiters: &str) -> Option<String> {
    if delimiters.is_empty() {
        return None;
    }
    let at = addr.rfind('@')?;
    let (local, domain) = addr.split_at(at);
    let cut = local.find(|c: char| delimiters.contains(c))?;
    (cut > 0).then(|| format!("{}{}", &local[..cut], domain))
}

/// Postfix's `update_entry()`: how a transport table result changes the
/// class's transport and next hop.
fn apply_transport_entry(dest: &mut Destination, value: &str, rcpt_domain: &str) {
    let (transport, nexthop) = split_transport(value);
    if transport.is_empty() {
        if !nexthop.is_empty() {
            dest.nexthop = nexthop.to_string();
        }
        return;
    }
    dest.transport = transport.to_string();
    dest.nexthop = if !nexthop.is_empty() {
        nexthop.to_string()
    } else if transport != ERROR_TRANSPORT && transport != RETRY_TRANSPORT {
        rcpt_domain.to_string()
    } else {
        "Address is undeliverable".to_string()
    };
}

/// The error(8) agent's reading of its next hop: an optional leading
/// `X.Y.Z` status, then the reason (default status 5.0.0).
fn error_reason(text: &str) -> (String, String) {
    let (first, rest) = text.split_once(' ').unwrap_or((text, ""));
    if is_dsn_code(first) {
        (first.to_string(), rest.trim().to_string())
    } else {
        ("5.0.0".to_string(), text.to_string())
    }
}

fn is_dsn_code(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>, max: usize| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next(), 1) && ok(parts.next(), 3) && ok(parts.next(), 3) && parts.next().is_none()
}

#[cfg(test)]
mod tests;
