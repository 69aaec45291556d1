//! Whole-configuration tests: main.cf + master.cf → Config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_protocols::smtp::BareNewline;

use super::*;
use crate::smtpd_check::Restriction;

const MAIN: &str = "/etc/sluice/main.cf";
const MASTER: &str = "/etc/sluice/master.cf";

fn facts() -> HostFacts {
    HostFacts::for_tests()
}

fn build_with(main: &str, master: &str, facts: &HostFacts) -> Result<Config, ConfigError> {
    from_text(
        Path::new("/etc/sluice"),
        (main, Path::new(MAIN)),
        (master, Path::new(MASTER)),
        facts,
        Path::new("/run/here"),
    )
}

fn build(main: &str, master: &str) -> Result<Config, ConfigError> {
    build_with(main, master, &facts())
}

fn err(main: &str, master: &str) -> String {
    build(main, master).unwrap_err().to_string()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_golden() {
    let c = build("", DEFAULT_MASTER_CF).unwrap();
    let p = &c.params;
    assert_eq!(p.myhostname, "host.example.com");
    assert_eq!(p.mydomain, "example.com");
    assert_eq!(p.myorigin, "host.example.com");
    assert_eq!(p.mail_name, "Sluice");
    assert_eq!(
        p.mydestination,
        ["host.example.com", "localhost.example.com", "localhost"]
    );
    assert!(p.relay_domains.is_empty());
    // mynetworks_style = host: one /32 or /128 per interface address.
    let nets: Vec<String> = p.mynetworks.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "127.0.0.1/32",
            "192.0.2.10/32",
            "[::1]/128",
            "[2001:db8::10]/128"
        ]
    );
    assert_eq!(p.inet_interfaces, ["all"]);
    assert_eq!(p.queue_directory, PathBuf::from("/var/spool/sluice"));
    assert_eq!(p.data_directory, PathBuf::from("/var/lib/sluice"));
    assert_eq!(p.mail_owner, "postfix");
    assert_eq!(p.hopcount_limit, 50);
    assert_eq!(p.header_size_limit, 102_400);
    assert_eq!(p.sluice_shards, 4, "0 means one per online CPU");
    assert_eq!(p.sluice_segment_size, 64 << 20);
    assert!(!p.enable_long_queue_ids);
    assert!(!p.always_add_missing_headers);

    let s = &p.smtpd;
    assert_eq!(s.message_size_limit, 10_240_000);
    assert_eq!(s.smtpd_recipient_limit, 1000);
    assert_eq!(s.line_length_limit, 2048);
    assert_eq!(s.smtpd_timeout, Duration::from_secs(300));
    assert_eq!(s.smtpd_hard_error_limit, 20);
    assert_eq!(s.smtpd_soft_error_limit, 10);
    assert_eq!(s.smtpd_junk_command_limit, 100);
    assert_eq!(s.smtpd_error_sleep_time, Duration::from_secs(1));
    assert_eq!(s.smtpd_banner, "host.example.com ESMTP Sluice");
    assert_eq!(s.smtpd_forbid_bare_newline, BareNewline::Normalize);
    assert!(s.smtpd_forbid_unauth_pipelining);
    assert!(!s.disable_vrfy_command);
    assert_eq!(
        s.relay_restrictions,
        [
            Restriction::PermitMynetworks,
            Restriction::PermitSaslAuthenticated,
            Restriction::DeferUnauthDestination
        ]
    );
    assert!(s.recipient_restrictions.is_empty());
    assert_eq!(
        c.main
            .get("smtpd_forbid_bare_newline_exclusions")
            .as_deref(),
        Some("")
    );

    // `2525` on inet_interfaces = all: both wildcards.
    let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
    assert_eq!(addrs, [addr("0.0.0.0:2525"), addr("[::]:2525")]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn hostname_without_domain() {
    let mut f = facts();
    f.hostname = "box".into();
    let c = build_with("", DEFAULT_MASTER_CF, &f).unwrap();
    assert_eq!(c.params.myhostname, "box.localdomain");
    assert_eq!(c.params.mydomain, "localdomain");
    let c = build_with("mydomain = example.net\n", DEFAULT_MASTER_CF, &f).unwrap();
    assert_eq!(c.params.myhostname, "box.example.net");
    assert_eq!(c.params.mydomain, "example.net");
    let c = build_with("myhostname = mx.example.org\n", DEFAULT_MASTER_CF, &f).unwrap();
    assert_eq!(c.params.mydomain, "example.org");
    assert_eq!(
        c.main.default_raw("myhostname").as_deref(),
        Some("box.localdomain")
    );
}

#[test]
fn mynetworks_styles() {
    let table = [
        (
            "subnet",
            "127.0.0.0/8 192.0.2.0/24 [::1]/128 [2001:db8::]/64",
        ),
        (
            "class",
            "127.0.0.0/8 192.0.2.0/24 [::1]/128 [2001:db8::]/64",
        ),
        (
            "host",
            "127.0.0.1/32 192.0.2.10/32 [::1]/128 [2001:db8::10]/128",
        ),
    ];
    for (style, want) in table {
        let c = build(&format!("mynetworks_style = {style}\n"), DEFAULT_MASTER_CF).unwrap();
        assert_eq!(c.main.get("mynetworks").as_deref(), Some(want), "{style}");
    }
    let c = build(
        "inet_interfaces = 192.0.2.10\nmynetworks_style = subnet\n",
        DEFAULT_MASTER_CF,
    )
    .unwrap();
    assert_eq!(c.main.get("mynetworks").as_deref(), Some("192.0.2.0/24"));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].addr, addr("192.0.2.10:2525"));
    assert_eq!(
        err("mynetworks_style = wide\n", DEFAULT_MASTER_CF),
        "/etc/sluice/main.cf:1: bad mynetworks_style value; specify exactly one of host, subnet, class: mynetworks_style = wide"
    );
    // With mynetworks set, a bad style only warns.
    let c = build(
        "mynetworks_style = wide\nmynetworks = 10.0.0.0/8\n",
        DEFAULT_MASTER_CF,
    )
    .unwrap();
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn typed_values_with_units() {
    let c = build(
        concat!(
            "smtpd_timeout = 2m\n",
            "smtpd_error_sleep_time = 0\n",
            "maximal_queue_lifetime = 3\n",
            "minimal_backoff_time = 1h\n",
            "message_size_limit = 50000000\n",
            "sluice_segment_size = 128m\n",
            "sluice_shards = 2\n",
            "smtpd_forbid_bare_newline = reject\n",
            "disable_vrfy_command = YES\n",
            "enable_long_queue_ids = yes\n",
            "queue_directory = spool\n",
            "mydestination = Example.COM., $myhostname\n",
            "relay_domains = relay.example\n",
            "stress = yes\n",
        ),
        DEFAULT_MASTER_CF,
    )
    .unwrap();
    let p = &c.params;
    assert_eq!(p.smtpd.smtpd_timeout, Duration::from_secs(120));
    assert_eq!(p.smtpd.smtpd_error_sleep_time, Duration::ZERO);
    assert_eq!(p.smtpd.message_size_limit, 50_000_000);
    assert_eq!(p.smtpd.smtpd_hard_error_limit, 1, "stress mode default");
    assert_eq!(p.smtpd.smtpd_forbid_bare_newline, BareNewline::Reject);
    assert!(p.smtpd.disable_vrfy_command);
    assert_eq!(p.sluice_segment_size, 128 << 20);
    assert_eq!(p.sluice_shards, 2);
    assert!(p.enable_long_queue_ids);
    assert_eq!(p.queue_directory, PathBuf::from("/run/here/spool"));
    assert_eq!(p.mydestination, ["example.com", "host.example.com"]);
    assert_eq!(p.relay_domains, ["relay.example"]);
    assert_eq!(
        c.main.get_time("maximal_queue_lifetime").unwrap(),
        Duration::from_secs(3 * 86_400),
        "a bare number takes the default's unit (days)"
    );
    assert_eq!(
        c.main.get_time("minimal_backoff_time").unwrap(),
        Duration::from_secs(3600)
    );
    assert_eq!(c.main.get_int("qmgr_message_active_limit").unwrap(), 20_000);
}

