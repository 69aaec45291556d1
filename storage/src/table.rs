//! Postfix lookup tables with fixed keys: `texthash:` and the indexed
//! types read from their source file.
//!
//! Role: turn a table spec from main.cf (`texthash:/etc/sluice/transport`)
//! into an in-memory map that `transport_maps`, domain lists and later
//! access/alias maps look keys up in. Input syntax is postmap(1)'s:
//!
//! - `key whitespace value`; surrounding whitespace is stripped from both;
//! - empty lines, whitespace-only lines and lines whose first non-blank
//!   character is `#` are ignored;
//! - a line that starts with whitespace continues the previous logical line;
//! - a key may contain whitespace inside double quotes (Postfix 3.2); the
//!   quotes stay part of the key, as they are in the RFC 5322 quoted local
//!   parts they exist for (`"john doe"@example.com`), and a backslash
//!   protects the next character from ending the key;
//! - keys are lower-cased, and so are the keys looked up (Postfix's
//!   `DICT_FLAG_FOLD_FIX`, on by default for fixed-key tables).
//!
//! Malformed lines are what Postfix's `dict_thash` makes of them: skipped
//! with a warning (`path:N: expected format: key whitespace value --
//! ignoring this line`), and a duplicate key keeps its first value with a
//! warning. Warnings are collected in [`Table::warnings`] for the caller to
//! log. Only an unusable spec, an unreadable file or text that is not UTF-8
//! is an error.
//!
//! `hash:`, `btree:`, `lmdb:` and `cdb:` tables are indexed files in
//! Postfix (`/etc/postfix/transport.db`, built by `postmap`). Sluice reads
//! their **source file** (`/etc/postfix/transport`) directly, like
//! `texthash:`, so an operator's existing main.cf works without running
//! postmap; the price is that the table is read again at reload rather than
//! when the `.db` changes.
//!
//! Trust: the file is the operator's. Nothing here panics on its content;
//! memory is bounded by the file's size.

use std::borrow::Cow;
use std::path::PathBuf;

use hashbrown::HashMap;

/// Table types whose source file is read as `texthash:` (see the module doc).
const SOURCE_FILE_TYPES: &[&str] = &["texthash", "hash", "btree", "lmdb", "cdb"];

/// A table that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// Not of the form `type:name` (Postfix's own wording).
    #[error("open dictionary: expecting \"type:name\" form instead of \"{0}\"")]
    BadSpec(String),
    /// A table type Sluice does not implement (yet).
    #[error("unsupported dictionary type: {kind} (in \"{spec}\"); supported: texthash, hash, btree, lmdb, cdb (read from the source file)")]
    Unsupported { kind: String, spec: String },
    /// The source file cannot be read.
    #[error("open database {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line is not UTF-8.
    #[error("{origin}:{line}: invalid UTF-8 in lookup table")]
    Encoding { origin: String, line: usize },
}

/// An in-memory lookup table with fixed (lower-cased) keys.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The spec or path it came from, for messages (`texthash:/etc/x`).
    origin: String,
    map: HashMap<String, String>,
    warnings: Vec<String>,
}

impl Table {
    /// Opens `type:/path` (see the module doc for the types), reading the
    /// whole source file.
    pub fn open(spec: &str) -> Result<Table, TableError> {
        let (kind, name) = spec
            .split_once(':')
            .filter(|(k, n)| !k.is_empty() && !n.is_empty())
            .ok_or_else(|| TableError::BadSpec(spec.to_string()))?;
        if !SOURCE_FILE_TYPES.contains(&kind) {
            return Err(TableError::Unsupported {
                kind: kind.to_string(),
                spec: spec.to_string(),
            });
        }
        let bytes = std::fs::read(name).map_err(|source| TableError::Io {
            path: PathBuf::from(name),
            source,
        })?;
        let mut table = Table::parse(&bytes, name)?;
        table.origin = spec.to_string();
        Ok(table)
    }

