//! The parameter registry (name → Postfix default) and the parsers for
//! typed values: times with units, integers, sizes, booleans and lists.
//!
//! Defaults are raw strings exactly as `postconf -d` shows them, so they may
//! refer to other parameters (`$myhostname`). Three defaults depend on the
//! machine (myhostname, mydomain, mynetworks) and are computed at load; see
//! `maincf::MainCf::new`.

use std::time::Duration;

/// How a parameter's value is read. Used to validate values at load and to
/// pick the default time unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// A time; the char is the unit of a bare number (Postfix takes it from
    /// the default value's suffix: `maximal_queue_lifetime = 5` is 5 days).
    Time(char),
    /// A byte count with optional k/m/g suffix (Sluice-specific parameters).
    Size,
    List,
}

/// Whether Sluice implements a parameter, and what setting it does.
///
/// Load checks every parameter that main.cf or a master.cf `-o` sets to a
/// value other than its default (see `support::check`): a not-implemented
/// one is a warning, or a refusal to run when running without it would
/// weaken security or change where mail goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Implemented for the whole instance. A master.cf `-o` that changes
    /// it is a warning (main.cf's value is used for every service).
    Instance,
    /// Implemented for the whole instance, and a per-service value would
    /// change who may relay or where mail goes: a `-o` that changes it is
    /// refused.
    Guarded,
    /// Implemented per smtpd listener: a `-o` on an smtpd service applies
    /// to that service (see `SmtpdParams`).
    Listener,
    /// Not implemented; what Sluice does instead. Setting it is a warning.
    Ignored(&'static str),
    /// Not implemented, and running without it would weaken security or
    /// change where mail goes; what is missing. Setting it is refused.
    Refused(&'static str),
}

impl Status {
    pub fn is_implemented(self) -> bool {
        matches!(self, Status::Instance | Status::Guarded | Status::Listener)
    }
}

/// One registered parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    /// Postfix's default (raw, unexpanded). Empty for the computed defaults
    /// (myhostname, mydomain, mynetworks).
    pub default: &'static str,
    pub kind: Kind,
    pub status: Status,
}

const fn p(name: &'static str, default: &'static str, kind: Kind, status: Status) -> Param {
    Param {
        name,
        default,
        kind,
        status,
    }
}

use Kind::{Bool, Int, List, Size, Str, Time};
use Status::{Ignored, Refused};

// Short names for the table. A new entry is one line:
// `p(name, Postfix default, kind, status)`; shared reasons are below.
const INSTANCE: Status = Status::Instance;
const GUARDED: Status = Status::Guarded;
const LISTENER: Status = Status::Listener;
const BCC: Status = Refused("automatic BCC is not implemented: the copy would not be sent");
const CONTENT: Status =
    Refused("header and body checks are not implemented: content would pass uninspected");
const DIRECTORY: Status = Ignored("Sluice keeps nothing there");
const FAST_FLUSH: Status =
    Ignored("fast flush is not implemented; postqueue -s flushes a site's deferred mail");
const LOCAL: Status = Ignored("local delivery is not implemented; local mail stays deferred");
const MILTER: Status = Refused("milters are not implemented: mail would skip them");
const NOTIFY: Status = Ignored("no notices are sent to the postmaster");
const QMGR_TUNING: Status = Ignored("Sluice's queue manager does not use it");
const QMQP: Status = Ignored("QMQP is not implemented");
const RATE_DELAY: Status = Ignored("delivery rate delays are not implemented");
const RESTRICTIONS: Status =
    Refused("only smtpd_relay_restrictions and smtpd_recipient_restrictions are enforced");
const REWRITE: Status =
    Refused("address rewriting by tables is not implemented: addresses would stay as they are");
const SYSLOG: Status = Ignored("Sluice logs to queue_directory/maillog");
const TLS_DETAIL: Status = Ignored("TLS is not implemented yet");
const VIRTUAL_ALIAS: Status = Refused(
    "virtual alias expansion is not implemented: every recipient in those domains would bounce",
);
const VIRTUAL_MAILBOX: Status =
    Refused("virtual mailbox delivery is not implemented: that mail would stay deferred");

