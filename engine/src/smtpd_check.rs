//! smtpd_check: access restrictions for one RCPT, as Postfix's smtpd
//! evaluates `smtpd_relay_restrictions` then `smtpd_recipient_restrictions`.
//!
//! Pure policy: no I/O, no lookups beyond the values in [`RelayContext`].
//! Whether a recipient is an authorized destination is trivial-rewrite's
//! answer ([`sluice_agents::resolve::resolve_external`]): the address is
//! rewritten and routed exactly as cleanup and qmgr will, so `u%far`,
//! `far!u`, `"u@far"` or `u%far@ourdomain` are judged by where they would
//! really go.
//! In each list the first restriction that decides (PERMIT, REJECT or
//! DEFER) ends that list; reaching the end is PERMIT. A PERMIT moves on to
//! the next list; a REJECT or DEFER is the answer and later lists are
//! skipped. The reply texts are Postfix's.

use std::fmt;
use std::net::IpAddr;

use sluice_agents::resolve::{resolve_external, ResolveParams};
use sluice_protocols::smtp::reply::Reply;

use crate::config::{Cidr, LoginMaps};

/// One restriction in a restriction list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restriction {
    /// PERMIT when the client address matches mynetworks.
    PermitMynetworks,
    /// PERMIT when the client authenticated with SASL (SMTP AUTH).
    PermitSaslAuthenticated,
    /// 553 5.7.1 when `smtpd_sender_login_maps` names an owner of the
    /// MAIL FROM address and the client is not logged in as one of them,
    /// or when the client is logged in and the maps name no owner of it
    /// that is this login (Postfix's reject_sender_login_mismatch).
    RejectSenderLoginMismatch,
    /// reject_sender_login_mismatch, for logged-in clients only.
    RejectAuthenticatedSenderLoginMismatch,
    /// reject_sender_login_mismatch, for clients not logged in only.
    RejectUnauthenticatedSenderLoginMismatch,
    /// PERMIT when the recipient's domain is ours or one we relay for.
    PermitAuthDestination,
    /// REJECT (554 5.7.1 Relay access denied) unless the recipient's domain
    /// is ours or one we relay for.
    RejectUnauthDestination,
    /// As RejectUnauthDestination, with 454 4.7.1.
    DeferUnauthDestination,
    Permit,
    /// 554 5.7.1 `<rcpt>: Recipient address rejected: Access denied`.
    Reject,
    /// 450 4.7.1 `<rcpt>: Recipient address rejected: Access denied`.
    Defer,
}

impl Restriction {
    /// Parses one restriction name (case-insensitive, as in Postfix).
    pub fn parse(s: &str) -> Result<Restriction, String> {
        use Restriction::*;
        let all = [
            PermitMynetworks,
            PermitSaslAuthenticated,
            RejectSenderLoginMismatch,
            RejectAuthenticatedSenderLoginMismatch,
            RejectUnauthenticatedSenderLoginMismatch,
            PermitAuthDestination,
            RejectUnauthDestination,
            DeferUnauthDestination,
            Permit,
            Reject,
            Defer,
        ];
        all.into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown smtpd restriction: \"{s}\""))
    }

    /// Parses a whole restriction list (comma and/or whitespace separated).
    pub fn parse_list(value: &str) -> Result<Vec<Restriction>, String> {
        crate::config::split_list(value)
            .iter()
            .map(|s| Restriction::parse(s))
            .collect()
    }

    /// Postfix's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Restriction::PermitMynetworks => "permit_mynetworks",
            Restriction::PermitSaslAuthenticated => "permit_sasl_authenticated",
            Restriction::RejectSenderLoginMismatch => "reject_sender_login_mismatch",
            Restriction::RejectAuthenticatedSenderLoginMismatch => {
                "reject_authenticated_sender_login_mismatch"
            }
            Restriction::RejectUnauthenticatedSenderLoginMismatch => {
                "reject_unauthenticated_sender_login_mismatch"
            }
            Restriction::PermitAuthDestination => "permit_auth_destination",
            Restriction::RejectUnauthDestination => "reject_unauth_destination",
            Restriction::DeferUnauthDestination => "defer_unauth_destination",
            Restriction::Permit => "permit",
            Restriction::Reject => "reject",
            Restriction::Defer => "defer",
        }
    }

    /// Whether this entry satisfies Postfix's start-up rule that relay or
    /// recipient restrictions must be able to refuse relaying.
    pub fn limits_relaying(&self) -> bool {
        matches!(
            self,
            Restriction::RejectUnauthDestination
                | Restriction::DeferUnauthDestination
                | Restriction::Reject
                | Restriction::Defer
        )
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Postfix's fatal start-up text when neither list can refuse relaying
/// (smtpd_check_init's fail_required, limited to what Sluice implements).
pub const RELAY_REQUIRED: &str = "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject or defer";

/// Whether `relay` or `recipient` can refuse relaying (else Sluice, like
/// Postfix, refuses to start: it would be an open relay).
pub fn relay_control_present(relay: &[Restriction], recipient: &[Restriction]) -> bool {
    relay
        .iter()
        .chain(recipient)
        .any(Restriction::limits_relaying)
}

/// What the restrictions need to know about the client and this host.
/// `MainParams::relay_context` builds one from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct RelayContext<'a> {
    pub client_addr: IpAddr,
    pub mynetworks: &'a [Cidr],
    /// The resolver qmgr uses (mydestination, inet_interfaces, virtual and
    /// relay domains, the standard form's parameters).
    pub resolve: &'a ResolveParams,
    /// The client's SASL login name, once AUTH succeeded.
    pub sasl_username: Option<&'a str>,
    /// `smtpd_sender_login_maps` (None: empty).
    pub sender_login_maps: Option<&'a LoginMaps>,
}

