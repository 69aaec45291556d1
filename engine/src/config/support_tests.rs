//! Honest configuration: the registry's statuses, the warnings and
//! refusals load derives from them, and the README's parameter lists.

use std::collections::BTreeMap;
use std::path::Path;

use super::maincf::read_log;
use super::*;

const MAIN: &str = "/etc/sluice/main.cf";
const MASTER: &str = "/etc/sluice/master.cf";

fn build(main: &str, master: &str) -> Config {
    from_text(
        Path::new("/etc/sluice"),
        (main, Path::new(MAIN)),
        (master, Path::new(MASTER)),
        &HostFacts::for_tests(),
        Path::new("/run/here"),
    )
    .expect("loads: refusals are collected, not load errors")
}

fn refusals(c: &Config) -> Vec<String> {
    c.refusals.iter().map(|r| r.to_string()).collect()
}

fn not_implemented(c: &Config) -> Vec<&str> {
    c.warnings
        .iter()
        .map(String::as_str)
        .filter(|w| w.contains(": parameter "))
        .collect()
}

const LISTENER: &str = "127.0.0.1:2525 inet n - n - - smtpd\n";

#[test]
fn main_cf_settings_warn_or_refuse_with_file_and_line() {
    let c = build(
        concat!(
            "myhostname = mx.example.com\n",
            "header_checks = regexp:/etc/sluice/header_checks\n",
            "syslog_name = postfix\n",
            "soft_bounce = no\n",
            "alias_maps = hash:/etc/aliases\n",
            "smtpd_client_restrictions = reject\n",
            "smtpd_tls_security_level = none\n",
            "smtp_tls_security_level = may\n",
        ),
        LISTENER,
    );
    assert_eq!(
        refusals(&c),
        [
            "/etc/sluice/main.cf:2: parameter header_checks is not implemented yet; refusing to run without it (header and body checks are not implemented: content would pass uninspected)",
            "/etc/sluice/main.cf:6: parameter smtpd_client_restrictions is not implemented yet; refusing to run without it (only smtpd_relay_restrictions and smtpd_recipient_restrictions are enforced)",
        ]
    );
    // Defaults written out (soft_bounce = no, alias_maps, level none) say
    // nothing.
    assert_eq!(
        not_implemented(&c),
        ["/etc/sluice/main.cf:3: parameter syslog_name is not implemented; it has no effect (Sluice logs to queue_directory/maillog)"]
    );
    let err = c.runnable().unwrap_err().to_string();
    assert!(
        err.starts_with("/etc/sluice/main.cf:2: parameter header_checks"),
        "{err}"
    );
    assert!(build("syslog_name = x\n", LISTENER).runnable().is_ok());
}

#[test]
fn values_are_compared_after_expansion_and_conversion() {
    let c = build(
        concat!(
            "off = no\n",
            "soft_bounce = $off\n",
            "fast_flush_purge_time = 7\n",
            "maillog_file =\n",
            "empty =\n",
            "smtpd_helo_restrictions = $empty\n",
        ),
        LISTENER,
    );
    assert!(c.refusals.is_empty(), "{:?}", c.refusals);
    assert!(not_implemented(&c).is_empty(), "{:?}", c.warnings);
    let c = build("on = yes\nsoft_bounce = $on\n", LISTENER);
    assert_eq!(c.refusals.len(), 1);
    assert!(c.refusals[0]
        .to_string()
        .starts_with("/etc/sluice/main.cf:2: parameter soft_bounce"));
}

