//! master.cf parsing (`engine/src/config/mastercf.rs`), then the loader
//! that turns its services into listeners (`config::from_text`, with a
//! fixed loopback main.cf and fixed host facts).
//!
//! Input layout: the whole input is master.cf's text (invalid UTF-8 shown
//! as U+FFFD).
//!
//! Checked: no panic; a syntax error names `master.cf:N` with `N` a line
//! of the file; every service has its eight fields, a known type and a
//! line of the file; its `-o` overrides have names; the smtpd parameters
//! with a service's overrides applied convert or fail naming a file; and
//! the whole loader fails, if it does, naming a file. The loader step is
//! skipped when a service's address names a host (it would be resolved).

use std::net::IpAddr;
use std::path::Path;

use sluice_engine::config::{
    from_text, parse_master_cf, HostFacts, MainCf, MasterService, SmtpdParams,
};

use crate::main_cf::check_origin;

/// Where the harness says master.cf is.
pub const PATH: &str = "/etc/sluice/master.cf";
const MAIN_PATH: &str = "/etc/sluice/main.cf";

/// The main.cf the loader step runs with: loopback, nothing to resolve.
const MAIN_CF: &str = "\
queue_directory = /var/spool/sluice
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8
";

/// Whether loading `svc` would resolve a host name (`host:port`).
fn names_a_host(svc: &MasterService) -> bool {
    if svc.service_type != "inet" {
        return false;
    }
    let host = match svc.service.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(h, _)| h),
        None => svc.service.rsplit_once(':').map(|(h, _)| h),
    };
    host.is_some_and(|h| h.parse::<IpAddr>().is_err())
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let mut warnings = Vec::new();
    let services = match parse_master_cf(&text, Path::new(PATH), &mut warnings) {
        Ok(services) => services,
        Err(e) => {
            check_origin(&e, PATH, lines);
            return;
        }
    };
    let (main, _) = MainCf::parse(MAIN_CF, Path::new(MAIN_PATH)).expect("the fixed main.cf");
    for svc in &services {
        assert!(
            !svc.service.is_empty() && !svc.command.is_empty(),
            "{svc:?}"
        );
        assert!(
            ["inet", "unix", "unix-dgram", "fifo", "pass"].contains(&svc.service_type.as_str()),
            "{svc:?}"
        );
        assert!(svc.origin.line.is_some_and(|n| (1..=lines).contains(&n)));
        assert!(svc.overrides.iter().all(|(name, _)| !name.is_empty()));
        let overlay = main.with_overrides(&svc.overrides, &svc.origin);
        if let Err(e) = SmtpdParams::from_main(&overlay) {
            let text = e.to_string();
            assert!(
                text.starts_with(PATH) || text.starts_with(MAIN_PATH),
                "{text}"
            );
        }
    }
    if services.iter().any(names_a_host) {
        return;
    }
    let dir = Path::new("/etc/sluice");
    let facts = HostFacts::for_tests();
    let main_text = (MAIN_CF, Path::new(MAIN_PATH));
    if let Err(e) = from_text(dir, main_text, (&text, Path::new(PATH)), &facts, dir) {
        let text = e.to_string();
        assert!(
            text.starts_with(PATH) || text.starts_with(MAIN_PATH),
            "{text}"
        );
    }
}