enum Verdict {
    Dunno,
    Permit,
    Refuse(Reply),
}

/// Evaluates relay then recipient restrictions for one RCPT address (as the
/// client gave it, without `<>`), in the transaction of MAIL FROM `sender`.
pub fn check_recipient(
    relay: &[Restriction],
    recipient: &[Restriction],
    ctx: &RelayContext,
    sender: &str,
    rcpt: &str,
) -> Result<(), Reply> {
    for list in [relay, recipient] {
        for r in list {
            match evaluate(*r, ctx, sender, rcpt) {
                Verdict::Dunno => continue,
                Verdict::Permit => break,
                Verdict::Refuse(reply) => return Err(reply),
            }
        }
    }
    Ok(())
}

fn evaluate(r: Restriction, ctx: &RelayContext, sender: &str, rcpt: &str) -> Verdict {
    let permit_if = |yes: bool| if yes { Verdict::Permit } else { Verdict::Dunno };
    match r {
        Restriction::PermitMynetworks => {
            permit_if(ctx.mynetworks.iter().any(|n| n.contains(ctx.client_addr)))
        }
        Restriction::PermitSaslAuthenticated => permit_if(ctx.sasl_username.is_some()),
        Restriction::RejectSenderLoginMismatch => sender_login_mismatch(ctx, sender),
        Restriction::RejectAuthenticatedSenderLoginMismatch if ctx.sasl_username.is_some() => {
            sender_login_mismatch(ctx, sender)
        }
        Restriction::RejectUnauthenticatedSenderLoginMismatch if ctx.sasl_username.is_none() => {
            sender_login_mismatch(ctx, sender)
        }
        Restriction::RejectAuthenticatedSenderLoginMismatch
        | Restriction::RejectUnauthenticatedSenderLoginMismatch => Verdict::Dunno,
        Restriction::PermitAuthDestination => permit_if(is_auth_destination(ctx, rcpt)),
        Restriction::RejectUnauthDestination => unauth(ctx, rcpt, 554, (5, 7, 1)),
        Restriction::DeferUnauthDestination => unauth(ctx, rcpt, 454, (4, 7, 1)),
        Restriction::Permit => Verdict::Permit,
        Restriction::Reject => Verdict::Refuse(Reply::new(
            554,
            (5, 7, 1),
            format!("<{rcpt}>: Recipient address rejected: Access denied"),
        )),
        Restriction::Defer => Verdict::Refuse(Reply::new(
            450,
            (4, 7, 1),
            format!("<{rcpt}>: Recipient address rejected: Access denied"),
        )),
    }
}

