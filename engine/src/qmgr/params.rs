//! qmgr's parameters read from the configuration: per-transport limits and
//! feedback (every `default_*` has a `<transport>_*` override, as in
//! Postfix), and trivial-rewrite's resolver parameters.
//!
//! Read once at start-up (and reload); a bad value stops start-up with
//! `file:line`. Feedback values that Postfix would warn about and replace
//! by 1 come back as warnings for the caller to log.

use std::collections::HashMap;

use sluice_agents::resolve::ResolveParams;
use sluice_agents::rewrite::RewriteParams;
use sluice_storage::table::Table;

use super::window::{ConcurrencyFeedback, WindowParams};
use crate::config::{split_list, ConfigError, MainCf, MainParams, MasterService};

/// How deliveries over one transport are shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransportParams {
    pub window: WindowParams,
    /// `<transport>_destination_recipient_limit`: recipients per delivery
    /// (50; local 1; 0 = no limit).
    pub recipient_limit: u32,
    /// Concurrent deliveries over the whole transport: master.cf maxproc,
    /// else default_process_limit (100; 0 = no limit).
    pub process_limit: u32,
}

impl Default for TransportParams {
    /// Postfix's defaults for a transport without overrides.
    fn default() -> Self {
        TransportParams {
            window: WindowParams::default(),
            recipient_limit: 50,
            process_limit: 100,
        }
    }
}

/// Postfix's built-in per-transport defaults that differ from the
/// `default_*` ones: (parameter, value).
const BUILTIN_OVERRIDES: &[(&str, u64)] = &[
    ("local_destination_concurrency_limit", 2),
    ("local_destination_recipient_limit", 1),
];

/// Suffixes of the per-transport parameters; a main.cf name ending in one
/// of them names a transport too.
const SUFFIXES: &[&str] = &[
    "_destination_concurrency_limit",
    "_initial_destination_concurrency",
    "_destination_concurrency_positive_feedback",
    "_destination_concurrency_negative_feedback",
    "_destination_concurrency_failed_cohort_limit",
    "_destination_recipient_limit",
];

impl TransportParams {
    /// `transport`'s parameters: `<transport>_*` where main.cf sets it,
    /// else the built-in transport default, else `default_*`.
    /// `maxproc` is the transport's master.cf process limit, if given.
    pub fn from_config(
        main: &MainCf,
        transport: &str,
        maxproc: Option<u32>,
        warnings: &mut Vec<String>,
    ) -> Result<TransportParams, ConfigError> {
        let int = |suffix: &str, default_name: &str| -> Result<u32, ConfigError> {
            let own = format!("{transport}{suffix}");
            if main.is_set(&own) {
                return main.get_number(&own, 0);
            }
            if let Some(&(_, v)) = BUILTIN_OVERRIDES.iter().find(|(n, _)| *n == own) {
                return Ok(u32::try_from(v).unwrap_or(u32::MAX));
            }
            main.get_number(default_name, 0)
        };
        let mut feedback = |suffix: &str, default_name: &str| -> Result<_, ConfigError> {
            let own = format!("{transport}{suffix}");
            let name = if main.is_set(&own) {
                own.as_str()
            } else {
                default_name
            };
            let value = main.get_str(name)?;
            Ok(ConcurrencyFeedback::parse(&value).unwrap_or_else(|e| {
                warnings.push(format!("{name}: {e}"));
                ConcurrencyFeedback::Constant(1.0)
            }))
        };
        let positive = feedback(
            "_destination_concurrency_positive_feedback",
            "default_destination_concurrency_positive_feedback",
        )?;
        let negative = feedback(
            "_destination_concurrency_negative_feedback",
            "default_destination_concurrency_negative_feedback",
        )?;
        let initial = {
            let own = format!("{transport}_initial_destination_concurrency");
            let name = if main.is_set(&own) {
                own.as_str()
            } else {
                "initial_destination_concurrency"
            };
            main.get_number(name, 1)?
        };
        Ok(TransportParams {
            window: WindowParams {
                initial,
                limit: int(
                    "_destination_concurrency_limit",
                    "default_destination_concurrency_limit",
                )?,
                positive,
                negative,
                failed_cohort_limit: int(
                    "_destination_concurrency_failed_cohort_limit",
                    "default_destination_concurrency_failed_cohort_limit",
                )?,
            },
            recipient_limit: int(
                "_destination_recipient_limit",
                "default_destination_recipient_limit",
            )?,
            process_limit: match maxproc {
                Some(n) => n,
                None => main.get_number("default_process_limit", 0)?,
            },
        })
    }
}

/// Every transport's [`TransportParams`]: those known at start-up, and the
/// defaults for any other name a transport table produces.
#[derive(Clone, Debug, Default)]
pub struct TransportTable {
    default: TransportParams,
    by_name: HashMap<String, TransportParams>,
}