#[test]
fn bad_values_name_file_and_line() {
    let table = [
        (
            "\nsmtpd_timeout = 10 minutes\n",
            "/etc/sluice/main.cf:2: bad time value or unit: smtpd_timeout = 10 minutes",
        ),
        (
            "message_size_limit = 10m\n",
            "/etc/sluice/main.cf:1: bad numerical configuration: message_size_limit = 10m",
        ),
        (
            "a = 1\ndisable_vrfy_command = maybe\n",
            "/etc/sluice/main.cf:2: bad boolean configuration: disable_vrfy_command = maybe",
        ),
        (
            "line_length_limit = 100\n",
            "/etc/sluice/main.cf:1: invalid line_length_limit parameter value 100 < 512: line_length_limit = 100",
        ),
        (
            "mynetworks = 10.1.2.3/8\n",
            "/etc/sluice/main.cf:1: mynetworks: non-null host address bits in \"10.1.2.3/8\", perhaps you should use \"10.0.0.0/8\" instead",
        ),
        (
            "relay_domains = hash:/etc/sluice/relay\n",
            "/etc/sluice/main.cf:1: relay_domains: \"hash:/etc/sluice/relay\": lookup tables, files and negation are not supported yet; list the domains themselves",
        ),
        (
            "smtpd_recipient_restrictions = permit_mynetworks, check_client_access hash:x\n",
            "/etc/sluice/main.cf:1: smtpd_recipient_restrictions: unknown smtpd restriction: \"check_client_access\"",
        ),
        (
            "smtpd_forbid_bare_newline = sometimes\n",
            "/etc/sluice/main.cf:1: bad value (use normalize, reject or no): smtpd_forbid_bare_newline = sometimes",
        ),
        (
            "my_thing = ${oops\n",
            "/etc/sluice/main.cf:1: parameter my_thing: truncated macro reference: \"${oops\"",
        ),
        (
            "inet_protocols = ipx\n",
            "/etc/sluice/main.cf:1: bad inet_protocols value: ipx",
        ),
        (
            "sluice_segment_size = 4k\n",
            "/etc/sluice/main.cf:1: too small (minimum 1m): sluice_segment_size = 4k",
        ),
    ];
    for (main, want) in table {
        assert_eq!(err(main, DEFAULT_MASTER_CF), want, "{main:?}");
    }
}

