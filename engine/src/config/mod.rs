//! Sluice's configuration, in Postfix's syntax: `main.cf` (parameters with
//! `$name` expansion) and the listener part of `master.cf`.
//!
//! This module owns reading both files, the parameter registry with
//! Postfix's defaults, and the typed, checked view that the engine runs on
//! ([`Config`]). It is plain std: no executor, no sockets (address
//! resolution for listeners uses the blocking resolver, once, at load).
//!
//! ```no_run
//! let config = sluice_engine::config::load(std::path::Path::new("/etc/sluice"))?;
//! for l in &config.listeners {
//!     println!("{} {} -> {}", l.service, l.addr, l.command);
//! }
//! # Ok::<(), sluice_engine::config::ConfigError>(())
//! ```
//!
//! **Built-in defaults.** When `DIR/main.cf` does not exist, [`EMBEDDED_MAIN_CF`]
//! serves instead: a private test instance (queue `./sluice-queue`, loopback
//! only). When `DIR/master.cf` does not exist, the listener is
//! `127.0.0.1:2525` with the built-in main.cf ([`EMBEDDED_MASTER_CF`]), and
//! `2525` on every inet_interfaces address with a real main.cf
//! ([`DEFAULT_MASTER_CF`]): port 2525, not 25, so that an unprivileged
//! `sluice` works out of the box; a real master.cf says `smtp inet …`.
//!
//! **Warnings** (unknown parameters, duplicate services) are collected in
//! [`Config::warnings`] without a program prefix; the caller logs them as
//! `sluice: warning: <text>`.

mod cidr;
mod defaults;
pub mod edit;
mod expand;
mod header_rewrite;
mod host;
mod maincf;
mod mastercf;
mod params;
mod sasl;
mod support;
mod typed;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use cidr::{Cidr, CidrError};
pub use expand::{ExpandError, MAX_EXPANSION, MAX_EXPANSION_STEPS, MAX_NESTING};
pub use header_rewrite::HeaderRewriteClients;
pub use host::{HostFacts, InterfaceAddr};
pub use maincf::{MainCf, Origin, RawEntry};
pub use mastercf::{parse as parse_master_cf, MasterService, Protocols};
pub use params::{
    param, parse_bool, parse_int, parse_size, parse_time, split_list, Kind, Param, Status, PARAMS,
};
pub use sasl::{LoginMaps, SaslParams};
pub use typed::{ClientLimits, MainParams, SmtpdParams};

use crate::smtpd_check;

/// The main.cf used when `DIR/main.cf` does not exist.
pub const EMBEDDED_MAIN_CF: &str = "\
# Sluice's built-in main.cf, used when the configuration directory has none:
# a private instance on loopback that keeps its queue in ./sluice-queue.
queue_directory = sluice-queue
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8 [::1]/128
";

/// The master.cf used with the built-in main.cf when master.cf is missing.
pub const EMBEDDED_MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:2525 inet n -       n       -       -       smtpd
";

/// The master.cf used with a real main.cf when master.cf is missing: SMTP
/// on port 2525 of every inet_interfaces address.
pub const DEFAULT_MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
2525      inet  n       -       n       -       -       smtpd
";

/// A configuration that cannot be used. Display: `file:line: what`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {what}")]
    Syntax { origin: Origin, what: String },
    /// A parameter that is set but not implemented, and that Sluice will
    /// not run without (see [`Status::Refused`]).
    #[error("{0}")]
    NotImplemented(Refusal),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A setting Sluice will not run with. Display: `file:line: what`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {what}")]
pub struct Refusal {
    pub origin: Origin,
    pub what: String,
}

/// One socket to listen on, from an `inet` master.cf service running
/// `smtpd`.
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    /// An IPv6 address must be bound with IPV6_V6ONLY, so that `[::]` and
    /// `0.0.0.0` on the same port are two sockets, as in Postfix.
    pub addr: SocketAddr,
    /// The master.cf service field (`smtp`, `127.0.0.1:2525`).
    pub service: String,
    /// Always `smtpd` for now (other inet commands are not listeners yet).
    pub command: String,
    /// The service's `-o` overrides, as written.
    pub overrides: Vec<(String, String)>,
    /// main.cf's smtpd parameters with this service's overrides applied.
    pub smtpd: SmtpdParams,
    /// Sessions the service may hold at once: master.cf maxproc, else
    /// default_process_limit (100); 0 = no limit. One service's addresses
    /// share it (see `crate::smtpd_limit`).
    pub process_limit: u32,
}

/// Everything loaded from one configuration directory.
#[derive(Clone, Debug)]
pub struct Config {
    pub config_dir: PathBuf,
    /// Raw values and expansion (`postconf`).
    pub main: MainCf,
    pub params: MainParams,
    pub listeners: Vec<Listener>,
    /// Every master.cf service, listeners or not (`postconf -M`).
    pub master: Vec<MasterService>,
    pub warnings: Vec<String>,
    /// Parameters set but not implemented that Sluice will not run
    /// without: `check`, `start` and `reload` refuse while there are any
    /// ([`Config::runnable`]); other commands still work.
    pub refusals: Vec<Refusal>,
    /// main.cf did not exist; [`EMBEDDED_MAIN_CF`] was used.
    pub embedded: bool,
    /// master.cf did not exist; a built-in one was used.
    pub master_embedded: bool,
}