/// Every parameter Sluice knows, sorted by name (binary search).
/// Defaults are Postfix 3.x's, except where marked "Sluice:".
pub static PARAMS: &[Param] = &[
    p("alias_database", "hash:/etc/aliases", List, LOCAL),
    p("alias_maps", "hash:/etc/aliases", List, LOCAL),
    p("allow_mail_to_commands", "alias, forward", List, LOCAL),
    p("allow_mail_to_files", "alias, forward", List, LOCAL),
    p("allow_min_user", "no", Bool, INSTANCE),
    p("allow_percent_hack", "yes", Bool, INSTANCE),
    // Config directories a setgid program (postdrop) may be pointed at.
    p("alternate_config_directories", "", List, INSTANCE),
    p("always_add_missing_headers", "no", Bool, INSTANCE),
    p("always_bcc", "", Str, BCC),
    p("anvil_rate_time_unit", "60s", Time('s'), INSTANCE),
    p("append_at_myorigin", "yes", Bool, INSTANCE),
    p("append_dot_mydomain", "no", Bool, Refused("Sluice never appends .$mydomain to an address (as with no)")),
    p("authorized_flush_users", "static:anyone", List, INSTANCE),
    p("authorized_mailq_users", "static:anyone", List, INSTANCE),
    p("authorized_submit_users", "static:anyone", List, INSTANCE),
    p("biff", "yes", Bool, LOCAL),
    p("body_checks", "", List, CONTENT),
    p("bounce_notice_recipient", "postmaster", Str, NOTIFY),
    p("bounce_queue_lifetime", "5d", Time('d'), INSTANCE),
    p("bounce_size_limit", "50000", Int, INSTANCE),
    p("broken_sasl_auth_clients", "no", Bool, Ignored("AUTH is announced only in RFC 4954 form (no AUTH= line for pre-standard clients)")),
    p("canonical_maps", "", List, REWRITE),
    p("command_directory", "/usr/sbin", Str, DIRECTORY),
    // Sluice: always behaves as Postfix does at this level.
    p("compatibility_level", "3.6", Str, Ignored("Sluice always has the defaults of compatibility level 3.6")),
    // The directory actually loaded replaces this at load.
    p("config_directory", "/etc/sluice", Str, Ignored("the directory is the one given with -c or $MAIL_CONFIG")),
    p("content_filter", "", Str, Refused("content filters are not implemented: mail would skip the filter")),
    p("daemon_directory", "/usr/libexec/sluice", Str, DIRECTORY),
    // Sluice: /var/lib/postfix in Postfix.
    p("data_directory", "/var/lib/sluice", Str, DIRECTORY),
    p("default_delivery_slot_cost", "5", Int, QMGR_TUNING),
    p("default_delivery_slot_discount", "50", Int, QMGR_TUNING),
    p("default_delivery_slot_loan", "3", Int, QMGR_TUNING),
    p("default_destination_concurrency_failed_cohort_limit", "1", Int, INSTANCE),
    p("default_destination_concurrency_limit", "20", Int, INSTANCE),
    p("default_destination_concurrency_negative_feedback", "1", Str, INSTANCE),
    p("default_destination_concurrency_positive_feedback", "1", Str, INSTANCE),
    p("default_destination_rate_delay", "0s", Time('s'), RATE_DELAY),
    p("default_destination_recipient_limit", "50", Int, INSTANCE),
    p("default_minimum_delivery_slots", "3", Int, QMGR_TUNING),
    p("default_process_limit", "100", Int, INSTANCE),
    p("default_recipient_limit", "20000", Int, QMGR_TUNING),
    p("default_recipient_refill_delay", "5s", Time('s'), QMGR_TUNING),
    p("default_recipient_refill_limit", "100", Int, QMGR_TUNING),
    p("default_transport", "smtp", Str, GUARDED),
    p("default_transport_rate_delay", "0s", Time('s'), RATE_DELAY),
    p("defer_transports", "", List, INSTANCE),
    p("delay_warning_time", "0h", Time('h'), INSTANCE),
    p("disable_vrfy_command", "no", Bool, LISTENER),
    p("double_bounce_sender", "double-bounce", Str, Ignored("undeliverable bounces are not sent to it")),
    p("empty_address_recipient", "MAILER-DAEMON", Str, INSTANCE),
    p("enable_long_queue_ids", "no", Bool, Ignored("queue IDs are always long, as with yes")),
    p("fast_flush_domains", "$relay_domains", List, FAST_FLUSH),
    p("fast_flush_purge_time", "7d", Time('d'), FAST_FLUSH),
    p("fast_flush_refresh_time", "12h", Time('h'), FAST_FLUSH),
    p("hash_queue_depth", "1", Int, INSTANCE),
    p("hash_queue_names", "deferred, defer", List, INSTANCE),
    p("header_checks", "", List, CONTENT),
    p("header_size_limit", "102400", Int, INSTANCE),
    p("hopcount_limit", "50", Int, INSTANCE),
    p("inet_interfaces", "all", List, GUARDED),
    p("inet_protocols", "all", List, INSTANCE),
    p("initial_destination_concurrency", "5", Int, INSTANCE),
    p("line_length_limit", "2048", Int, LISTENER),
    p("lmtp_connect_timeout", "0s", Time('s'), Ignored("LMTP is not implemented")),
    p("local_header_rewrite_clients", "permit_inet_interfaces", List, LISTENER),
    p("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps", List, LOCAL),
    p("local_transport", "local:$myhostname", Str, GUARDED),
    p("mail_name", "Sluice", Str, INSTANCE),
    p("mail_owner", "postfix", Str, INSTANCE),
    p("mailbox_size_limit", "51200000", Int, LOCAL),
    p("maillog_file", "", Str, SYSLOG),
    p("masquerade_classes", "envelope_sender, header_sender, header_recipient", List, Ignored("masquerading is not implemented")),
    p("masquerade_domains", "", List, REWRITE),
    p("maximal_backoff_time", "4000s", Time('s'), INSTANCE),
    p("maximal_queue_lifetime", "5d", Time('d'), INSTANCE),
    p("message_size_limit", "10240000", Int, LISTENER),
    p("milter_default_action", "tempfail", Str, Ignored("milters are not implemented")),
    p("milter_macro_daemon_name", "$myhostname", Str, Ignored("milters are not implemented")),
    p("mime_header_checks", "$header_checks", List, CONTENT),
    p("minimal_backoff_time", "300s", Time('s'), INSTANCE),
    p("mydestination", "$myhostname, localhost.$mydomain, localhost", List, GUARDED),
    p("mydomain", "", Str, INSTANCE),
    p("myhostname", "", Str, INSTANCE),
    p("mynetworks", "", List, GUARDED),
    p("mynetworks_style", "host", Str, GUARDED),
    p("myorigin", "$myhostname", Str, INSTANCE),
    p("nested_header_checks", "$header_checks", List, CONTENT),
    p("non_smtpd_milters", "", List, MILTER),
    p("notify_classes", "resource, software", List, NOTIFY),
    p("parent_domain_matches_subdomains", "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps", List, INSTANCE),
    p("proxy_interfaces", "", List, Ignored("proxy addresses are not counted as this host's")),
    p("qmgr_message_active_limit", "20000", Int, INSTANCE),
    p("qmgr_message_recipient_limit", "20000", Int, INSTANCE),
    p("qmgr_message_recipient_minimum", "10", Int, QMGR_TUNING),
    p("qmqpd_authorized_clients", "", List, QMQP),
    p("qmqpd_error_delay", "1s", Time('s'), QMQP),
    p("qmqpd_timeout", "300s", Time('s'), QMQP),
    // Sluice: /var/spool/postfix in Postfix.
    p("queue_directory", "/var/spool/sluice", Str, INSTANCE),
    p("queue_minfree", "0", Int, Ignored("Sluice refuses mail with 452 4.3.1 only when the disk is full")),
    p("queue_run_delay", "300s", Time('s'), INSTANCE),
    p("receive_override_options", "", List, Ignored("the checks and mappings it turns off are not implemented")),
    p("recipient_bcc_maps", "", List, BCC),
    p("recipient_canonical_maps", "", List, REWRITE),
    p("recipient_delimiter", "", Str, INSTANCE),
    p("relay_domains", "", List, GUARDED),
    p("relay_recipient_maps", "", List, Refused("relay recipients are not checked: mail for unknown users would be accepted and bounced")),
    p("relay_transport", "relay", Str, GUARDED),
    p("relayhost", "", Str, GUARDED),
    p("relocated_maps", "", List, Refused("relocated users are not looked up: their mail would be delivered")),
    p("resolve_dequoted_address", "yes", Bool, INSTANCE),
    p("sender_bcc_maps", "", List, BCC),
    p("sender_canonical_maps", "", List, REWRITE),
    // The group of the setgid submission program (postdrop).
    p("setgid_group", "postdrop", Str, INSTANCE),
    // Sluice: memory for message content in flight in smtpd (all shards
    // together, split evenly); beyond it 451 4.3.0. 0 = unlimited.
    p("sluice_inflight_memory_limit", "1g", Size, INSTANCE),
    // Sluice: DNS servers as ip:port (empty = the nameservers of /etc/resolv.conf).
    p("sluice_nameservers", "", List, INSTANCE),
    // Sluice: the built-in SASL backend's passwd-file (smtpd_sasl_type = sluice):
    // Dovecot's format, user:{SCHEME}hash, hashed schemes only.
    p("sluice_sasl_password_file", "", Str, LISTENER),
    // Sluice: the size of one queue-log segment file.
    p("sluice_segment_size", "64m", Size, INSTANCE),
    // Sluice: shards (executors); 0 = one per online CPU.
    p("sluice_shards", "0", Int, INSTANCE),
    p("smtp_body_checks", "", List, CONTENT),
    p("smtp_connect_timeout", "30s", Time('s'), INSTANCE),
    p("smtp_connection_cache_time_limit", "2s", Time('s'), INSTANCE),
    p("smtp_connection_reuse_count_limit", "0", Int, INSTANCE),
    p("smtp_connection_reuse_time_limit", "300s", Time('s'), INSTANCE),
    p("smtp_data_done_timeout", "600s", Time('s'), INSTANCE),
    p("smtp_data_init_timeout", "120s", Time('s'), INSTANCE),
    p("smtp_data_xfer_timeout", "180s", Time('s'), INSTANCE),
    p("smtp_enforce_tls", "no", Bool, GUARDED),
    p("smtp_header_checks", "", List, CONTENT),
    p("smtp_helo_name", "$myhostname", Str, INSTANCE),
    p("smtp_helo_timeout", "300s", Time('s'), INSTANCE),
    p("smtp_host_lookup", "dns", List, INSTANCE),
    p("smtp_line_length_limit", "998", Int, INSTANCE),
    p("smtp_mail_timeout", "300s", Time('s'), INSTANCE),
    p("smtp_mx_address_limit", "5", Int, Ignored("Sluice tries at most 5 addresses")),
    p("smtp_quit_timeout", "300s", Time('s'), INSTANCE),
    p("smtp_rcpt_timeout", "300s", Time('s'), INSTANCE),
    p("smtp_rset_timeout", "20s", Time('s'), INSTANCE),
    p("smtp_sasl_auth_enable", "no", Bool, GUARDED),
    p("smtp_sasl_auth_soft_bounce", "yes", Bool, INSTANCE),
    p("smtp_sasl_mechanism_filter", "", List, INSTANCE),
    p("smtp_sasl_password_maps", "", List, GUARDED),
    p("smtp_sasl_security_options", "noplaintext, noanonymous", List, GUARDED),
    // Sluice: PLAIN and LOGIN inside TLS; Postfix's default is
    // $smtp_sasl_security_options (noplaintext, which refuses both).
    p("smtp_sasl_tls_security_options", "noanonymous", List, GUARDED),
    p("smtp_sasl_type", "cyrus", Str, Ignored("Sluice's smtp client has its own PLAIN and LOGIN")),
    p("smtp_sender_dependent_authentication", "no", Bool, Refused("sender-dependent SASL credentials are not implemented: the per-destination ones would be used")),
    p("smtp_starttls_timeout", "300s", Time('s'), INSTANCE),
    // The smtp client's TLS and SASL settings that decide whether mail may
    // go in plaintext or unauthenticated are GUARDED: a master.cf -o for
    // one transport (which Sluice does not apply per transport) is refused
    // rather than warned about.
    p("smtp_tls_CAfile", "", Str, GUARDED),
    p("smtp_tls_CApath", "", Str, GUARDED),
    p("smtp_tls_cert_file", "", Str, Refused("client certificates are not implemented: no certificate would be presented")),
    p("smtp_tls_ciphers", "medium", Str, Ignored("rustls's own cipher suites are used")),
    // Obsolete (Postfix < 2.3): with smtp_enforce_tls = yes it made the level verify.
    p("smtp_tls_enforce_peername", "yes", Bool, GUARDED),
    p("smtp_tls_key_file", "$smtp_tls_cert_file", Str, Refused("client certificates are not implemented: no certificate would be presented")),
    p("smtp_tls_loglevel", "0", Int, INSTANCE),
    p("smtp_tls_mandatory_ciphers", "medium", Str, Ignored("rustls's own cipher suites are used")),
    // Sluice: rustls speaks TLSv1.2 and TLSv1.3 only, whatever this allows.
    p("smtp_tls_mandatory_protocols", ">=TLSv1", List, GUARDED),
    p("smtp_tls_note_starttls_offer", "no", Bool, Ignored("servers that offer STARTTLS are not logged")),
    p("smtp_tls_policy_maps", "", List, GUARDED),
    // Sluice: rustls speaks TLSv1.2 and TLSv1.3 only, whatever this allows.
    p("smtp_tls_protocols", ">=TLSv1", List, INSTANCE),
    p("smtp_tls_secure_cert_match", "nexthop, dot-nexthop", List, GUARDED),
    // Sluice: "may", as Postfix 3.11's default; Postfix 3.7 (Debian 12)
    // defaults to empty (the obsolete smtp_use_tls, so no TLS).
    p("smtp_tls_security_level", "may", Str, GUARDED),
    p("smtp_tls_servername", "", Str, INSTANCE),
    p("smtp_tls_session_cache_database", "", Str, Ignored("TLS sessions (unverified levels only) are cached in memory, per shard")),
    p("smtp_tls_verify_cert_match", "hostname", List, GUARDED),
    p("smtp_use_tls", "no", Bool, GUARDED),
    p("smtpd_banner", "$myhostname ESMTP $mail_name", Str, LISTENER),
    p("smtpd_client_connection_count_limit", "50", Int, LISTENER),
    p("smtpd_client_connection_rate_limit", "0", Int, LISTENER),
    // Sluice: Postfix's default is ${smtpd_client_connection_limit_exceptions:$mynetworks},
    // through a pre-2.9 name Sluice does not know; the effect is the same.
    p("smtpd_client_event_limit_exceptions", "$mynetworks", List, LISTENER),
    p("smtpd_client_message_rate_limit", "0", Int, LISTENER),
    p("smtpd_client_new_tls_session_rate_limit", "0", Int, TLS_DETAIL),
    p("smtpd_client_recipient_rate_limit", "0", Int, LISTENER),
    p("smtpd_client_restrictions", "", List, RESTRICTIONS),
    p("smtpd_data_restrictions", "", List, RESTRICTIONS),
    p("smtpd_delay_reject", "yes", Bool, Ignored("only RCPT-time restrictions exist")),
    p("smtpd_end_of_data_restrictions", "", List, RESTRICTIONS),
    p("smtpd_enforce_tls", "no", Bool, LISTENER),
    p("smtpd_error_sleep_time", "1s", Time('s'), LISTENER),
    p("smtpd_etrn_restrictions", "", List, Ignored("ETRN is refused (458)")),
    p("smtpd_forbid_bare_newline", "normalize", Str, LISTENER),
    // Sluice: Postfix's default is $mynetworks; Sluice exempts nobody.
    p("smtpd_forbid_bare_newline_exclusions", "", List, Ignored("no client is exempt from smtpd_forbid_bare_newline")),
    p("smtpd_forbid_unauth_pipelining", "yes", Bool, LISTENER),
    p("smtpd_hard_error_limit", "${stress?{1}:{20}}", Int, LISTENER),
    p("smtpd_helo_required", "no", Bool, Refused("HELO is not required: clients could skip it")),
    p("smtpd_helo_restrictions", "", List, RESTRICTIONS),
    p("smtpd_junk_command_limit", "${stress?{1}:{100}}", Int, LISTENER),
    p("smtpd_milters", "", List, MILTER),
    p("smtpd_proxy_filter", "", Str, Refused("smtpd_proxy_filter is not implemented: mail would skip the filter")),
    p("smtpd_recipient_limit", "1000", Int, LISTENER),
    p("smtpd_recipient_overshoot_limit", "1000", Int, Ignored("recipients beyond smtpd_recipient_limit are refused without counting")),
    p("smtpd_recipient_restrictions", "", List, LISTENER),
    // Sluice consults no local, virtual or relay recipient table at RCPT
    // (relay_recipient_maps is refused), so it behaves as with no.
    p("smtpd_reject_unlisted_recipient", "yes", Bool, Ignored("recipients are not checked against recipient tables at RCPT time, as with no")),
    p("smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", List, LISTENER),
    p("smtpd_restriction_classes", "", List, Ignored("restriction classes are not implemented; a list that names one is refused")),
    p("smtpd_sasl_auth_enable", "no", Bool, LISTENER),
    p("smtpd_sasl_authenticated_header", "no", Bool, LISTENER),
    p("smtpd_sasl_path", "smtpd", Str, LISTENER),
    p("smtpd_sasl_security_options", "noanonymous", List, Refused("Sluice offers PLAIN and LOGIN and never ANONYMOUS (noanonymous); other SASL security options are not implemented")),
    // Sluice: Postfix's default is cyrus, which Sluice does not have; a
    // listener that enables AUTH must name dovecot or sluice.
    p("smtpd_sasl_type", "cyrus", Str, LISTENER),
    p("smtpd_sender_login_maps", "", List, LISTENER),
    p("smtpd_sender_restrictions", "", List, RESTRICTIONS),
    p("smtpd_soft_error_limit", "10", Int, LISTENER),
    p("smtpd_starttls_timeout", "${stress?{10}:{300}}s", Time('s'), LISTENER),
    p("smtpd_timeout", "${stress?{10}:{300}}s", Time('s'), LISTENER),
    p("smtpd_tls_auth_only", "no", Bool, LISTENER),
    p("smtpd_tls_cert_file", "", Str, LISTENER),
    p("smtpd_tls_chain_files", "", List, LISTENER),
    p("smtpd_tls_key_file", "$smtpd_tls_cert_file", Str, LISTENER),
    p("smtpd_tls_loglevel", "0", Int, LISTENER),
    p("smtpd_tls_mandatory_protocols", ">=TLSv1", List, LISTENER),
    p("smtpd_tls_protocols", ">=TLSv1", List, LISTENER),
    p("smtpd_tls_received_header", "no", Bool, LISTENER),
    p("smtpd_tls_security_level", "", Str, LISTENER),
    p("smtpd_tls_wrappermode", "no", Bool, LISTENER),
    p("smtpd_use_tls", "no", Bool, LISTENER),
    p("soft_bounce", "no", Bool, Refused("soft_bounce is not implemented: mail would bounce instead of staying queued")),
    p("stress", "", Str, LISTENER),
    p("swap_bangpath", "yes", Bool, INSTANCE),
    p("syslog_facility", "mail", Str, SYSLOG),
    p("syslog_name", "sluice", Str, SYSLOG),
    p("transport_maps", "", List, GUARDED),
    p("transport_retry_time", "60s", Time('s'), QMGR_TUNING),
    p("undisclosed_recipients_header", "", Str, Ignored("no header is added for messages without recipient headers")),
    p("virtual_alias_domains", "$virtual_alias_maps", List, VIRTUAL_ALIAS),
    p("virtual_alias_maps", "$virtual_maps", List, VIRTUAL_ALIAS),
    p("virtual_mailbox_domains", "$virtual_mailbox_maps", List, VIRTUAL_MAILBOX),
    p("virtual_mailbox_maps", "", List, VIRTUAL_MAILBOX),
    p("virtual_maps", "", List, VIRTUAL_ALIAS),
    p("virtual_transport", "virtual", Str, GUARDED),
];