/// The example: a submission service with TLS and SASL used to
/// pass `sluice check` and serve plaintext. TLS and SASL are implemented
/// now; what the listener still asks for and Sluice lacks is refused.
#[test]
fn submission_refuses_what_is_still_missing() {
    let c = build(
        "",
        concat!(
            "127.0.0.1:2525 inet n - n - - smtpd\n",
            "# submission\n",
            "127.0.0.1:2587 inet n - n - - smtpd\n",
            "  -o syslog_name=postfix/submission\n",
            "  -o smtpd_sasl_auth_enable=yes\n",
            "  -o smtpd_sasl_type=dovecot\n",
            "  -o smtpd_sasl_path=private/auth\n",
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n",
            "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n",
        ),
    );
    let svc = "/etc/sluice/master.cf:3: service 127.0.0.1:2587/inet";
    assert_eq!(
        refusals(&c),
        [
            format!("{svc}: parameter smtpd_client_restrictions is not implemented yet; refusing to run without it (only smtpd_relay_restrictions and smtpd_recipient_restrictions are enforced)"),
        ]
    );
    assert_eq!(
        not_implemented(&c),
        [format!("{svc}: parameter syslog_name is not implemented; it has no effect (Sluice logs to queue_directory/maillog)")]
    );
}

/// A TLS level without a certificate, or wrapper mode without TLS, is a
/// load error: the listener would otherwise serve plaintext.
#[test]
fn tls_without_a_certificate_is_an_error() {
    for (overrides, want) in [
        (
            "-o smtpd_tls_security_level=encrypt",
            "/etc/sluice/master.cf:1: TLS needs a certificate: set smtpd_tls_chain_files or smtpd_tls_cert_file: smtpd_tls_security_level = encrypt",
        ),
        (
            "-o smtpd_use_tls=yes",
            "/etc/sluice/master.cf:1: TLS needs a certificate: set smtpd_tls_chain_files or smtpd_tls_cert_file: smtpd_use_tls = yes",
        ),
        (
            "-o smtpd_tls_wrappermode=yes",
            "/etc/sluice/master.cf:1: TLS needs a certificate: set smtpd_tls_chain_files or smtpd_tls_cert_file: smtpd_tls_wrappermode = yes",
        ),
        (
            "-o smtpd_tls_security_level=encrypt -o smtpd_tls_cert_file=/nonexistent/cert.pem",
            "/etc/sluice/master.cf:1: /nonexistent/cert.pem: cannot read: No such file or directory (os error 2)",
        ),
        (
            "-o smtpd_tls_mandatory_protocols=<=TLSv1.1",
            "/etc/sluice/master.cf:1: smtpd_tls_mandatory_protocols: allows neither TLSv1.2 nor TLSv1.3, the only versions Sluice speaks",
        ),
    ] {
        let master = format!("127.0.0.1:2525 inet n - n - - smtpd {overrides}\n");
        let err = from_text(
            Path::new("/etc/sluice"),
            ("", Path::new(MAIN)),
            (&master, Path::new(MASTER)),
            &HostFacts::for_tests(),
            Path::new("/run/here"),
        )
        .expect_err(overrides);
        assert_eq!(err.to_string(), want, "{overrides}");
    }
}

#[test]
fn overrides_of_instance_parameters() {
    let c = build(
        "mynetworks = 127.0.0.0/8\n",
        concat!(
            "127.0.0.1:2525 inet n - n - - smtpd\n",
            "  -o message_size_limit=1000 -o mynetworks=127.0.0.0/8\n",
            "127.0.0.1:10025 inet n - n - - smtpd -o mynetworks=127.0.0.1/32\n",
            "relay unix - - n - - smtp\n",
            "  -o smtp_helo_name=relay.example -o message_size_limit=1000\n",
            "  -o smtp_connect_timeout=10s\n",
            "628 inet n - n - - qmqpd -o header_checks=regexp:/x\n",
        ),
    );
    // -o mynetworks equal to main.cf's is fine; a different one would be
    // ignored, so it is refused. A service that does not run is skipped.
    assert_eq!(
        refusals(&c),
        ["/etc/sluice/master.cf:3: service 127.0.0.1:10025/inet: parameter mynetworks cannot be set per service yet; refusing to run with main.cf's value in its place (it decides who may relay or where mail goes)"]
    );
    assert_eq!(
        not_implemented(&c),
        [
            "/etc/sluice/master.cf:4: service relay/unix: parameter smtp_helo_name cannot be set per service yet; main.cf's value is used",
            "/etc/sluice/master.cf:4: service relay/unix: parameter message_size_limit applies to smtpd services only; it has no effect here",
            "/etc/sluice/master.cf:4: service relay/unix: parameter smtp_connect_timeout cannot be set per service yet; main.cf's value is used",
        ]
    );
}

