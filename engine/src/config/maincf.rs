//! main.cf: the reader (logical lines, `name = value`, last definition
//! wins), the raw values with where they came from, and lookups that expand
//! `$name` against main.cf, then the machine's computed defaults, then the
//! registry's defaults.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::expand::{self, ExpandError};
use super::params::{self, PARAMS};
use super::ConfigError;

/// Where a value came from: `file:line`, or just `file` for defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl Origin {
    pub fn new(file: &Path, line: usize) -> Origin {
        Origin {
            file: file.to_path_buf(),
            line: Some(line),
        }
    }

    pub fn file(file: &Path) -> Origin {
        Origin {
            file: file.to_path_buf(),
            line: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}:{n}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One `name = value` as written (value unexpanded, whitespace trimmed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

/// A parsed main.cf (possibly with master.cf `-o` overrides layered on top).
#[derive(Clone, Debug)]
pub struct MainCf {
    path: PathBuf,
    /// The effective entries: the last definition of each name, in the
    /// order of those definitions in the file (`postconf -n` material).
    entries: Vec<RawEntry>,
    index: HashMap<String, usize>,
    /// Defaults that depend on the machine or on the directory loaded
    /// (myhostname, mydomain, mynetworks, config_directory).
    computed: HashMap<&'static str, String>,
}

impl MainCf {
    /// Reads main.cf text. `path` is used in messages only. Returns the
    /// warnings too (a continuation line with nothing to continue).
    pub fn parse(text: &str, path: &Path) -> Result<(MainCf, Vec<String>), ConfigError> {
        let mut cf = MainCf {
            path: path.to_path_buf(),
            entries: Vec::new(),
            index: HashMap::new(),
            computed: HashMap::new(),
        };
        let mut warnings = Vec::new();
        for (line, logical) in logical_lines(text, path, &mut warnings) {
            let origin = Origin::new(path, line);
            let (name, value) = split_nameval(&logical).map_err(|what| ConfigError::Syntax {
                origin: origin.clone(),
                what: what.to_string(),
            })?;
            cf.set(name, value, origin);
        }
        Ok((cf, warnings))
    }

    /// Sets (or replaces) one parameter; the new definition wins.
    pub fn set(&mut self, name: &str, value: &str, origin: Origin) {
        let entry = RawEntry {
            name: name.to_string(),
            value: value.to_string(),
            origin,
        };
        if let Some(old) = self.index.remove(name) {
            self.entries.remove(old);
            for i in self.index.values_mut() {
                if *i > old {
                    *i -= 1;
                }
            }
        }
        self.index.insert(entry.name.clone(), self.entries.len());
        self.entries.push(entry);
    }

    /// A copy with `overrides` (master.cf `-o name=value`) on top.
    pub fn with_overrides(&self, overrides: &[(String, String)], origin: &Origin) -> MainCf {
        let mut cf = self.clone();
        for (name, value) in overrides {
            cf.set(name, value, origin.clone());
        }
        cf
    }

    pub(crate) fn set_computed_default(&mut self, name: &'static str, value: String) {
        self.computed.insert(name, value);
    }

    /// The file this was read from (or would have been).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The expanded effective value: main.cf's, else the default; `None`
    /// for a name that is neither set nor known, or whose value does not
    /// expand (load rejects those for every name that is set).
    pub fn get(&self, name: &str) -> Option<String> {
        self.try_get(name).ok().flatten()
    }

    /// Like [`MainCf::get`], reporting an expansion error with its origin.
    pub fn try_get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let Some(raw) = self.raw_value(name) else {
            return Ok(None);
        };
        self.expand(&raw)
            .map(Some)
            .map_err(|e| ConfigError::Syntax {
                origin: self.origin(name),
                what: format!("parameter {name}: {e}"),
            })
    }

    /// Expands `$name` references in `text` against this configuration.
    pub fn expand(&self, text: &str) -> Result<String, ExpandError> {
        let lookup = |n: &str| self.raw_value(n);
        expand::expand(text, &lookup)
    }

    /// The unexpanded value: main.cf's, else the default.
    pub fn raw_value(&self, name: &str) -> Option<String> {
        #[cfg(test)]
        read_log::note(name);
        if let Some(&i) = self.index.get(name) {
            return Some(self.entries[i].value.clone());
        }
        self.default_raw(name)
    }

    /// The unexpanded default (`postconf -d`), computed ones included.
    pub fn default_raw(&self, name: &str) -> Option<String> {
        if let Some(v) = self.computed.get(name) {
            return Some(v.clone());
        }
        params::param(name).map(|p| p.default.to_string())
    }

    /// Whether main.cf (or an override) sets `name`.
    pub fn is_set(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The effective definition of `name`, if set.
    pub fn raw(&self, name: &str) -> Option<&RawEntry> {
        self.index.get(name).map(|&i| &self.entries[i])
    }

    /// The effective definitions, in file order (`postconf -n`).
    pub fn raw_entries(&self) -> &[RawEntry] {
        &self.entries
    }

    /// Every parameter name Sluice knows, sorted.
    pub fn known_names() -> impl Iterator<Item = &'static str> {
        PARAMS.iter().map(|p| p.name)
    }

    /// Where `name`'s value comes from: its definition, else the file.
    pub fn origin(&self, name: &str) -> Origin {
        self.raw(name)
            .map(|e| e.origin.clone())
            .unwrap_or_else(|| Origin::file(&self.path))
    }

    /// Expands and converts one parameter; a bad value is reported as
    /// `file:line: <problem>: name = value`.
    pub(crate) fn typed<T>(
        &self,
        name: &str,
        convert: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Result<T, ConfigError> {
        let value = self.try_get(name)?.unwrap_or_default();
        convert(&value).map_err(|problem| ConfigError::Syntax {
            origin: self.origin(name),
            what: format!("{problem}: {name} = {value}"),
        })
    }
}

/// Test instrumentation: which parameters the code reads (every read,
/// typed or by `$name` expansion, goes through [`MainCf::raw_value`]).
/// Per thread, so that parallel tests do not mix.
#[cfg(test)]
pub(crate) mod read_log {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local!(static LOG: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) });

    pub(crate) fn start() {
        LOG.with(|l| *l.borrow_mut() = Some(BTreeSet::new()));
    }

    /// The names read since [`start`]; stops recording.
    pub(crate) fn take() -> BTreeSet<String> {
        LOG.with(|l| l.borrow_mut().take().unwrap_or_default())
    }

    pub(super) fn note(name: &str) {
        LOG.with(|l| {
            if let Some(set) = l.borrow_mut().as_mut() {
                set.insert(name.to_string());
            }
        });
    }
}

