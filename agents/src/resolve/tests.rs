//! Tables and properties for the resolver.

use super::*;
use proptest::prelude::*;

fn params() -> ResolveParams {
    let mut p = ResolveParams::new("mail.example.com");
    p.mydestination.push("Example.COM.".into());
    p.inet_interface_addrs = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    p.virtual_alias_domains = vec!["alias.example".into()];
    p.virtual_mailbox_domains = vec!["mbox.example".into()];
    p.relay_domains = vec!["relay.example".into(), ".sub.example".into()];
    p
}

fn dest(r: &Resolved) -> String {
    r.destination.to_string()
}

#[test]
fn classes_and_default_transports() {
    let p = params();
    let cases = [
        (
            "jane@example.com",
            AddressClass::Local,
            "local:mail.example.com",
        ),
        (
            "jane@EXAMPLE.com.",
            AddressClass::Local,
            "local:mail.example.com",
        ),
        (
            "jane@localhost",
            AddressClass::Local,
            "local:mail.example.com",
        ),
        (
            "jane@[192.0.2.1]",
            AddressClass::Local,
            "local:mail.example.com",
        ),
        (
            "jane@[IPv6:2001:db8::1]",
            AddressClass::Local,
            "local:mail.example.com",
        ),
        (
            "jane@[192.0.2.9]",
            AddressClass::Default,
            "smtp:[192.0.2.9]",
        ),
        (
            "jane@mbox.example",
            AddressClass::VirtualMailbox,
            "virtual:mbox.example",
        ),
        (
            "jane@relay.example",
            AddressClass::Relay,
            "relay:relay.example",
        ),
        (
            "jane@a.b.relay.example",
            AddressClass::Relay,
            "relay:a.b.relay.example",
        ),
        (
            "jane@xrelay.example",
            AddressClass::Default,
            "smtp:xrelay.example",
        ),
        (
            "jane@sub.example",
            AddressClass::Default,
            "smtp:sub.example",
        ),
        (
            "jane@x.sub.example",
            AddressClass::Relay,
            "relay:x.sub.example",
        ),
        ("Jane@Remote.ORG", AddressClass::Default, "smtp:remote.org"),
    ];
    for (rcpt, class, want) in cases {
        let r = resolve(&p, rcpt);
        assert_eq!((r.class, dest(&r).as_str()), (class, want), "{rcpt}");
        assert_eq!(r.error, None, "{rcpt}");
        assert_eq!(r.recipient, rcpt);
    }
}

/// (address as the client gave it, class, destination, routed).
type RouteCase = (&'static str, AddressClass, &'static str, bool);

fn check_routes(p: &ResolveParams, cases: &[RouteCase]) {
    for &(rcpt, class, want, routed) in cases {
        let r = resolve_external(p, rcpt);
        let got = (r.class, dest(&r), r.routed);
        assert_eq!(got, (class, want.to_string(), routed), "{rcpt}");
        let auth = !routed && class != AddressClass::Default;
        assert_eq!(r.is_auth_destination(), auth, "{rcpt}");
    }
}

/// nmap's smtp-open-relay forms and their relatives: whatever is
/// stripped, swapped or unquoted, the class is the final domain's.
#[test]
fn routing_operators_resolve_to_the_final_domain() {
    use AddressClass::*;
    let far = "smtp:foreign.example";
    check_routes(
        &params(),
        &[
            ("foreign.example!relaytest", Default, far, false),
            ("relaytest%foreign.example", Default, far, false),
            ("\"relaytest@foreign.example\"", Default, far, false),
            ("\"relaytest%foreign.example\"", Default, far, false),
            ("\"foreign.example!relaytest\"", Default, far, false),
            ("relaytest%foreign.example@example.com", Default, far, false),
            ("relaytest%foreign.example@[192.0.2.1]", Default, far, false),
            ("foreign.example!relaytest@localhost", Default, far, false),
            ("relaytest@foreign.example@example.com", Default, far, false),
            (
                "\"relaytest@foreign.example\"@example.com",
                Default,
                far,
                false,
            ),
            (
                "@example.com:relaytest@foreign.example",
                Default,
                far,
                false,
            ),
            (
                "@[192.0.2.1]:relaytest@foreign.example",
                Default,
                far,
                false,
            ),
            ("u%b%foreign.example@example.com", Default, far, true),
            // A remote domain with routing left in the local part.
            (
                "relaytest%foreign.example@remote.org",
                Default,
                "smtp:remote.org",
                true,
            ),
            (
                "foreign.example!relaytest@remote.org",
                Default,
                "smtp:remote.org",
                true,
            ),
            (
                "relaytest@foreign.example@remote.org",
                Default,
                "smtp:remote.org",
                true,
            ),
            (
                "\"relaytest@foreign\"@remote.org",
                Default,
                "smtp:remote.org",
                true,
            ),
            // Routing that ends here stays authorized.
            ("jane%example.com", Local, "local:mail.example.com", false),
            ("localhost!jane", Local, "local:mail.example.com", false),
            (
                "jane%mbox.example@example.com",
                VirtualMailbox,
                "virtual:mbox.example",
                false,
            ),
            ("relay.example!jane", Relay, "relay:relay.example", false),
            (
                "jane%x.sub.example@[192.0.2.1]",
                Relay,
                "relay:x.sub.example",
                false,
            ),
            (
                "\"john doe\"@example.com",
                Local,
                "local:mail.example.com",
                false,
            ),
            (
                "\"john doe%relay.example\"",
                Relay,
                "relay:relay.example",
                false,
            ),
        ],
    );
}