/// Postfix's `reject_sender_login_mismatch`: the null sender is never
/// checked; a logged-in client must be among the address's owners; a
/// client not logged in must not use an address that has owners.
fn sender_login_mismatch(ctx: &RelayContext, sender: &str) -> Verdict {
    if sender.is_empty() {
        return Verdict::Dunno;
    }
    let owners = ctx.sender_login_maps.and_then(|m| m.owners(sender));
    let refuse = |why: String| {
        Verdict::Refuse(Reply::new(
            553,
            (5, 7, 1),
            format!("<{sender}>: Sender address rejected: {why}"),
        ))
    };
    match (ctx.sasl_username, owners) {
        (Some(login), Some(owners)) if owners.iter().any(|o| o == login) => Verdict::Dunno,
        (Some(login), _) => refuse(format!("not owned by user {login}")),
        (None, Some(_)) => refuse("not logged in".into()),
        (None, None) => Verdict::Dunno,
    }
}

fn unauth(ctx: &RelayContext, rcpt: &str, code: u16, enhanced: (u8, u16, u16)) -> Verdict {
    if is_auth_destination(ctx, rcpt) {
        Verdict::Dunno
    } else {
        Verdict::Refuse(Reply::new(
            code,
            enhanced,
            format!("<{rcpt}>: Relay access denied"),
        ))
    }
}