impl TransportTable {
    pub fn new(default: TransportParams) -> TransportTable {
        TransportTable {
            default,
            by_name: HashMap::new(),
        }
    }

    pub fn insert(&mut self, transport: &str, params: TransportParams) {
        self.by_name.insert(transport.to_string(), params);
    }

    /// The parameters for `transport` (the defaults when unknown).
    pub fn get(&self, transport: &str) -> &TransportParams {
        self.by_name.get(transport).unwrap_or(&self.default)
    }

    /// Reads the defaults, every master.cf `unix` service (with its
    /// maxproc), `local` (whose Postfix defaults differ), and every
    /// transport that main.cf names in a `<transport>_destination_*`
    /// parameter. Returns warnings to log.
    pub fn from_config(
        main: &MainCf,
        master: &[MasterService],
    ) -> Result<(TransportTable, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let default = TransportParams::from_config(main, "default", None, &mut warnings)?;
        let mut table = TransportTable::new(default);
        let mut names: Vec<(String, Option<u32>)> = vec![("local".to_string(), None)];
        for s in master.iter().filter(|s| s.service_type == "unix") {
            names.push((s.service.clone(), s.maxproc));
        }
        for e in main.raw_entries() {
            for suffix in SUFFIXES {
                if let Some(t) = e.name.strip_suffix(suffix) {
                    if t != "default" && !t.is_empty() {
                        names.push((t.to_string(), None));
                    }
                }
            }
        }
        // A master.cf entry (with its maxproc) wins over a bare name.
        let mut seen = std::collections::HashSet::new();
        names.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.is_some().cmp(&a.1.is_some())));
        for (name, maxproc) in names {
            if seen.insert(name.clone()) {
                let p = TransportParams::from_config(main, &name, maxproc, &mut warnings)?;
                table.insert(&name, p);
            }
        }
        Ok((table, warnings))
    }
}