/// Splits text into logical lines (Postfix's readlline): blank lines and
/// lines whose first non-blank character is `#` are skipped; a line that
/// starts with whitespace continues the previous one. Yields the number of
/// each logical line's first physical line.
fn logical_lines(text: &str, path: &Path, warnings: &mut Vec<String>) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = line.starts_with(|c: char| c.is_ascii_whitespace());
        match out.last_mut() {
            Some((_, logical)) if continues => logical.push_str(line),
            _ if continues => warnings.push(format!(
                "{}:{}: logical line must not start with whitespace: \"{}\"",
                path.display(),
                n + 1,
                truncate30(line)
            )),
            _ => out.push((n + 1, line.to_string())),
        }
    }
    out
}

fn truncate30(s: &str) -> String {
    match s.char_indices().nth(30) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// `name = value` → (name, value), both trimmed (Postfix's split_nameval).
fn split_nameval(line: &str) -> Result<(&str, &str), &'static str> {
    let s = line.trim_start();
    if s.is_empty() || s.starts_with('=') {
        return Err("missing parameter name");
    }
    let name_end = s
        .find(|c: char| c.is_ascii_whitespace() || c == '=')
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(name_end);
    let rest = rest
        .trim_start()
        .strip_prefix('=')
        .ok_or("missing '=' after parameter name")?;
    Ok((name, rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> MainCf {
        MainCf::parse(text, Path::new("/etc/sluice/main.cf"))
            .unwrap()
            .0
    }

    #[test]
    fn reader_table() {
        let cf = parse(concat!(
            "# a comment\n",
            "\n",
            "myhostname = mx.example.com\n",
            "   # an indented comment is a comment too\n",
            "mydestination = $myhostname,\n",
            "    localhost\n",
            "\tother.example\n",
            "relay_domains=a.example   \n",
            "smtpd_banner = $myhostname # not a comment\n",
            "myhostname = mx2.example.com\n",
            "empty =\n",
            "crlf = yes\r\n",
        ));
        let raw: Vec<(&str, &str, usize)> = cf
            .raw_entries()
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.origin.line.unwrap()))
            .collect();
        assert_eq!(
            raw,
            [
                (
                    "mydestination",
                    "$myhostname,    localhost\tother.example",
                    5
                ),
                ("relay_domains", "a.example", 8),
                ("smtpd_banner", "$myhostname # not a comment", 9),
                ("myhostname", "mx2.example.com", 10),
                ("empty", "", 11),
                ("crlf", "yes", 12),
            ]
        );
        assert_eq!(cf.get("myhostname").as_deref(), Some("mx2.example.com"));
        assert_eq!(
            cf.get("smtpd_banner").as_deref(),
            Some("mx2.example.com # not a comment")
        );
        assert_eq!(
            cf.raw("myhostname").unwrap().origin.to_string(),
            "/etc/sluice/main.cf:10"
        );
    }

    #[test]
    fn defaults_and_lookup_order() {
        let mut cf = parse("mail_name = Test\n");
        cf.set_computed_default("myhostname", "host.example".into());
        assert_eq!(
            cf.get("smtpd_banner").as_deref(),
            Some("host.example ESMTP Test")
        );
        assert!(cf.is_set("mail_name"));
        assert!(!cf.is_set("smtpd_banner"));
        assert_eq!(cf.get("smtpd_timeout").as_deref(), Some("300s"));
        assert_eq!(cf.get("smtpd_hard_error_limit").as_deref(), Some("20"));
        assert_eq!(cf.get("no_such_parameter"), None);
        assert_eq!(
            cf.default_raw("smtpd_timeout").as_deref(),
            Some("${stress?{10}:{300}}s")
        );
        let with = cf.with_overrides(
            &[("stress".into(), "yes".into())],
            &Origin::new(Path::new("/etc/sluice/master.cf"), 3),
        );
        assert_eq!(with.get("smtpd_timeout").as_deref(), Some("10s"));
        assert_eq!(with.origin("stress").to_string(), "/etc/sluice/master.cf:3");
        assert!(MainCf::known_names().any(|n| n == "mynetworks"));
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let path = Path::new("/etc/sluice/main.cf");
        let err = MainCf::parse("a = 1\n\n# c\nthis is wrong\n", path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/sluice/main.cf:4: missing '=' after parameter name"
        );
        let err = MainCf::parse("= value\n", path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/sluice/main.cf:1: missing parameter name"
        );
    }

    #[test]
    fn leading_continuation_is_a_warning() {
        let (cf, warnings) =
            MainCf::parse("  orphan = 1\na = 2\n", Path::new("/x/main.cf")).unwrap();
        assert_eq!(
            warnings,
            ["/x/main.cf:1: logical line must not start with whitespace: \"  orphan = 1\""]
        );
        assert_eq!(cf.raw_entries().len(), 1);
    }

    #[test]
    fn expansion_errors_carry_the_origin() {
        let cf = parse("a = $b\nb = $a\n");
        assert_eq!(
            cf.try_get("a").unwrap_err().to_string(),
            "/etc/sluice/main.cf:1: parameter a: unreasonable macro call nesting: \"b\""
        );
        assert_eq!(cf.get("a"), None);
    }

    #[test]
    fn typed_errors() {
        let cf = parse("x\n = 1\nmessage_size_limit = 10m\n");
        let err = cf
            .typed("message_size_limit", params::parse_int)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/sluice/main.cf:3: bad numerical configuration: message_size_limit = 10m"
        );
    }
}