/// Whether mail to `rcpt` (as the client gave it) stays here or is
/// relayed on our authority (Postfix's permit_auth_destination): after the
/// standard form and routing, its class is local, virtual or relay, and no
/// `@`, `%` or `!` is left in its local part (a source-routed address has
/// an uncertain destination).
pub fn is_auth_destination(ctx: &RelayContext, rcpt: &str) -> bool {
    resolve_external(ctx.resolve, rcpt).is_auth_destination()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        mynetworks: Vec<Cidr>,
        resolve: ResolveParams,
    }

    fn fixture() -> Fixture {
        let mut resolve = ResolveParams::new("mx.example.com");
        resolve.mydestination = vec![
            "mx.example.com".into(),
            "localhost".into(),
            ".local.example".into(),
            "[192.0.2.10]".into(),
        ];
        resolve.relay_domains = vec!["relay.example".into(), ".dot.example".into()];
        Fixture {
            mynetworks: vec![
                Cidr::parse("127.0.0.0/8").unwrap(),
                Cidr::parse("192.0.2.0/24").unwrap(),
                Cidr::parse("[::1]/128").unwrap(),
            ],
            resolve,
        }
    }

    fn ctx<'a>(f: &'a Fixture, client: &str) -> RelayContext<'a> {
        RelayContext {
            client_addr: client.parse().unwrap(),
            mynetworks: &f.mynetworks,
            resolve: &f.resolve,
            sasl_username: None,
            sender_login_maps: None,
        }
    }

    fn list(s: &str) -> Vec<Restriction> {
        Restriction::parse_list(s).unwrap()
    }

    fn outcome(relay: &str, recipient: &str, c: &RelayContext, rcpt: &str) -> String {
        match check_recipient(&list(relay), &list(recipient), c, "s@a.example", rcpt) {
            Ok(()) => "ok".into(),
            Err(reply) => reply.to_wire_string(),
        }
    }

    const DEFAULT_RELAY: &str =
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination";

    #[test]
    fn default_policy_table() {
        let f = fixture();
        let table = [
            // (client, rcpt, expected)
            ("192.0.2.7", "anyone@elsewhere.example", "ok"),
            ("::ffff:192.0.2.7", "anyone@elsewhere.example", "ok"),
            ("::1", "anyone@elsewhere.example", "ok"),
            ("198.51.100.1", "user@mx.example.com", "ok"),
            ("198.51.100.1", "user@MX.Example.COM.", "ok"),
            ("198.51.100.1", "user@localhost", "ok"),
            ("198.51.100.1", "postmaster", "ok"),
            ("198.51.100.1", "user@a.local.example", "ok"),
            ("198.51.100.1", "user@relay.example", "ok"),
            ("198.51.100.1", "user@deep.sub.relay.example", "ok"),
            ("198.51.100.1", "user@[192.0.2.10]", "ok"),
            (
                "198.51.100.1",
                "user@local.example",
                "454 4.7.1 <user@local.example>: Relay access denied",
            ),
            (
                "198.51.100.1",
                "user@elsewhere.example",
                "454 4.7.1 <user@elsewhere.example>: Relay access denied",
            ),
            (
                "198.51.100.1",
                "user@notrelay.example",
                "454 4.7.1 <user@notrelay.example>: Relay access denied",
            ),
            (
                "198.51.100.1",
                "user@[198.51.100.9]",
                "454 4.7.1 <user@[198.51.100.9]>: Relay access denied",
            ),
            (
                "198.51.100.1",
                "user%elsewhere.example@mx.example.com",
                "454 4.7.1 <user%elsewhere.example@mx.example.com>: Relay access denied",
            ),
        ];
        for (client, rcpt, want) in table {
            let c = ctx(&f, client);
            assert_eq!(
                outcome(DEFAULT_RELAY, "", &c, rcpt),
                want,
                "{client} {rcpt}"
            );
        }
    }

    #[test]
    fn reject_unauth_destination_is_554() {
        let f = fixture();
        let c = ctx(&f, "198.51.100.1");
        assert_eq!(
            outcome(
                "",
                "permit_mynetworks reject_unauth_destination",
                &c,
                "x@other.example"
            ),
            "554 5.7.1 <x@other.example>: Relay access denied"
        );
        assert_eq!(
            outcome(
                "",
                "permit_mynetworks reject_unauth_destination",
                &c,
                "x@mx.example.com"
            ),
            "ok"
        );
    }

    /// nmap's smtp-open-relay recipients (domain far.example, ip
    /// 192.0.2.10, server name mx.example.com) and their relatives: from a
    /// stranger every one is refused, because each one would be delivered
    /// to far.example (or routed on from a domain that is not ours).
    #[test]
    fn routed_and_domainless_forms_are_relay_attempts() {
        let f = fixture();
        let outsider = ctx(&f, "198.51.100.1");
        let relay = "permit_mynetworks, reject_unauth_destination";
        let forms = [
            "relaytest@far.example",
            "relaytest%far.example@[192.0.2.10]",
            "relaytest%far.example@mx.example.com",
            "\"relaytest@far.example\"",
            "\"relaytest%far.example\"",
            "relaytest@far.example@[192.0.2.10]",
            "\"relaytest@far.example\"@[192.0.2.10]",
            "relaytest@far.example@mx.example.com",
            "@[192.0.2.10]:relaytest@far.example",
            "@mx.example.com:relaytest@far.example",
            "far.example!relaytest",
            "far.example!relaytest@[192.0.2.10]",
            "far.example!relaytest@mx.example.com",
            "relaytest%far.example",
            "\"far.example!relaytest\"",
            "u%far.example@other.example",
            "\"u@far.example\"@other.example",
            "far.example!u@other.example",
        ];
        for rcpt in forms {
            assert_eq!(
                outcome(relay, "", &outsider, rcpt),
                format!("554 5.7.1 <{rcpt}>: Relay access denied"),
            );
            assert!(outcome(DEFAULT_RELAY, "", &outsider, rcpt).starts_with("454 4.7.1 "));
            assert_eq!(outcome(relay, "", &ctx(&f, "192.0.2.7"), rcpt), "ok");
        }
        for rcpt in [
            "postmaster",
            "postmaster%mx.example.com",
            "localhost!postmaster",
            "\"u@relay.example\"@mx.example.com",
            "u%relay.example@[192.0.2.10]",
        ] {
            assert_eq!(outcome(relay, "", &outsider, rcpt), "ok", "{rcpt}");
        }
    }

    #[test]
    fn list_semantics() {
        let f = fixture();
        let outsider = ctx(&f, "198.51.100.1");
        let insider = ctx(&f, "127.0.0.1");
        // A permit ends its own list only; the recipient list still runs.
        assert_eq!(
            outcome("permit", "reject", &outsider, "a@mx.example.com"),
            "554 5.7.1 <a@mx.example.com>: Recipient address rejected: Access denied"
        );
        // A reject in the relay list skips the recipient list.
        assert_eq!(
            outcome("defer", "permit", &outsider, "a@mx.example.com"),
            "450 4.7.1 <a@mx.example.com>: Recipient address rejected: Access denied"
        );
        // First decision wins.
        assert_eq!(
            outcome("permit_mynetworks, reject", "", &insider, "a@x.example"),
            "ok"
        );
        // End of both lists permits.
        assert_eq!(outcome("", "", &outsider, "a@x.example"), "ok");
        // Nothing-matching permits fall through to the next entry.
        assert_eq!(
            outcome(
                "permit_sasl_authenticated permit_mynetworks reject",
                "",
                &outsider,
                "a@x"
            ),
            "554 5.7.1 <a@x>: Recipient address rejected: Access denied"
        );
        assert_eq!(
            outcome(
                "permit_auth_destination reject",
                "",
                &outsider,
                "a@relay.example"
            ),
            "ok"
        );
    }

    #[test]
    fn domain_patterns() {
        let f = fixture();
        let c = ctx(&f, "198.51.100.1");
        let table = [
            ("u@relay.example", true),
            ("u@a.b.relay.example", true),
            ("u@xrelay.example", false),
            ("u@dot.example", false),
            ("u@sub.dot.example", true),
            ("u@mx.example.com", true),
            ("u@sub.mx.example.com", false),
            // No domain at all is a syntax error, not a local address.
            ("u@", false),
            ("u@[192.0.2.10]", true),
            ("u!v@mx.example.com", false),
            ("u@v@mx.example.com", false),
        ];
        for (rcpt, want) in table {
            assert_eq!(is_auth_destination(&c, rcpt), want, "{rcpt}");
        }
    }

    #[test]
    fn parse_names() {
        assert_eq!(
            Restriction::parse("Reject_Unauth_Destination"),
            Ok(Restriction::RejectUnauthDestination)
        );
        assert_eq!(
            Restriction::parse("check_client_access").unwrap_err(),
            "unknown smtpd restriction: \"check_client_access\""
        );
        assert_eq!(list(DEFAULT_RELAY).len(), 3);
        for r in list("permit_mynetworks permit_sasl_authenticated permit_auth_destination reject_unauth_destination defer_unauth_destination permit reject defer") {
            assert_eq!(Restriction::parse(r.name()), Ok(r));
        }
        assert!(relay_control_present(&list(DEFAULT_RELAY), &[]));
        assert!(relay_control_present(&[], &list("reject")));
        assert!(!relay_control_present(
            &list("permit_mynetworks"),
            &list("permit")
        ));
    }
}