/// A transport that asks for mandatory TLS or AUTH by -o would get main.cf's
/// (opportunistic) settings: refused, not warned about.
#[test]
fn per_transport_tls_and_sasl_overrides_are_refused() {
    let c = build(
        "",
        concat!(
            "127.0.0.1:2525 inet n - n - - smtpd\n",
            "relay unix - - n - - smtp -o smtp_tls_security_level=encrypt\n",
            "  -o smtp_sasl_auth_enable=yes -o smtp_tls_loglevel=1\n",
        ),
    );
    assert_eq!(
        refusals(&c),
        [
            "/etc/sluice/master.cf:2: service relay/unix: parameter smtp_tls_security_level cannot be set per service yet; refusing to run with main.cf's value in its place (it decides who may relay or where mail goes)",
            "/etc/sluice/master.cf:2: service relay/unix: parameter smtp_sasl_auth_enable cannot be set per service yet; refusing to run with main.cf's value in its place (it decides who may relay or where mail goes)",
        ]
    );
    assert_eq!(
        not_implemented(&c),
        ["/etc/sluice/master.cf:2: service relay/unix: parameter smtp_tls_loglevel cannot be set per service yet; main.cf's value is used"]
    );
}

/// Setting virtual_alias_maps used to make its domains bounce every
/// recipient after accepting it (virtual alias expansion does not exist
/// yet): now the daemon does not run with it.
#[test]
fn virtual_alias_and_mailbox_domains_are_refused() {
    for (line, name) in [
        (
            "virtual_alias_maps = hash:/etc/sluice/virtual\n",
            "virtual_alias_maps",
        ),
        (
            "virtual_alias_domains = example.net\n",
            "virtual_alias_domains",
        ),
        ("virtual_maps = hash:/etc/sluice/virtual\n", "virtual_maps"),
        (
            "virtual_mailbox_domains = example.net\n",
            "virtual_mailbox_domains",
        ),
    ] {
        let c = build(line, LISTENER);
        let got = refusals(&c);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(&format!(
                "/etc/sluice/main.cf:1: parameter {name} is not implemented yet"
            )),
            "{got:?}"
        );
        assert!(c.runnable().is_err());
    }
}

#[test]
fn every_not_implemented_entry_says_why() {
    for p in PARAMS {
        if let Status::Ignored(why) | Status::Refused(why) = p.status {
            assert!(why.len() > 10 && !why.ends_with('.'), "{}: {why:?}", p.name);
        }
    }
    let count = |f: fn(Status) -> bool| PARAMS.iter().filter(|p| f(p.status)).count();
    assert!(count(|s| matches!(s, Status::Refused(_))) >= 30);
    assert!(count(Status::is_implemented) >= 80);
}

/// Read by the command-line tools, not by the daemon's load.
const READ_BY_TOOLS: &[&str] = &[
    "alternate_config_directories", // postdrop
    "authorized_submit_users",      // sendmail
    "hash_queue_depth",             // postcat
    "hash_queue_names",             // postcat
];

/// Read at load but not (fully) implemented: reading is not using.
const READ_NOT_IMPLEMENTED: &[&str] = &[
    "data_directory",        // a typed path that nothing uses yet
    "enable_long_queue_ids", // typed, but queue IDs are always long
    // For the "unused parameter" warning: class names are in use.
    "smtpd_restriction_classes",
    // The resolver classifies these domains; alias expansion and
    // virtual delivery do not exist, so setting them is refused.
    "virtual_alias_domains",
    "virtual_alias_maps",
    "virtual_mailbox_domains",
    "virtual_mailbox_maps",
    "virtual_maps",
];