/// Loads `config_dir/main.cf` and `config_dir/master.cf` (or the built-in
/// defaults) and checks them.
pub fn load(config_dir: &Path) -> Result<Config, ConfigError> {
    load_with(config_dir, &HostFacts::probe())
}

/// [`load`], then [`Config::runnable`]: for a daemon (re)reading its
/// configuration.
pub fn load_runnable(config_dir: &Path) -> Result<Config, ConfigError> {
    let config = load(config_dir)?;
    config.runnable()?;
    Ok(config)
}

impl Config {
    /// Whether the daemon may run on this configuration: the first
    /// refusal, if any (all of them are in [`Config::refusals`]).
    pub fn runnable(&self) -> Result<(), ConfigError> {
        match self.refusals.first() {
            None => Ok(()),
            Some(r) => Err(ConfigError::NotImplemented(r.clone())),
        }
    }
}

/// [`load`] with given machine facts (tests, simulators).
pub fn load_with(config_dir: &Path, facts: &HostFacts) -> Result<Config, ConfigError> {
    let main_path = config_dir.join("main.cf");
    let master_path = config_dir.join("master.cf");
    let main_text = read_optional(&main_path)?;
    let master_text = read_optional(&master_path)?;
    let cwd = std::env::current_dir().map_err(|source| ConfigError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    let embedded = main_text.is_none();
    let master_embedded = master_text.is_none();
    let main_text = main_text.unwrap_or_else(|| EMBEDDED_MAIN_CF.to_string());
    let master_text = master_text.unwrap_or_else(|| {
        if embedded {
            EMBEDDED_MASTER_CF.to_string()
        } else {
            DEFAULT_MASTER_CF.to_string()
        }
    });
    let main_name = if embedded {
        PathBuf::from("(built-in main.cf)")
    } else {
        main_path
    };
    let master_name = if master_embedded {
        PathBuf::from("(built-in master.cf)")
    } else {
        master_path
    };
    let mut config = from_text(
        config_dir,
        (&main_text, &main_name),
        (&master_text, &master_name),
        facts,
        &cwd,
    )?;
    config.embedded = embedded;
    config.master_embedded = master_embedded;
    Ok(config)
}

/// Builds a [`Config`] from main.cf and master.cf texts (each with the name
/// used in messages). Relative paths are resolved against `cwd`.
pub fn from_text(
    config_dir: &Path,
    main: (&str, &Path),
    master: (&str, &Path),
    facts: &HostFacts,
    cwd: &Path,
) -> Result<Config, ConfigError> {
    let (mut main_cf, mut warnings) = MainCf::parse(main.0, main.1)?;
    defaults::compute(&mut main_cf, facts, config_dir, &mut warnings)?;
    // Every value that is set must expand, known parameter or not: a typo
    // in a `${…}` should stop start-up, not surface in a session.
    for entry in main_cf.raw_entries() {
        main_cf.try_get(&entry.name)?;
    }
    let master_services = mastercf::parse(master.0, master.1, &mut warnings)?;
    let params = MainParams::from_main(&main_cf, facts, cwd, &mut warnings)?;
    let listeners = listeners(&main_cf, &params, &master_services, &mut warnings)?;
    warnings.extend(unused_parameter_warnings(
        &main_cf,
        &master_services,
        master.1,
    ));
    warnings.extend(undefined_parameter_warnings(
        &main_cf,
        &master_services,
        master.1,
    ));
    let support = support::check(&main_cf, &master_services);
    warnings.extend(support.warnings);
    Ok(Config {
        config_dir: config_dir.to_path_buf(),
        main: main_cf,
        params,
        listeners,
        master: master_services,
        warnings,
        refusals: support.refusals,
        embedded: false,
        master_embedded: false,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// One [`Listener`] per address of every `inet` service whose command is
/// `smtpd` (the only server the engine runs so far; other inet services
/// are kept in [`Config::master`] and get a warning).
fn listeners(
    main: &MainCf,
    params: &MainParams,
    services: &[MasterService],
    warnings: &mut Vec<String>,
) -> Result<Vec<Listener>, ConfigError> {
    let default_addrs = mastercf::interface_addrs(&params.inet_interfaces, params.inet_protocols)
        .map_err(|what| ConfigError::Syntax {
        origin: main.origin("inet_interfaces"),
        what: format!("inet_interfaces: {what}"),
    })?;
    let mut out: Vec<Listener> = Vec::new();
    let mut owner: Vec<(SocketAddr, &MasterService)> = Vec::new();
    for svc in services.iter().filter(|s| s.service_type == "inet") {
        if svc.command != "smtpd" {
            warnings.push(format!(
                "{}: service {}/inet: command {} is not implemented yet; not listening",
                svc.origin, svc.service, svc.command
            ));
            continue;
        }
        let fail = |what: String| ConfigError::Syntax {
            origin: svc.origin.clone(),
            what,
        };
        let addrs = mastercf::service_addrs(&svc.service, &default_addrs, params.inet_protocols)
            .map_err(|e| fail(format!("service {}: {e}", svc.service)))?;
        if addrs.is_empty() {
            return Err(fail(format!(
                "service {}: no address to listen on (see inet_interfaces and inet_protocols)",
                svc.service
            )));
        }
        let overlay = main.with_overrides(&svc.overrides, &svc.origin);
        let smtpd = SmtpdParams::from_main(&overlay)?;
        let process_limit = match svc.maxproc {
            Some(n) => n,
            None => main.get_number("default_process_limit", 0)?,
        };
        if !smtpd_check::relay_control_present(
            &smtpd.relay_restrictions,
            &smtpd.recipient_restrictions,
        ) {
            let origin = ["smtpd_recipient_restrictions", "smtpd_relay_restrictions"]
                .iter()
                .find(|n| overlay.is_set(n))
                .map(|n| overlay.origin(n))
                .unwrap_or_else(|| svc.origin.clone());
            return Err(ConfigError::Syntax {
                origin,
                what: smtpd_check::RELAY_REQUIRED.to_string(),
            });
        }
        for addr in addrs {
            if let Some((_, other)) = owner.iter().find(|(a, _)| *a == addr) {
                return Err(fail(format!(
                    "service {}: address {addr} is already used by service {} at {}",
                    svc.service, other.service, other.origin
                )));
            }
            owner.push((addr, svc));
            out.push(Listener {
                addr,
                service: svc.service.clone(),
                command: svc.command.clone(),
                overrides: svc.overrides.clone(),
                smtpd: smtpd.clone(),
                process_limit,
            });
        }
    }
    Ok(out)
}

/// Postfix's "unused parameter" warnings: a name that Sluice does not know
/// is fine when a known parameter's value (in main.cf or a `-o`) refers to
/// it, directly or through other such names, or when it names a
/// restriction class.
fn unused_parameter_warnings(
    main: &MainCf,
    services: &[MasterService],
    master_path: &Path,
) -> Vec<String> {
    let known = |n: &str| params::param(n).is_some();
    let mut used: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    let note = |value: &str, pending: &mut Vec<String>| {
        pending.extend(expand::referenced_names(value));
    };
    for e in main.raw_entries().iter().filter(|e| known(&e.name)) {
        note(&e.value, &mut pending);
    }
    for (name, value) in services.iter().flat_map(|s| &s.overrides) {
        if known(name) {
            note(value, &mut pending);
        }
    }
    if let Some(classes) = main.get("smtpd_restriction_classes") {
        pending.extend(split_list(&classes));
    }
    while let Some(name) = pending.pop() {
        if known(&name) || !used.insert(name.clone()) {
            continue;
        }
        if let Some(e) = main.raw(&name) {
            note(&e.value, &mut pending);
        }
        for (n, value) in services.iter().flat_map(|s| &s.overrides) {
            if *n == name {
                note(value, &mut pending);
            }
        }
    }
    let mut warnings = Vec::new();
    for e in main.raw_entries() {
        if !known(&e.name) && !used.contains(&e.name) {
            warnings.push(format!(
                "{}: unused parameter: {}={}",
                main.path().display(),
                e.name,
                e.value
            ));
        }
    }
    for (name, value) in services.iter().flat_map(|s| &s.overrides) {
        if !known(name) && !used.contains(name) {
            warnings.push(format!(
                "{}: unused parameter: {name}={value}",
                master_path.display()
            ));
        }
    }
    warnings
}

/// Postfix's "undefined parameter" warnings: a `$name` in a main.cf value
/// or a master.cf `-o` that neither file sets and that has no default
/// (it expands to empty). Once per file and name.
fn undefined_parameter_warnings(
    main: &MainCf,
    services: &[MasterService],
    master_path: &Path,
) -> Vec<String> {
    let in_master = |n: &str| {
        services
            .iter()
            .flat_map(|s| &s.overrides)
            .any(|(name, _)| name == n)
    };
    let defined = |n: &str| (main.raw_value(n).is_some() || in_master(n)).then(String::new);
    let mut warnings = Vec::new();
    let mut report = |file: &Path, values: Vec<&String>| {
        let mut seen: Vec<String> = Vec::new();
        for value in values {
            for name in expand::undefined_names(value, &defined) {
                if !seen.contains(&name) {
                    warnings.push(format!("{}: undefined parameter: {name}", file.display()));
                    seen.push(name);
                }
            }
        }
    };
    report(
        main.path(),
        main.raw_entries().iter().map(|e| &e.value).collect(),
    );
    report(
        master_path,
        services
            .iter()
            .flat_map(|s| &s.overrides)
            .map(|(_, v)| v)
            .collect(),
    );
    warnings
}

#[cfg(test)]
mod support_tests;
#[cfg(test)]
mod tests;
