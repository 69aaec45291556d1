//! Honest configuration: every parameter that main.cf or a master.cf `-o`
//! sets to something other than its default is checked against what
//! Sluice implements ([`Status`] in the registry).
//!
//! - Not implemented ([`Status::Ignored`]): a warning, at every load.
//! - Not implemented, and running without it would weaken security or
//!   change where mail goes ([`Status::Refused`]): a refusal, which
//!   `sluice check`, `start`, `start-fg` and `reload` turn into a fatal
//!   error (other commands, such as `stop` or `postqueue`, still run).
//! - Implemented instance-wide, set with `-o` on one service: a warning
//!   ([`Status::Instance`]) or a refusal ([`Status::Guarded`]), since
//!   main.cf's value would be used in its place.
//!
//! Values are compared after expansion and, for typed parameters, after
//! conversion, so `soft_bounce = no` or `alias_maps = hash:/etc/aliases`
//! (a default written out) says nothing. Pure: no I/O.

use super::maincf::{MainCf, Origin};
use super::mastercf::MasterService;
use super::params::{self, Kind, Param, Status};
use super::Refusal;

/// What [`check`] found: warnings (text without a program prefix) and
/// refusals.
#[derive(Debug, Default)]
pub(super) struct Findings {
    pub warnings: Vec<String>,
    pub refusals: Vec<Refusal>,
}

/// Values other than the default that mean the same: "none" is the empty
/// TLS security level.
const SAME_AS_DEFAULT: &[(&str, &str)] = &[
    ("smtpd_tls_security_level", "none"),
    ("smtp_tls_security_level", "none"),
];

/// Checks main.cf's settings and every running service's `-o` overrides.
/// An `inet` service whose command is not `smtpd` is skipped: it does not
/// run (load warns about it already).
pub(super) fn check(main: &MainCf, services: &[MasterService]) -> Findings {
    let mut found = Findings::default();
    for entry in main.raw_entries() {
        let Some(p) = params::param(&entry.name) else {
            continue;
        };
        if !same_as_default(main, p, &entry.name) {
            not_implemented(&mut found, p, &entry.name, &entry.origin, "");
        }
    }
    for svc in services {
        let listener = svc.service_type == "inet" && svc.command == "smtpd";
        if svc.service_type == "inet" && !listener {
            continue;
        }
        let overlay = main.with_overrides(&svc.overrides, &svc.origin);
        let prefix = format!("service {}/{}: ", svc.service, svc.service_type);
        for (name, _) in &svc.overrides {
            let Some(p) = params::param(name) else {
                continue;
            };
            let changed = || overlay.get(name) != main.get(name);
            let origin = &svc.origin;
            match p.status {
                Status::Ignored(_) | Status::Refused(_) => {
                    if !same_as_default(&overlay, p, name) {
                        not_implemented(&mut found, p, name, origin, &prefix);
                    }
                }
                Status::Listener if listener => {}
                Status::Listener if changed() => found.warnings.push(format!(
                    "{origin}: {prefix}parameter {name} applies to smtpd services only; it has no effect here"
                )),
                Status::Instance if changed() => found.warnings.push(format!(
                    "{origin}: {prefix}parameter {name} cannot be set per service yet; main.cf's value is used"
                )),
                Status::Guarded if changed() => found.refusals.push(Refusal {
                    origin: origin.clone(),
                    what: format!(
                        "{prefix}parameter {name} cannot be set per service yet; refusing to run with main.cf's value in its place (it decides who may relay or where mail goes)"
                    ),
                }),
                Status::Listener | Status::Instance | Status::Guarded => {}
            }
        }
    }
    found
}

fn not_implemented(found: &mut Findings, p: &Param, name: &str, origin: &Origin, prefix: &str) {
    match p.status {
        Status::Ignored(why) => found.warnings.push(format!(
            "{origin}: {prefix}parameter {name} is not implemented; it has no effect ({why})"
        )),
        Status::Refused(why) => found.refusals.push(Refusal {
            origin: origin.clone(),
            what: format!(
                "{prefix}parameter {name} is not implemented yet; refusing to run without it ({why})"
            ),
        }),
        Status::Instance | Status::Guarded | Status::Listener => {}
    }
}

/// Whether `name`'s effective value in `cf` means the same as its
/// default (expanded in `cf` too). A value that does not expand or
/// convert is not the default.
fn same_as_default(cf: &MainCf, p: &Param, name: &str) -> bool {
    let Ok(Some(value)) = cf.try_get(name) else {
        return false;
    };
    if SAME_AS_DEFAULT.contains(&(name, value.trim())) {
        return true;
    }
    let Some(default) = cf.default_raw(name).and_then(|d| cf.expand(&d).ok()) else {
        return false;
    };
    fn same<T: PartialEq, E>(f: impl Fn(&str) -> Result<T, E>, a: &str, b: &str) -> bool {
        matches!((f(a), f(b)), (Ok(x), Ok(y)) if x == y)
    }
    match p.kind {
        Kind::Str => value.trim() == default.trim(),
        Kind::List => params::split_list(&value) == params::split_list(&default),
        Kind::Bool => same(params::parse_bool, &value, &default),
        Kind::Int => same(params::parse_int, &value, &default),
        Kind::Size => same(params::parse_size, &value, &default),
        Kind::Time(unit) => same(|v| params::parse_time(v, unit), &value, &default),
    }
}