/// trivial-rewrite's resolver parameters from the configuration, with the
/// standard form's (`rewrite`), which cleanup and smtpd's relay check
/// share. Table
/// specs in transport_maps are opened (their warnings are returned);
/// virtual_alias_domains and virtual_mailbox_domains may name tables (their
/// Postfix defaults are `$virtual_alias_maps` / `$virtual_mailbox_maps`),
/// whose keys without `@` then count as domains, and `/file` entries, whose
/// words do.
pub fn resolve_params(
    main: &MainCf,
    params: &MainParams,
) -> Result<(ResolveParams, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let table_error = |name: &str, e: sluice_storage::table::TableError| ConfigError::Syntax {
        origin: main.origin(name),
        what: format!("{name}: {e}"),
    };
    let mut transport_maps = Vec::new();
    for spec in main.get_list("transport_maps")? {
        let t = Table::open(&spec).map_err(|e| table_error("transport_maps", e))?;
        warnings.extend(t.warnings().iter().cloned());
        transport_maps.push(t);
    }
    let mut domains = |name: &str| -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for item in main.get_list(name)? {
            if item.starts_with('!') {
                return Err(main.bad_value(name, "negated domain list entries are not supported"));
            }
            if item.starts_with('/') {
                let text = std::fs::read_to_string(&item).map_err(|e| ConfigError::Syntax {
                    origin: main.origin(name),
                    what: format!("{name}: open {item}: {e}"),
                })?;
                for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                    out.extend(split_list(line).into_iter().map(|d| d.to_ascii_lowercase()));
                }
            } else if item.contains(':') {
                let t = Table::open(&item).map_err(|e| table_error(name, e))?;
                warnings.extend(t.warnings().iter().cloned());
                out.extend(t.keys().filter(|k| !k.contains('@')).map(str::to_string));
            } else {
                out.push(item.to_ascii_lowercase());
            }
        }
        Ok(out)
    };
    let virtual_alias_domains = domains("virtual_alias_domains")?;
    let virtual_mailbox_domains = domains("virtual_mailbox_domains")?;
    let virtual_transport = main.get_str("virtual_transport")?;
    Ok((
        ResolveParams {
            myhostname: params.myhostname.clone(),
            mydestination: params.mydestination.clone(),
            inet_interface_addrs: params.inet_interface_addrs.clone(),
            virtual_alias_domains,
            virtual_mailbox_domains,
            relay_domains: params.relay_domains.clone(),
            relayhost: main.get_str("relayhost")?,
            default_transport: main.get_str("default_transport")?,
            relay_transport: main.get_str("relay_transport")?,
            local_transport: main.get_str("local_transport")?,
            virtual_transport,
            transport_maps,
            empty_address_recipient: main.get_str("empty_address_recipient")?,
            recipient_delimiter: main.get_str("recipient_delimiter")?,
            allow_min_user: main.get_bool("allow_min_user")?,
            rewrite: RewriteParams {
                myorigin: params.myorigin.clone(),
                swap_bangpath: main.get_bool("swap_bangpath")?,
                allow_percent_hack: main.get_bool("allow_percent_hack")?,
                append_at_myorigin: main.get_bool("append_at_myorigin")?,
            },
            resolve_dequoted_address: main.get_bool("resolve_dequoted_address")?,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn main_cf(text: &str) -> MainCf {
        MainCf::parse(text, Path::new("/etc/sluice/main.cf"))
            .unwrap()
            .0
    }

    fn load(main: &str, master: &str) -> Result<crate::config::Config, ConfigError> {
        crate::config::from_text(
            Path::new("/etc/sluice"),
            (main, Path::new("/etc/sluice/main.cf")),
            (master, Path::new("/etc/sluice/master.cf")),
            &crate::config::HostFacts::for_tests(),
            Path::new("/"),
        )
    }

    #[test]
    fn transport_defaults_and_overrides() {
        let main = main_cf(concat!(
            "default_destination_concurrency_limit = 10\n",
            "smtp_destination_concurrency_limit = 40\n",
            "smtp_initial_destination_concurrency = 2\n",
            "relay_destination_recipient_limit = 100\n",
            "slow_destination_concurrency_positive_feedback = 1/concurrency\n",
            "slow_destination_concurrency_negative_feedback = 7\n",
            "default_process_limit = 50\n",
        ));
        let master = load("", "smtp unix - - n - 25 smtp\nrelay unix - - n - - smtp\n")
            .unwrap()
            .master;
        let (table, warnings) = TransportTable::from_config(&main, &master).unwrap();
        let smtp = table.get("smtp");
        assert_eq!(
            (
                smtp.window.limit,
                smtp.window.initial,
                smtp.process_limit,
                smtp.recipient_limit
            ),
            (40, 2, 25, 50)
        );
        let relay = table.get("relay");
        assert_eq!(
            (
                relay.window.limit,
                relay.recipient_limit,
                relay.process_limit
            ),
            (10, 100, 50)
        );
        let local = table.get("local");
        assert_eq!((local.window.limit, local.recipient_limit), (2, 1));
        let slow = table.get("slow");
        assert_eq!(
            slow.window.positive,
            ConcurrencyFeedback::PerConcurrency(1.0)
        );
        assert_eq!(slow.window.negative, ConcurrencyFeedback::Constant(1.0));
        assert_eq!(
            warnings,
            ["slow_destination_concurrency_negative_feedback: ignoring malformed or unreasonable feedback: 7"]
        );
        let other = table.get("lmtp");
        assert_eq!(
            (
                other.window.limit,
                other.window.initial,
                other.recipient_limit
            ),
            (10, 5, 50)
        );
    }

    #[test]
    fn bad_numbers_name_the_line() {
        let main = main_cf("x = 1\nsmtp_destination_recipient_limit = lots\n");
        let err = TransportParams::from_config(&main, "smtp", None, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/sluice/main.cf:2: bad numerical configuration: smtp_destination_recipient_limit = lots"
        );
    }

    #[test]
    fn resolver_parameters() {
        let dir = std::env::temp_dir().join(format!("sluice-qmgr-params-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("transport"), "example.org smtp:[mx.example.org]\n").unwrap();
        std::fs::write(
            dir.join("virtual"),
            "alias.example anything\nuser@alias.example jane\n",
        )
        .unwrap();
        let text = format!(
            "relayhost = [smart.example]\ntransport_maps = texthash:{d}/transport\nvirtual_alias_maps = hash:{d}/virtual\nrecipient_delimiter = +\n",
            d = dir.display()
        );
        let config = load(&text, "").unwrap();
        let (p, warnings) = resolve_params(&config.main, &config.params).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.relayhost, "[smart.example]");
        assert_eq!(p.virtual_alias_domains, ["alias.example"]);
        assert_eq!(
            p.local_transport,
            format!("local:{}", config.params.myhostname)
        );
        assert_eq!(
            (p.default_transport.as_str(), p.relay_transport.as_str()),
            ("smtp", "relay")
        );
        assert_eq!(p.virtual_transport, "virtual");
        assert_eq!(p.empty_address_recipient, "MAILER-DAEMON");
        assert_eq!(p.recipient_delimiter, "+");
        let r = sluice_agents::resolve::resolve(&p, "a@example.org");
        assert_eq!(r.destination.to_string(), "smtp:[mx.example.org]");
        let r = sluice_agents::resolve::resolve(&p, "a@alias.example");
        assert!(r.error.is_some());
        std::fs::remove_dir_all(&dir).ok();

        let config = load("transport_maps = hash:/nonexistent/transport\n", "").unwrap();
        let err = resolve_params(&config.main, &config.params)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/etc/sluice/main.cf:1: transport_maps: open database /nonexistent/transport: "
            ),
            "{err}"
        );
    }
}
