//! main.cf parsing (`engine/src/config/maincf.rs`) and `$name` expansion
//! (`engine/src/config/expand.rs`).
//!
//! Input layout: the whole input is main.cf's text (invalid UTF-8 shown
//! as U+FFFD, as a lossy read would).
//!
//! Checked: no panic; a syntax error names `main.cf:N` with `N` a line of
//! the file; every value that is set either expands or fails naming the
//! line that set it; expansion stays bounded (output no longer than
//! `MAX_EXPANSION`, however the values refer to each other); and every
//! parameter Sluice knows converts to its type or fails naming the file.
//! Nothing here reads a file or resolves a name (the typed view that
//! does, `MainParams`, is left to the master.cf target's fixed main.cf).

use std::path::Path;

use sluice_engine::config::{ConfigError, Kind, MainCf, SmtpdParams, MAX_EXPANSION, PARAMS};

/// Where the harness says main.cf is.
pub const PATH: &str = "/etc/sluice/main.cf";

/// Asserts that `e` names `PATH`, with a line in `1..=lines` if any.
pub fn check_origin(e: &ConfigError, path: &str, lines: usize) {
    let text = e.to_string();
    let Some(rest) = text.strip_prefix(path) else {
        panic!("error does not name {path}: {text}");
    };
    if let Some(line) = rest.strip_prefix(':').and_then(|r| r.split_once(':')) {
        if let Ok(n) = line.0.parse::<usize>() {
            assert!((1..=lines).contains(&n), "line {n} of {lines}: {text}");
        }
    }
}

/// The target: see the module docs for the input layout.
pub fn run(data: &[u8]) {
    if data.len() > crate::MAX_INPUT {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let main = match MainCf::parse(&text, Path::new(PATH)) {
        Ok((main, _warnings)) => main,
        Err(e) => {
            check_origin(&e, PATH, lines);
            return;
        }
    };
    for entry in main.raw_entries() {
        match main.try_get(&entry.name) {
            Ok(value) => {
                let value = value.expect("a value that is set");
                assert!(value.len() <= MAX_EXPANSION, "{} bytes", value.len());
            }
            Err(e) => {
                assert!(
                    e.to_string().starts_with(&entry.origin.to_string()),
                    "{e} does not name {}",
                    entry.origin
                );
            }
        }
    }
    for param in PARAMS {
        let result = match param.kind {
            Kind::Str => main.get_str(param.name).map(drop),
            Kind::Int => main.get_int(param.name).map(drop),
            Kind::Bool => main.get_bool(param.name).map(drop),
            Kind::Time(_) => main.get_time(param.name).map(drop),
            Kind::Size => main.get_size(param.name).map(drop),
            Kind::List => main.get_list(param.name).map(drop),
        };
        if let Err(e) = result {
            check_origin(&e, PATH, lines);
        }
    }
    if let Err(e) = SmtpdParams::from_main(&main) {
        check_origin(&e, PATH, lines);
    }
}