#[test]
fn resolved_recipient_is_user_at_domain() {
    let p = params();
    let cases = [
        ("jane", "jane@mail.example.com"),
        ("jane@example.com", "jane@example.com"),
        ("\"\"@example.com", "MAILER-DAEMON@example.com"),
        ("\"a@remote.org\"@example.com", "a@remote.org"),
        ("\"john doe%remote.org\"", "\"john doe\"@remote.org"),
        ("a%b%remote.org@example.com", "a%b@remote.org"),
    ];
    for (rcpt, want) in cases {
        assert_eq!(resolve_external(&p, rcpt).recipient, want, "{rcpt}");
    }
    let r = resolve(&p, "u@");
    assert_eq!(
        (r.class, dest(&r)),
        (
            AddressClass::Default,
            "error:5.1.3 bad address syntax".into()
        )
    );
    assert!(!r.is_auth_destination());
}

/// Each parameter switches its operator off; what is left in the local
/// part then counts as routed, so the address is still not authorized.
#[test]
fn rewrite_switches_leave_the_address_routed() {
    use AddressClass::*;
    let here = "local:mail.example.com";
    let mut p = params();
    p.rewrite.swap_bangpath = false;
    check_routes(&p, &[("foreign.example!relaytest", Local, here, true)]);
    let mut p = params();
    p.rewrite.allow_percent_hack = false;
    check_routes(
        &p,
        &[
            ("relaytest%foreign.example", Local, here, true),
            ("relaytest%foreign.example@example.com", Local, here, true),
        ],
    );
    let mut p = params();
    p.resolve_dequoted_address = false;
    check_routes(
        &p,
        &[
            ("\"relaytest@foreign.example\"", Local, here, true),
            (
                "\"relaytest@foreign.example\"@example.com",
                Local,
                here,
                true,
            ),
        ],
    );
    let mut p = params();
    p.rewrite.append_at_myorigin = false;
    p.rewrite.myorigin = "elsewhere.example".into();
    check_routes(&p, &[("jane", Local, here, false)]);
    p.rewrite.append_at_myorigin = true;
    check_routes(&p, &[("jane", Default, "smtp:elsewhere.example", false)]);
}

#[test]
fn dot_patterns_in_every_domain_list() {
    use AddressClass::*;
    let mut p = params();
    p.mydestination.push(".local.example".into());
    p.virtual_mailbox_domains.push(".vm.example".into());
    check_routes(
        &p,
        &[
            ("a@x.local.example", Local, "local:mail.example.com", false),
            ("a@local.example", Default, "smtp:local.example", false),
            (
                "a@x.vm.example",
                VirtualMailbox,
                "virtual:x.vm.example",
                false,
            ),
        ],
    );
}

#[test]
fn virtual_alias_domain_without_alias_bounces() {
    let r = resolve(&params(), "nobody@alias.example");
    assert_eq!(r.class, AddressClass::VirtualAlias);
    assert_eq!(dest(&r), "error:5.1.1 User unknown in virtual alias table");
    assert_eq!(
        r.error,
        Some((
            "5.1.1".to_string(),
            "User unknown in virtual alias table".to_string()
        ))
    );
}

#[test]
fn relayhost_for_relay_and_default_only() {
    let mut p = params();
    p.relayhost = "[smarthost.example]:587".into();
    let cases = [
        ("a@remote.org", "smtp:[smarthost.example]:587"),
        ("a@relay.example", "relay:[smarthost.example]:587"),
        ("a@mbox.example", "virtual:mbox.example"),
        ("a@example.com", "local:mail.example.com"),
    ];
    for (rcpt, want) in cases {
        assert_eq!(dest(&resolve(&p, rcpt)), want, "{rcpt}");
    }
}

#[test]
fn class_transport_with_and_without_nexthop() {
    let mut p = params();
    p.local_transport = "local".into();
    p.default_transport = "smtp:[outbound.example]".into();
    assert_eq!(dest(&resolve(&p, "a@example.com")), "local:example.com");
    assert_eq!(dest(&resolve(&p, "a")), "local:mail.example.com");
    assert_eq!(
        dest(&resolve(&p, "a@remote.org")),
        "smtp:[outbound.example]"
    );
}

#[test]
fn null_recipient_is_mailer_daemon() {
    let r = resolve(&params(), "");
    assert_eq!(r.recipient, "MAILER-DAEMON@mail.example.com");
    assert_eq!(r.class, AddressClass::Local);
    assert_eq!(dest(&r), "local:mail.example.com");
}

