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

/// One registered parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    /// Postfix's default (raw, unexpanded). Empty for the computed defaults
    /// (myhostname, mydomain, mynetworks).
    pub default: &'static str,
    pub kind: Kind,
}

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Param {
    Param {
        name,
        default,
        kind,
    }
}

use Kind::{Bool, Int, List, Size, Str, Time};

/// Every parameter Sluice knows, sorted by name (binary search).
/// Defaults are Postfix 3.x's, except where marked "Sluice:".
pub static PARAMS: &[Param] = &[
    p("alias_database", "hash:/etc/aliases", List),
    p("alias_maps", "hash:/etc/aliases", List),
    p("allow_mail_to_commands", "alias, forward", List),
    p("allow_mail_to_files", "alias, forward", List),
    p("allow_min_user", "no", Bool),
    p("allow_percent_hack", "yes", Bool),
    p("always_add_missing_headers", "no", Bool),
    p("always_bcc", "", Str),
    p("append_at_myorigin", "yes", Bool),
    p("append_dot_mydomain", "no", Bool),
    p("authorized_flush_users", "static:anyone", List),
    p("authorized_mailq_users", "static:anyone", List),
    p("authorized_submit_users", "static:anyone", List),
    p("body_checks", "", List),
    p("bounce_notice_recipient", "postmaster", Str),
    p("bounce_queue_lifetime", "5d", Time('d')),
    p("bounce_size_limit", "50000", Int),
    p("canonical_maps", "", List),
    p("command_directory", "/usr/sbin", Str),
    // Sluice: always behaves as Postfix does at this level.
    p("compatibility_level", "3.6", Str),
    // The directory actually loaded replaces this at load.
    p("config_directory", "/etc/sluice", Str),
    p("content_filter", "", Str),
    p("daemon_directory", "/usr/libexec/sluice", Str),
    // Sluice: /var/lib/postfix in Postfix.
    p("data_directory", "/var/lib/sluice", Str),
    p("default_delivery_slot_cost", "5", Int),
    p("default_delivery_slot_discount", "50", Int),
    p("default_delivery_slot_loan", "3", Int),
    p("default_destination_concurrency_failed_cohort_limit", "1", Int),
    p("default_destination_concurrency_limit", "20", Int),
    p("default_destination_concurrency_negative_feedback", "1", Str),
    p("default_destination_concurrency_positive_feedback", "1", Str),
    p("default_destination_rate_delay", "0s", Time('s')),
    p("default_destination_recipient_limit", "50", Int),
    p("default_minimum_delivery_slots", "3", Int),
    p("default_process_limit", "100", Int),
    p("default_recipient_limit", "20000", Int),
    p("default_recipient_refill_delay", "5s", Time('s')),
    p("default_recipient_refill_limit", "100", Int),
    p("default_transport", "smtp", Str),
    p("default_transport_rate_delay", "0s", Time('s')),
    p("defer_transports", "", List),
    p("delay_warning_time", "0h", Time('h')),
    p("disable_vrfy_command", "no", Bool),
    p("double_bounce_sender", "double-bounce", Str),
    p("empty_address_recipient", "MAILER-DAEMON", Str),
    p("enable_long_queue_ids", "no", Bool),
    p("fast_flush_domains", "$relay_domains", List),
    p("fast_flush_purge_time", "7d", Time('d')),
    p("fast_flush_refresh_time", "12h", Time('h')),
    p("hash_queue_depth", "1", Int),
    p("hash_queue_names", "deferred, defer", List),
    p("header_checks", "", List),
    p("header_size_limit", "102400", Int),
    p("hopcount_limit", "50", Int),
    p("inet_interfaces", "all", List),
    p("inet_protocols", "all", List),
    p("initial_destination_concurrency", "5", Int),
    p("line_length_limit", "2048", Int),
    p("lmtp_connect_timeout", "0s", Time('s')),
    p("local_header_rewrite_clients", "permit_inet_interfaces", List),
    p("local_recipient_maps", "proxy:unix:passwd.byname $alias_maps", List),
    p("local_transport", "local:$myhostname", Str),
    p("mail_name", "Sluice", Str),
    p("mail_owner", "postfix", Str),
    p("mailbox_size_limit", "51200000", Int),
    p("maillog_file", "", Str),
    p("masquerade_classes", "envelope_sender, header_sender, header_recipient", List),
    p("masquerade_domains", "", List),
    p("maximal_backoff_time", "4000s", Time('s')),
    p("maximal_queue_lifetime", "5d", Time('d')),
    p("message_size_limit", "10240000", Int),
    p("minimal_backoff_time", "300s", Time('s')),
    p("mydestination", "$myhostname, localhost.$mydomain, localhost", List),
    p("mydomain", "", Str),
    p("myhostname", "", Str),
    p("mynetworks", "", List),
    p("mynetworks_style", "host", Str),
    p("myorigin", "$myhostname", Str),
    p("notify_classes", "resource, software", List),
    p(
        "parent_domain_matches_subdomains",
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
        List,
    ),
    p("proxy_interfaces", "", List),
    p("qmgr_message_active_limit", "20000", Int),
    p("qmgr_message_recipient_limit", "20000", Int),
    p("qmgr_message_recipient_minimum", "10", Int),
    p("qmqpd_authorized_clients", "", List),
    p("qmqpd_error_delay", "1s", Time('s')),
    p("qmqpd_timeout", "300s", Time('s')),
    // Sluice: /var/spool/postfix in Postfix.
    p("queue_directory", "/var/spool/sluice", Str),
    p("queue_minfree", "0", Int),
    p("queue_run_delay", "300s", Time('s')),
    p("recipient_bcc_maps", "", List),
    p("recipient_canonical_maps", "", List),
    p("recipient_delimiter", "", Str),
    p("relay_domains", "", List),
    p("relay_recipient_maps", "", List),
    p("relay_transport", "relay", Str),
    p("relayhost", "", Str),
    p("relocated_maps", "", List),
    p("resolve_dequoted_address", "yes", Bool),
    p("sender_bcc_maps", "", List),
    p("sender_canonical_maps", "", List),
    // Sluice: memory for message content in flight in smtpd (all shards
    // together, split evenly); beyond it 451 4.3.0. 0 = unlimited.
    p("sluice_inflight_memory_limit", "1g", Size),
    // Sluice: DNS servers as ip:port (empty = the nameservers of /etc/resolv.conf).
    p("sluice_nameservers", "", List),
    // Sluice: the size of one queue-log segment file.
    p("sluice_segment_size", "64m", Size),
    // Sluice: shards (executors); 0 = one per online CPU.
    p("sluice_shards", "0", Int),
    p("smtp_connect_timeout", "30s", Time('s')),
    p("smtp_connection_cache_time_limit", "2s", Time('s')),
    p("smtp_connection_reuse_count_limit", "0", Int),
    p("smtp_connection_reuse_time_limit", "300s", Time('s')),
    p("smtp_data_done_timeout", "600s", Time('s')),
    p("smtp_data_init_timeout", "120s", Time('s')),
    p("smtp_data_xfer_timeout", "180s", Time('s')),
    p("smtp_helo_name", "$myhostname", Str),
    p("smtp_helo_timeout", "300s", Time('s')),
    p("smtp_host_lookup", "dns", List),
    p("smtp_line_length_limit", "998", Int),
    p("smtp_mail_timeout", "300s", Time('s')),
    p("smtp_mx_address_limit", "5", Int),
    p("smtp_quit_timeout", "300s", Time('s')),
    p("smtp_rcpt_timeout", "300s", Time('s')),
    p("smtp_rset_timeout", "20s", Time('s')),
    p("smtpd_banner", "$myhostname ESMTP $mail_name", Str),
    p("smtpd_client_connection_count_limit", "50", Int),
    p("smtpd_client_connection_rate_limit", "0", Int),
    p("smtpd_client_message_rate_limit", "0", Int),
    p("smtpd_client_recipient_rate_limit", "0", Int),
    p("smtpd_client_restrictions", "", List),
    p("smtpd_data_restrictions", "", List),
    p("smtpd_delay_reject", "yes", Bool),
    p("smtpd_end_of_data_restrictions", "", List),
    p("smtpd_error_sleep_time", "1s", Time('s')),
    p("smtpd_etrn_restrictions", "", List),
    p("smtpd_forbid_bare_newline", "normalize", Str),
    // Sluice: Postfix's default is $mynetworks; Sluice exempts nobody.
    p("smtpd_forbid_bare_newline_exclusions", "", List),
    p("smtpd_forbid_unauth_pipelining", "yes", Bool),
    p("smtpd_hard_error_limit", "${stress?{1}:{20}}", Int),
    p("smtpd_helo_required", "no", Bool),
    p("smtpd_helo_restrictions", "", List),
    p("smtpd_junk_command_limit", "${stress?{1}:{100}}", Int),
    p("smtpd_recipient_limit", "1000", Int),
    p("smtpd_recipient_overshoot_limit", "1000", Int),
    p("smtpd_recipient_restrictions", "", List),
    p(
        "smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
        List,
    ),
    p("smtpd_restriction_classes", "", List),
    p("smtpd_sender_restrictions", "", List),
    p("smtpd_soft_error_limit", "10", Int),
    p("smtpd_timeout", "${stress?{10}:{300}}s", Time('s')),
    p("soft_bounce", "no", Bool),
    p("stress", "", Str),
    p("swap_bangpath", "yes", Bool),
    p("syslog_facility", "mail", Str),
    p("syslog_name", "sluice", Str),
    p("transport_maps", "", List),
    p("transport_retry_time", "60s", Time('s')),
    p("undisclosed_recipients_header", "", Str),
    p("virtual_alias_domains", "$virtual_alias_maps", List),
    p("virtual_alias_maps", "$virtual_maps", List),
    p("virtual_mailbox_domains", "$virtual_mailbox_maps", List),
    p("virtual_mailbox_maps", "", List),
    p("virtual_maps", "", List),
    p("virtual_transport", "virtual", Str),
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