#[test]
fn unknown_parameters_warn() {
    let c = build(
        concat!(
            "mystery = 42\n",
            "my_banner_text = hello\n",
            "smtpd_banner = $myhostname $my_banner_text\n",
            "via_override = x\n",
            "nested = $deeper\n",
            "deeper = y\n",
            "smtpd_relay_restrictions = reject_unauth_destination\n",
        ),
        concat!(
            "2525 inet n - n - - smtpd -o smtpd_banner=$nested$via_override\n",
            "  -o bogus_option=1\n",
        ),
    )
    .unwrap();
    assert_eq!(
        c.warnings,
        [
            "/etc/sluice/main.cf: unused parameter: mystery=42",
            "/etc/sluice/master.cf: unused parameter: bogus_option=1",
        ]
    );
    assert_eq!(c.params.smtpd.smtpd_banner, "host.example.com hello");
    assert_eq!(c.listeners[0].smtpd.smtpd_banner, "yx");
}

#[test]
fn undefined_parameters_warn_once_each_and_expand_empty() {
    let c = build(
        concat!(
            "smtpd_banner = $myhostname ESMTP $no_such_thing\n",
            "myorigin = ${no_such_thing}$also_missing\n",
            "from_master = $set_in_master\n",
        ),
        concat!(
            "2525 inet n - n - - smtpd -o set_in_master=x\n",
            "  -o smtpd_banner=$missing_here\n",
        ),
    )
    .unwrap();
    let undefined: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("undefined parameter"))
        .collect();
    assert_eq!(
        undefined,
        [
            "/etc/sluice/main.cf: undefined parameter: no_such_thing",
            "/etc/sluice/main.cf: undefined parameter: also_missing",
            "/etc/sluice/master.cf: undefined parameter: missing_here",
        ]
    );
    assert_eq!(c.params.smtpd.smtpd_banner, "host.example.com ESMTP ");
}