#[cfg(test)]
mod sasl_tests {
    use super::*;
    use sluice_storage::table::Table;

    fn check(login: Option<&str>, restrictions: &str, sender: &str) -> String {
        let resolve = ResolveParams::new("mx.example.com");
        let maps = LoginMaps::from_tables(vec![Table::parse(
            "jane@example.com jane\n@shared.example jane, joe\n",
            "texthash:logins",
        )
        .expect("table")]);
        let ctx = RelayContext {
            client_addr: "198.51.100.1".parse().expect("ip"),
            mynetworks: &[],
            resolve: &resolve,
            sasl_username: login,
            sender_login_maps: Some(&maps),
        };
        let list = Restriction::parse_list(restrictions).expect("list");
        match check_recipient(&list, &[], &ctx, sender, "r@far.example") {
            Ok(()) => "ok".into(),
            Err(r) => r.to_wire_string().trim_end().to_owned(),
        }
    }

    #[test]
    fn permit_sasl_authenticated_matches_a_login() {
        let relay = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination";
        assert_eq!(check(Some("jane"), relay, "x@y"), "ok");
        assert_eq!(
            check(None, relay, "x@y"),
            "554 5.7.1 <r@far.example>: Relay access denied"
        );
    }

    #[test]
    fn sender_login_mismatch_as_postfix() {
        let r = "reject_sender_login_mismatch, permit";
        assert_eq!(check(Some("jane"), r, "jane@example.com"), "ok");
        assert_eq!(check(Some("joe"), r, "x@shared.example"), "ok");
        assert_eq!(
            check(Some("joe"), r, "JANE@example.com"),
            "553 5.7.1 <JANE@example.com>: Sender address rejected: not owned by user joe"
        );
        // A login must own the address: one the maps do not list is refused.
        assert_eq!(
            check(Some("jane"), r, "other@elsewhere.example"),
            "553 5.7.1 <other@elsewhere.example>: Sender address rejected: not owned by user jane"
        );
        assert_eq!(
            check(None, r, "jane@example.com"),
            "553 5.7.1 <jane@example.com>: Sender address rejected: not logged in"
        );
        assert_eq!(check(None, r, "other@elsewhere.example"), "ok");
        assert_eq!(check(Some("joe"), r, ""), "ok", "the null sender");
        let auth_only = "reject_authenticated_sender_login_mismatch, permit";
        assert_eq!(check(None, auth_only, "jane@example.com"), "ok");
        assert!(check(Some("joe"), auth_only, "jane@example.com").starts_with("553"));
        let unauth_only = "reject_unauthenticated_sender_login_mismatch, permit";
        assert_eq!(check(Some("joe"), unauth_only, "jane@example.com"), "ok");
        assert!(check(None, unauth_only, "jane@example.com").starts_with("553"));
    }
}