/// The registry entry for `name`.
pub fn param(name: &str) -> Option<&'static Param> {
    let exact = |n: &str| {
        PARAMS
            .binary_search_by(|p| p.name.cmp(n))
            .ok()
            .map(|i| &PARAMS[i])
    };
    if let Some(t) = name.strip_suffix("_initial_destination_concurrency") {
        if !t.is_empty() {
            return exact("initial_destination_concurrency");
        }
    }
    exact(name).or_else(|| {
        // Every `default_*` queue-manager parameter has a per-transport
        // twin (`smtp_destination_concurrency_limit`, …): it is known,
        // with the default's kind.
        PER_TRANSPORT_SUFFIXES.iter().find_map(|suffix| {
            let transport = name.strip_suffix(suffix)?.strip_suffix('_')?;
            (!transport.is_empty() && transport != "default")
                .then(|| exact(&format!("default_{suffix}")))
                .flatten()
        })
    })
}

/// The `default_<suffix>` parameters that `<transport>_<suffix>` overrides.
const PER_TRANSPORT_SUFFIXES: &[&str] = &[
    "destination_concurrency_limit",
    "destination_recipient_limit",
    "destination_concurrency_positive_feedback",
    "destination_concurrency_negative_feedback",
    "destination_concurrency_failed_cohort_limit",
    "destination_rate_delay",
];