#[test]
fn listener_overrides() {
    let c = build(
        "inet_interfaces = loopback-only\n",
        concat!(
            "smtp      inet  n       -       n       -       -       smtpd\n",
            "127.0.0.1:2525 inet n - n - - smtpd\n",
            "  -o smtpd_timeout=30\n",
            "  -o { smtpd_relay_restrictions = permit_mynetworks, reject }\n",
            "  -o message_size_limit=1000\n",
            "pickup    unix  n       -       n       60      1       pickup\n",
            "628       inet  n       -       n       -       -       qmqpd\n",
        ),
    )
    .unwrap();
    let got: Vec<(SocketAddr, &str, &str)> = c
        .listeners
        .iter()
        .map(|l| (l.addr, l.service.as_str(), l.command.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (addr("127.0.0.1:25"), "smtp", "smtpd"),
            (addr("[::1]:25"), "smtp", "smtpd"),
            (addr("127.0.0.1:2525"), "127.0.0.1:2525", "smtpd"),
        ]
    );
    assert_eq!(c.master.len(), 4);
    assert_eq!(
        c.warnings,
        ["/etc/sluice/master.cf:7: service 628/inet: command qmqpd is not implemented yet; not listening"]
    );
    let plain = &c.listeners[0].smtpd;
    assert_eq!(plain, &c.params.smtpd);
    let special = &c.listeners[2];
    assert_eq!(special.smtpd.smtpd_timeout, Duration::from_secs(30));
    assert_eq!(special.smtpd.message_size_limit, 1000);
    assert_eq!(
        special.smtpd.relay_restrictions,
        [Restriction::PermitMynetworks, Restriction::Reject]
    );
    assert_eq!(special.overrides.len(), 3);
    // main.cf itself is untouched by overrides.
    assert_eq!(c.main.get("smtpd_timeout").as_deref(), Some("300s"));
}

#[test]
fn listener_errors() {
    assert_eq!(
        err(
            "",
            "smtp inet n - n - - smtpd\n2525 inet n - n - - smtpd\n  -o smtpd_timeout=never\n"
        ),
        "/etc/sluice/master.cf:2: bad time value or unit: smtpd_timeout = never"
    );
    assert_eq!(
        err("", "25 inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n"),
        "/etc/sluice/master.cf:2: service smtp: address 0.0.0.0:25 is already used by service 25 at /etc/sluice/master.cf:1"
    );
    assert_eq!(
        err("", "nosuch inet n - n - - smtpd\n"),
        "/etc/sluice/master.cf:1: service nosuch: unknown service name: nosuch (use a port number)"
    );
}

#[test]
fn open_relay_refused() {
    assert_eq!(
        err(
            "smtpd_relay_restrictions = permit_mynetworks\n",
            DEFAULT_MASTER_CF
        ),
        format!("/etc/sluice/main.cf:1: {}", smtpd_check::RELAY_REQUIRED)
    );
    assert_eq!(
        smtpd_check::RELAY_REQUIRED,
        "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject or defer"
    );
    // A per-listener override can open it too; the error points there.
    assert_eq!(
        err(
            "",
            "2525 inet n - n - - smtpd -o smtpd_relay_restrictions=\n"
        ),
        format!("/etc/sluice/master.cf:1: {}", smtpd_check::RELAY_REQUIRED)
    );
    // Non-smtpd services are not subject to the rule.
    assert!(build("smtpd_relay_restrictions =\n", "628 inet n - n - - qmqpd\n").is_ok());
    // The recipient list may carry the rule instead.
    assert!(build(
        "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = permit_mynetworks reject_unauth_destination\n",
        DEFAULT_MASTER_CF
    )
    .is_ok());
}