    /// Parses postmap(1) input. `origin` names the source in warnings and
    /// errors (`origin:line: …`).
    pub fn parse(text: impl AsRef<[u8]>, origin: &str) -> Result<Table, TableError> {
        let mut table = Table {
            origin: origin.to_string(),
            ..Table::default()
        };
        for (line, logical) in logical_lines(text.as_ref(), origin)? {
            table.add_line(line, &logical, origin);
        }
        Ok(table)
    }

    /// The value stored under `key` (compared lower-cased).
    pub fn lookup(&self, key: &str) -> Option<&str> {
        let key: Cow<'_, str> = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(key.to_ascii_lowercase())
        } else {
            Cow::Borrowed(key)
        };
        self.map.get(key.as_ref()).map(String::as_str)
    }

    /// Every key (lower-cased), in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The spec (or origin) the table was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Problems found while reading (`origin:line: …`), for the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn add_line(&mut self, line: usize, logical: &str, origin: &str) {
        let (key, value) = match split_key_value(logical) {
            Ok(kv) => kv,
            Err(what) => {
                self.warnings.push(format!("{origin}:{line}: {what}"));
                return;
            }
        };
        if key.ends_with(':') {
            self.warnings.push(format!(
                "{origin}:{line}: record is in \"key: value\" format; is this an alias file?"
            ));
        }
        let key = key.to_ascii_lowercase();
        if self.map.contains_key(&key) {
            self.warnings
                .push(format!("{origin}:{line}: duplicate entry: \"{key}\""));
            return;
        }
        self.map.insert(key, value.to_string());
    }
}

/// Splits a logical line at the first whitespace outside double quotes
/// (a backslash protects the next character), then trims both halves.
fn split_key_value(line: &str) -> Result<(&str, &str), String> {
    let line = line.trim_start();
    let b = line.as_bytes();
    let mut in_quotes = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => in_quotes = !in_quotes,
            c if c.is_ascii_whitespace() && !in_quotes => break,
            _ => {}
        }
        i += 1;
    }
    if in_quotes {
        return Err(format!(
            "unbalanced '\"' in '{}' -- ignoring this line",
            line.trim()
        ));
    }
    let end = i.min(b.len());
    let (key, value) = (line[..end].trim(), line[end..].trim());
    if key.is_empty() || value.is_empty() {
        return Err("expected format: key whitespace value -- ignoring this line".to_string());
    }
    Ok((key, value))
}