#[test]
fn dash_recipients_bounce_unless_allowed() {
    let mut p = params();
    let r = resolve(&p, "-oops@remote.org");
    assert_eq!(dest(&r), "error:5.1.3 bad address syntax");
    assert_eq!(
        r.error,
        Some(("5.1.3".to_string(), "bad address syntax".to_string()))
    );
    p.allow_min_user = true;
    assert_eq!(dest(&resolve(&p, "-oops@remote.org")), "smtp:remote.org");
}

fn with_transport(text: &str) -> ResolveParams {
    let mut p = params();
    p.recipient_delimiter = "+".into();
    p.transport_maps = vec![Table::parse(text, "/etc/sluice/transport").unwrap()];
    p
}

#[test]
fn transport_maps_search_order() {
    let p = with_transport(concat!(
        "jane+list@remote.org   smtp:[lists.example]\n",
        "jane@remote.org        smtp:[jane.example]\n",
        "remote.org             smtp:[domain.example]\n",
        ".remote.org            smtp:[parent.example]\n",
        ".org                   smtp:[tld.example]\n",
        "*                      smtp:[wild.example]\n",
    ));
    let cases = [
        ("jane+list@remote.org", "smtp:[lists.example]"),
        ("Jane+Other@Remote.org", "smtp:[jane.example]"),
        ("jane@remote.org", "smtp:[jane.example]"),
        ("bob@remote.org", "smtp:[domain.example]"),
        ("bob@a.b.remote.org", "smtp:[parent.example]"),
        ("bob@other.org", "smtp:[tld.example]"),
        ("bob@other.net", "smtp:[wild.example]"),
        // The table applies to every class but virtual alias.
        ("bob@relay.example", "smtp:[wild.example]"),
        ("bob@example.com", "smtp:[wild.example]"),
        (
            "bob@alias.example",
            "error:5.1.1 User unknown in virtual alias table",
        ),
    ];
    for (rcpt, want) in cases {
        assert_eq!(dest(&resolve(&p, rcpt)), want, "{rcpt}");
    }
}

#[test]
fn transport_entry_forms() {
    let p = with_transport(concat!(
        "keep.example      :\n",
        "hop.example       :[other.example]\n",
        "xport.example     relay:\n",
        "both.example      lmtp:unix:/run/lmtp\n",
        "dead.example      error:5.7.1 go away\n",
        "plain.example     error:mailbox disabled\n",
        "empty.example     error:\n",
        "later.example     retry:4.4.1 try later\n",
        "Upper.example     smtp:[MX.Upper.Example]\n",
    ));
    let cases = [
        ("a@keep.example", "smtp:keep.example", None),
        ("a@hop.example", "smtp:[other.example]", None),
        ("a@xport.example", "relay:xport.example", None),
        ("a@both.example", "lmtp:unix:/run/lmtp", None),
        (
            "a@dead.example",
            "error:5.7.1 go away",
            Some(("5.7.1", "go away")),
        ),
        (
            "a@plain.example",
            "error:mailbox disabled",
            Some(("5.0.0", "mailbox disabled")),
        ),
        (
            "a@empty.example",
            "error:Address is undeliverable",
            Some(("5.0.0", "Address is undeliverable")),
        ),
        ("a@later.example", "retry:4.4.1 try later", None),
        ("a@upper.example", "smtp:[MX.Upper.Example]", None),
    ];
    for (rcpt, want, error) in cases {
        let r = resolve(&p, rcpt);
        assert_eq!(dest(&r), want, "{rcpt}");
        let error = error.map(|(d, t)| (d.to_string(), t.to_string()));
        assert_eq!(r.error, error, "{rcpt}");
    }
}

#[test]
fn empty_transport_keeps_relayhost() {
    let mut p = with_transport("remote.org :\nhop.org :[x]\n");
    p.relayhost = "[smart]".into();
    assert_eq!(dest(&resolve(&p, "a@remote.org")), "smtp:[smart]");
    assert_eq!(dest(&resolve(&p, "a@hop.org")), "smtp:[x]");
}

#[test]
fn first_table_with_the_key_wins() {
    let mut p = with_transport("remote.org smtp:[first]\n");
    p.transport_maps
        .push(Table::parse("remote.org smtp:[second]\nother.org smtp:[second]\n", "t2").unwrap());
    assert_eq!(dest(&resolve(&p, "a@remote.org")), "smtp:[first]");
    assert_eq!(dest(&resolve(&p, "a@other.org")), "smtp:[second]");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any input resolves without panicking to a non-empty transport,
    /// and only the error transport carries an error.
    #[test]
    fn total(rcpt in "[-a-zA-Z0-9@.\"\\[\\]:+ ]{0,40}") {
        let p = with_transport("* :\n.org relay:\n");
        let r = resolve(&p, &rcpt);
        prop_assert!(!r.destination.transport.is_empty());
        prop_assert_eq!(r.error.is_some(), r.destination.transport == "error");
    }
}