#[test]
fn relay_context_from_params() {
    let c = build("relay_domains = relay.example\n", DEFAULT_MASTER_CF).unwrap();
    let p = &c.params;
    let (resolve, _) = crate::qmgr::resolve_params(&c.main, p).unwrap();
    let check = |client: &str, rcpt: &str| {
        let ctx = p.relay_context(client.parse().unwrap(), &resolve);
        smtpd_check::check_recipient(
            &p.smtpd.relay_restrictions,
            &p.smtpd.recipient_restrictions,
            &ctx,
            "s@example.net",
            rcpt,
        )
        .map_err(|r| r.to_wire_string())
    };
    assert_eq!(check("192.0.2.10", "a@far.example"), Ok(()));
    assert_eq!(check("203.0.113.5", "a@host.example.com"), Ok(()));
    assert_eq!(check("203.0.113.5", "a@sub.relay.example"), Ok(()));
    assert_eq!(
        check("203.0.113.5", "a@far.example"),
        Err("454 4.7.1 <a@far.example>: Relay access denied".to_string())
    );
    // The standard form's switches reach the relay check.
    assert_eq!(
        check("203.0.113.5", "far.example!a"),
        Err("454 4.7.1 <far.example!a>: Relay access denied".to_string())
    );
    let c = build("swap_bangpath = no\n", DEFAULT_MASTER_CF).unwrap();
    let (resolve, _) = crate::qmgr::resolve_params(&c.main, &c.params).unwrap();
    assert!(!resolve.rewrite.swap_bangpath);
    assert!(resolve.rewrite.allow_percent_hack && resolve.rewrite.append_at_myorigin);
    assert!(resolve.resolve_dequoted_address);
    let ctx = c
        .params
        .relay_context("203.0.113.5".parse().unwrap(), &resolve);
    assert!(!smtpd_check::is_auth_destination(&ctx, "far.example!a"));
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("sluice-config-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn embedded_default() {
    let dir = TempDir::new("embedded");
    let c = load_with(&dir.0, &facts()).unwrap();
    assert!(c.embedded && c.master_embedded);
    assert_eq!(c.config_dir, dir.0);
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(c.params.queue_directory, cwd.join("sluice-queue"));
    assert_eq!(c.params.inet_interfaces, ["loopback-only"]);
    let nets: Vec<String> = c.params.mynetworks.iter().map(|n| n.to_string()).collect();
    assert_eq!(nets, ["127.0.0.0/8", "[::1]/128"]);
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].addr, addr("127.0.0.1:2525"));
    assert_eq!(c.listeners[0].command, "smtpd");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.main.raw("queue_directory").unwrap().origin.to_string(),
        "(built-in main.cf):3"
    );
    assert_eq!(
        c.main.get("config_directory").as_deref(),
        Some(dir.0.to_str().unwrap())
    );
}

#[test]
fn real_main_cf_without_master_cf() {
    let dir = TempDir::new("nomaster");
    std::fs::write(
        dir.0.join("main.cf"),
        "inet_interfaces = 127.0.0.1\nqueue_directory = /tmp/q\n",
    )
    .unwrap();
    let c = load_with(&dir.0, &facts()).unwrap();
    assert!(!c.embedded && c.master_embedded);
    assert_eq!(c.params.queue_directory, PathBuf::from("/tmp/q"));
    let addrs: Vec<SocketAddr> = c.listeners.iter().map(|l| l.addr).collect();
    assert_eq!(addrs, [addr("127.0.0.1:2525")]);
    assert_eq!(
        c.main.raw("queue_directory").unwrap().origin.to_string(),
        format!("{}:2", dir.0.join("main.cf").display())
    );

    std::fs::write(dir.0.join("master.cf"), "2626 inet n - n - - smtpd\n").unwrap();
    let c = load_with(&dir.0, &facts()).unwrap();
    assert!(!c.master_embedded);
    assert_eq!(c.listeners[0].addr, addr("127.0.0.1:2626"));
}

#[test]
fn unreadable_main_cf_is_an_io_error() {
    let dir = TempDir::new("io");
    std::fs::create_dir(dir.0.join("main.cf")).unwrap();
    let e = load_with(&dir.0, &facts()).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }), "{e}");
    assert!(e
        .to_string()
        .starts_with(&format!("{}: ", dir.0.join("main.cf").display())));
}