/// Postfix's readlline over the whole text: comment and blank lines are
/// skipped; a line starting with whitespace continues the previous logical
/// line (one at the very top starts one). Yields each logical line with the
/// number of its first physical line.
fn logical_lines(text: &[u8], origin: &str) -> Result<Vec<(usize, String)>, TableError> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut start = 0;
    let mut number = 0;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
        number += 1;
        let raw = &text[start..end];
        start = end + 1;
        let line = std::str::from_utf8(raw).map_err(|_| TableError::Encoding {
            origin: origin.to_string(),
            line: number,
        })?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = trimmed.len() != line.len();
        match out.last_mut() {
            Some((_, logical)) if continues => logical.push_str(line),
            _ => out.push((number, line.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(text: &str) -> Table {
        Table::parse(text, "/etc/sluice/transport").unwrap()
    }

    #[test]
    fn postmap_syntax() {
        let t = table(concat!(
            "# transport table\n",
            "Example.COM\tsmtp:[mx.example.com]:2525\n",
            "\n",
            "   # indented comment\n",
            ".example.com   relay:\n",
            "long.example   smtp:\n",
            "  [continued.example]\n",
            "\"john doe\"@Example.org  local:\n",
            "crlf.example  error:5.1.1 gone  \r\n",
        ));
        let cases = [
            ("example.com", Some("smtp:[mx.example.com]:2525")),
            ("EXAMPLE.com", Some("smtp:[mx.example.com]:2525")),
            (".example.com", Some("relay:")),
            ("long.example", Some("smtp:  [continued.example]")),
            ("\"john doe\"@example.org", Some("local:")),
            ("crlf.example", Some("error:5.1.1 gone")),
            ("missing.example", None),
            ("#", None),
        ];
        for (key, want) in cases {
            assert_eq!(t.lookup(key), want, "{key}");
        }
        assert_eq!(t.len(), 5);
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    }

    #[test]
    fn malformed_lines_warn_and_are_skipped() {
        let t = table(concat!(
            "lonely\n",
            "good.example smtp:\n",
            "Good.Example relay:\n",
            "\"unbalanced key value\n",
            "alias: value\n",
        ));
        assert_eq!(t.lookup("good.example"), Some("smtp:"));
        assert_eq!(t.lookup("lonely"), None);
        assert_eq!(t.lookup("alias:"), Some("value"));
        // A continuation with no line before it starts one (no warning in
        // dict_thash either: readlline just returns it).
        let t2 = table("  leading.example smtp:\n  [mx]\n");
        assert_eq!(t2.lookup("leading.example"), Some("smtp:  [mx]"));
        assert_eq!(
            t.warnings(),
            [
                "/etc/sluice/transport:1: expected format: key whitespace value -- ignoring this line",
                "/etc/sluice/transport:3: duplicate entry: \"good.example\"",
                "/etc/sluice/transport:4: unbalanced '\"' in '\"unbalanced key value' -- ignoring this line",
                "/etc/sluice/transport:5: record is in \"key: value\" format; is this an alias file?",
            ]
        );
    }

    #[test]
    fn backslash_protects_whitespace_in_key() {
        let t = table("a\\ b value\n");
        assert_eq!(t.lookup("a\\ b"), Some("value"));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = Table::parse(b"ok value\nbad \xff\n", "/x").unwrap_err();
        assert_eq!(err.to_string(), "/x:2: invalid UTF-8 in lookup table");
    }

    #[test]
    fn open_specs() {
        let dir = std::env::temp_dir().join(format!("sluice-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("transport");
        std::fs::write(&path, "example.com smtp:[mx]\n").unwrap();
        for kind in ["texthash", "hash", "lmdb"] {
            let spec = format!("{kind}:{}", path.display());
            let t = Table::open(&spec).unwrap();
            assert_eq!(t.lookup("example.com"), Some("smtp:[mx]"));
            assert_eq!(t.origin(), spec);
        }
        let missing = format!("hash:{}/nope", dir.display());
        assert!(Table::open(&missing)
            .unwrap_err()
            .to_string()
            .starts_with(&format!("open database {}/nope: ", dir.display())));
        assert_eq!(
            Table::open("/etc/postfix/transport")
                .unwrap_err()
                .to_string(),
            "open dictionary: expecting \"type:name\" form instead of \"/etc/postfix/transport\""
        );
        assert!(matches!(
            Table::open("mysql:/etc/x.cf"),
            Err(TableError::Unsupported { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the text, parsing never panics, and every stored key is
        /// found again whatever case it is looked up in.
        #[test]
        fn parse_never_panics(text in "[ \t#a-zA-Z\"\\\\:.\n]{0,200}") {
            let t = table(&text);
            for k in t.keys() {
                prop_assert!(t.lookup(&k.to_ascii_uppercase()).is_some());
            }
        }

        #[test]
        fn simple_entries_round_trip(
            entries in proptest::collection::btree_map("[a-z0-9.@-]{1,20}", "[a-z0-9:\\[\\].]{1,20}", 0..20)
        ) {
            let text: String = entries.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
            let t = table(&text);
            prop_assert_eq!(t.len(), entries.len());
            for (k, v) in &entries {
                prop_assert_eq!(t.lookup(k), Some(v.as_str()));
            }
        }
    }
}