const BAD_TIME: &str = "bad time value or unit";

/// Parses a Postfix time value: digits with an optional unit s, m, h, d, w;
/// a bare number is in `default_unit`.
pub fn parse_time(value: &str, default_unit: char) -> Result<Duration, &'static str> {
    let v = value.trim();
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c),
        _ => (v, default_unit),
    };
    let n = parse_digits(digits).ok_or(BAD_TIME)?;
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return Err(BAD_TIME),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or("time value out of range")
}

/// Parses a non-negative decimal integer.
pub fn parse_int(value: &str) -> Result<u64, &'static str> {
    parse_digits(value.trim()).ok_or("bad numerical configuration")
}

/// Parses a byte count with an optional k, m or g suffix (powers of 1024).
pub fn parse_size(value: &str) -> Result<u64, &'static str> {
    let v = value.trim();
    let (digits, scale) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    parse_digits(digits)
        .and_then(|n| n.checked_mul(scale))
        .ok_or("bad size value")
}

/// Parses `yes` / `no` (case-insensitive), as Postfix does.
pub fn parse_bool(value: &str) -> Result<bool, &'static str> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("bad boolean configuration")
    }
}

/// Splits a list on commas and whitespace. A `{ ... }` group stays one item
/// (braces removed, inner whitespace trimmed), as in Postfix 3.0+.
pub fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let b = value.as_bytes();
    let is_sep = |c: u8| matches!(c, b',' | b' ' | b'\t' | b'\r' | b'\n');
    let mut i = 0;
    while i < b.len() {
        if is_sep(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        if b[i] == b'{' {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let inner = value[start..i]
                .strip_prefix('{')
                .map(|s| s.strip_suffix('}').unwrap_or(s))
                .unwrap_or("");
            items.push(inner.trim().to_string());
        } else {
            while i < b.len() && !is_sep(b[i]) {
                i += 1;
            }
            items.push(value[start..i].to_string());
        }
    }
    items
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_and_unique() {
        for w in PARAMS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert_eq!(param("smtpd_timeout").map(|p| p.kind), Some(Time('s')));
        assert!(param("no_such_thing").is_none());
    }

    #[test]
    fn time_defaults_end_in_their_unit() {
        for p in PARAMS {
            if let Time(unit) = p.kind {
                assert!(p.default.ends_with(unit), "{}", p.name);
            }
        }
    }

    #[test]
    fn times() {
        let table = [
            ("300s", 's', Ok(300)),
            ("300", 's', Ok(300)),
            ("5", 'd', Ok(5 * 86_400)),
            ("5d", 's', Ok(5 * 86_400)),
            ("2m", 's', Ok(120)),
            ("1h", 's', Ok(3600)),
            ("1w", 's', Ok(604_800)),
            ("0h", 'h', Ok(0)),
            ("10x", 's', Err(())),
            ("s", 's', Err(())),
            ("-1s", 's', Err(())),
            ("", 's', Err(())),
            ("1.5h", 's', Err(())),
        ];
        for (input, unit, want) in table {
            let got = parse_time(input, unit).map(|d| d.as_secs()).map_err(|_| ());
            assert_eq!(got, want, "{input}");
        }
        assert_eq!(parse_time("10x", 's'), Err("bad time value or unit"));
    }

    #[test]
    fn ints_sizes_bools() {
        assert_eq!(parse_int("10240000"), Ok(10_240_000));
        assert_eq!(parse_int("10m"), Err("bad numerical configuration"));
        assert!(parse_int("-5").is_err());
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("m").is_err());
        assert!(parse_size("99999999999999g").is_err());
        assert_eq!(parse_bool("yes"), Ok(true));
        assert_eq!(parse_bool("NO"), Ok(false));
        assert_eq!(parse_bool("true"), Err("bad boolean configuration"));
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("a, b,c\n\t d,,  "), ["a", "b", "c", "d"]);
        assert_eq!(
            split_list("permit_mynetworks { check_x  a b }, reject"),
            ["permit_mynetworks", "check_x  a b", "reject"]
        );
        assert!(split_list("  , ").is_empty());
    }
}