/// Every Implemented parameter is read when the daemon builds its running
/// configuration (the typed config, the listeners, the delivery services),
/// typed or through another's `$name`; and a not-implemented one is not,
/// unless listed above. Reads are recorded where every read passes
/// (`MainCf::raw_value`), so this holds whatever the reader's shape.
#[test]
fn implemented_means_read_and_read_means_implemented() {
    read_log::start();
    let c = build(
        "",
        concat!(
            "127.0.0.1:2525 inet n - n - - smtpd\n",
            "smtp unix - - n - - smtp\n",
            "relay unix - - n - - smtp\n",
        ),
    );
    let mut warnings = Vec::new();
    crate::services::ServiceParams::from_config(&c, 1, &mut warnings).unwrap();
    let read = read_log::take();
    for p in PARAMS {
        let was_read = read.contains(p.name);
        if p.status.is_implemented() && !READ_BY_TOOLS.contains(&p.name) {
            assert!(
                was_read,
                "{} is marked implemented but nothing reads it",
                p.name
            );
        }
        if !p.status.is_implemented() && !READ_NOT_IMPLEMENTED.contains(&p.name) {
            assert!(
                !was_read,
                "{} is read at load but marked {:?}: implemented now?",
                p.name, p.status
            );
        }
    }
}

/// The README's lists of parameters, from the registry.
fn readme_lists() -> String {
    let names = |f: &dyn Fn(Status) -> bool| {
        PARAMS
            .iter()
            .filter(|p| f(p.status))
            .map(|p| format!("`{}`", p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by_reason = |refused: bool| {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for p in PARAMS {
            match (p.status, refused) {
                (Status::Ignored(why), false) | (Status::Refused(why), true) => {
                    groups.entry(why).or_default().push(format!("`{}`", p.name));
                }
                _ => {}
            }
        }
        let mut lines: Vec<String> = groups
            .into_iter()
            .map(|(why, names)| format!("- {}: {why}.\n", names.join(", ")))
            .collect();
        lines.sort();
        lines.concat()
    };
    format!(
        "Implemented, for the whole instance: {}.\n\n\
         Implemented, and a master.cf `-o` on an smtpd service applies to it: {}.\n\n\
         Of the instance-wide ones, these are refused in a master.cf `-o` \
         (a per-service value would be ignored, and it decides who may relay \
         or where mail goes); the others are a warning there: {}.\n\n\
         Not implemented; setting one to something other than its default \
         is a warning at every start and in `sluice check`:\n\n{}\n\
         Not implemented, and running without it would weaken security or \
         change where mail goes; setting one to something other than its \
         default makes `sluice check`, `start` and `reload` fail, naming the \
         file and line:\n\n{}",
        names(&|s| matches!(s, Status::Instance | Status::Guarded)),
        names(&|s| s == Status::Listener),
        names(&|s| s == Status::Guarded),
        by_reason(false),
        by_reason(true),
    )
}

const BEGIN: &str =
    "<!-- parameters: generated from engine/src/config/params.rs; checked by a test -->\n";
const END: &str = "<!-- end of parameters -->";

/// The README's parameter section is the registry's: a new entry, or a
/// changed status, fails here until the README says so. Run with
/// `SLUICE_BLESS_README=1` to rewrite the section.
#[test]
fn readme_lists_match_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README has the generated section")
        + BEGIN.len();
    let end = start + readme[start..].find(END).expect("README section ends");
    let want = readme_lists();
    if std::env::var_os("SLUICE_BLESS_README").is_some() {
        let text = format!("{}{want}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README.md's parameter lists differ from the registry; run \
         SLUICE_BLESS_README=1 cargo test -p sluice-engine readme_lists, or paste:\n{want}"
    );
}