#[test]
fn load_probes_this_machine() {
    let dir = TempDir::new("probe");
    let c = load(&dir.0).unwrap();
    assert!(c.params.myhostname.contains('.'));
    assert!(c.params.sluice_shards >= 1);
}

#[test]
fn sasl_backends_are_checked_at_load() {
    use crate::sasl::SaslBackend;
    let svc = "127.0.0.1:2525 inet n - n - - smtpd\n";
    let on = |opts: &str| format!("{svc}  -o smtpd_sasl_auth_enable=yes\n{opts}");
    // Postfix's default type (cyrus) does not exist here.
    let e = err("", &on(""));
    assert!(
        e.contains("SASL type \"cyrus\" is not available: use dovecot"),
        "{e}"
    );
    let e = err(
        "",
        &on("  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path=inet:127.0.0.1:12345\n"),
    );
    assert!(e.contains("inet: sockets are not supported"), "{e}");
    let e = err("", &on("  -o smtpd_sasl_type=sluice\n"));
    assert!(e.contains("needs a password file"), "{e}");
    let e = err(
        "",
        &on("  -o smtpd_sasl_type=sluice\n  -o sluice_sasl_password_file=/nonexistent/pw\n"),
    );
    assert!(e.contains("/nonexistent/pw: No such file"), "{e}");
    // A relative Dovecot path is under queue_directory, as in Postfix.
    let c = build(
        "queue_directory = /var/spool/sluice\n",
        &on("  -o smtpd_sasl_type=dovecot\n  -o smtpd_sasl_path=private/auth\n"),
    )
    .unwrap();
    let sasl = &c.listeners[0].smtpd.sasl;
    assert!(sasl.auth_enable && !c.listeners[0].smtpd.tls.auth_only);
    assert_eq!(
        sasl.backend,
        Some(SaslBackend::Dovecot {
            socket: PathBuf::from("/var/spool/sluice/private/auth")
        })
    );
    // Off by default: the type is not checked, nothing is offered.
    let c = build("", svc).unwrap();
    assert_eq!(c.listeners[0].smtpd.sasl.backend, None);
    assert!(!c.listeners[0].smtpd.sasl.auth_enable);
    // Only noanonymous is honoured; anything else is refused.
    let c = build(
        "smtpd_sasl_security_options = noanonymous, noplaintext\n",
        svc,
    )
    .unwrap();
    assert!(
        c.refusals
            .iter()
            .any(|r| r.to_string().contains("smtpd_sasl_security_options")),
        "{:?}",
        c.refusals
    );
}

/// master.cf.dist's submission services set
/// `local_header_rewrite_clients=static:all`; forms Sluice cannot match
/// are refused at load rather than matching nobody.
#[test]
fn local_header_rewrite_clients_per_listener() {
    let c = build(
        "",
        "127.0.0.1:2525 inet n - n - - smtpd\n\
         127.0.0.1:2587 inet n - n - - smtpd -o local_header_rewrite_clients=static:all\n\
         127.0.0.1:2588 inet n - n - - smtpd\n  \
         -o local_header_rewrite_clients=permit_mynetworks,permit_sasl_authenticated\n",
    )
    .unwrap();
    let default = HeaderRewriteClients {
        inet_interfaces: true,
        ..Default::default()
    };
    assert_eq!(c.listeners[0].smtpd.header_rewrite_clients, default);
    assert!(c.listeners[1].smtpd.header_rewrite_clients.all);
    let both = c.listeners[2].smtpd.header_rewrite_clients;
    assert!(both.mynetworks && both.sasl_authenticated && !both.inet_interfaces);
    assert_eq!(
        err(
            "local_header_rewrite_clients = permit_tls_clientcerts\n",
            ""
        ),
        "/etc/sluice/main.cf:1: Sluice implements static:all, permit_inet_interfaces, \
         permit_mynetworks and permit_sasl_authenticated only: \
         local_header_rewrite_clients = permit_tls_clientcerts"
    );
}
