//! Changing main.cf in place, as `postconf -e`, `-X` and `-#` do, and
//! reading the configuration the way `postconf` shows it.
//!
//! **Editing** is line-based, like Postfix's `pcf_edit_main`: comment lines,
//! blank lines and every definition that is not edited stay byte-identical
//! (line endings included); an edited definition is replaced by one
//! `name = value` line, and its continuation lines go. Comment and blank
//! lines in the middle of a definition are kept, as in Postfix. Every
//! definition of an edited name is rewritten (main.cf's last one is the
//! effective one, so rewriting only that one would leave stale copies that
//! a later edit could resurrect); [`EditOutcome::multiple`] lists the names
//! that had more than one, for Postfix's "multiple entries" warning. New
//! names are appended at the end in the order given.
//!
//! [`write_atomically`] puts the result in place: a temporary file next to
//! the target, fsync, rename, fsync of the directory, so that a crash
//! leaves either the old file or the new one.
//!
//! **Reading for display** ([`read_unchecked`], [`defaults_only`]) parses
//! main.cf and master.cf and computes the machine's defaults, but skips the
//! checks that [`super::load`] makes (typed values, listeners, relay
//! restrictions): `postconf` must show, and let the administrator repair, a
//! configuration the daemon would refuse.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::host::HostFacts;
use super::maincf::{MainCf, Origin};
use super::mastercf::{self, MasterService};
use super::params;
use super::{
    defaults, read_optional, undefined_parameter_warnings, unused_parameter_warnings, ConfigError,
    DEFAULT_MASTER_CF, EMBEDDED_MAIN_CF, EMBEDDED_MASTER_CF,
};

/// What to do with the named parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MainCfEdit {
    /// `postconf -e name=value …`: replace or append.
    Set(Vec<(String, String)>),
    /// `postconf -X name …`: delete the definitions.
    Remove(Vec<String>),
    /// `postconf -# name …`: prefix each line of the definitions with `#`.
    CommentOut(Vec<String>),
}

/// The edited text, and the edited names that were defined more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditOutcome {
    /// Bytes, because main.cf may hold non-UTF-8 comments that an edit must
    /// not touch.
    pub text: Vec<u8>,
    /// In the order of their second definition, each name once.
    pub multiple: Vec<String>,
}

/// Replaces or appends `name = value` for each edit (the last edit of a
/// name wins). Values must be single lines; a CR or LF in one is turned into
/// a space rather than let it start a new definition.
pub fn set_params(text: &str, edits: &[(String, String)]) -> String {
    edited_str(text, &MainCfEdit::Set(edits.to_vec()))
}

/// Deletes every definition of each name, continuation lines included.
pub fn remove_params(text: &str, names: &[String]) -> String {
    edited_str(text, &MainCfEdit::Remove(names.to_vec()))
}

/// Comments out every definition of each name, continuation lines included.
pub fn comment_out_params(text: &str, names: &[String]) -> String {
    edited_str(text, &MainCfEdit::CommentOut(names.to_vec()))
}

fn edited_str(text: &str, edit: &MainCfEdit) -> String {
    let out = edit_main_cf(text.as_bytes(), edit).text;
    // Lines are cut at ASCII bytes only and the insertions are UTF-8, so
    // UTF-8 in means UTF-8 out; the lossy conversion never substitutes.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// One edit pass over main.cf text (see the module documentation).
pub fn edit_main_cf(text: &[u8], edit: &MainCfEdit) -> EditOutcome {
    // A handful of names: a linear search beats hashing.
    let mut table: Vec<(&[u8], Option<String>, usize)> = Vec::new();
    fn enter<'a>(
        table: &mut Vec<(&'a [u8], Option<String>, usize)>,
        name: &'a str,
        value: Option<String>,
    ) {
        let name = name.as_bytes();
        if let Some(slot) = table.iter_mut().find(|(n, _, _)| *n == name) {
            slot.1 = value;
        } else {
            table.push((name, value, 0));
        }
    }
    match edit {
        MainCfEdit::Set(pairs) => {
            for (name, value) in pairs {
                enter(&mut table, name, Some(value.replace(['\r', '\n'], " ")));
            }
        }
        MainCfEdit::Remove(names) | MainCfEdit::CommentOut(names) => {
            for name in names {
                enter(&mut table, name, None);
            }
        }
    }

    let mut out: Vec<u8> = Vec::with_capacity(text.len() + 64);
    let mut multiple: Vec<String> = Vec::new();
    // Whether the logical line being copied is one of the edited ones.
    let mut interesting = false;
    let mut rest = text;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let indent = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(line.len());
        if indent == line.len() || line[indent] == b'#' {
            out.extend_from_slice(line);
            continue;
        }
        if indent > 0 {
            // A continuation line.
            match (interesting, edit) {
                (false, _) => out.extend_from_slice(line),
                (true, MainCfEdit::CommentOut(_)) => {
                    out.push(b'#');
                    out.extend_from_slice(line);
                }
                (true, _) => {}
            }
            continue;
        }
        let key_len = line
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'='))
            .unwrap_or(line.len());
        let key = &line[..key_len];
        let Some(slot) = table.iter_mut().find(|(n, _, _)| *n == key) else {
            interesting = false;
            out.extend_from_slice(line);
            continue;
        };
        interesting = true;
        slot.2 += 1;
        if slot.2 == 2 {
            multiple.push(String::from_utf8_lossy(key).into_owned());
        }
        match (edit, &slot.1) {
            (MainCfEdit::Set(_), Some(value)) => push_definition(&mut out, key, value),
            (MainCfEdit::CommentOut(_), _) => {
                out.push(b'#');
                out.extend_from_slice(line);
            }
            _ => {}
        }
    }
    if let MainCfEdit::Set(_) = edit {
        for (name, value, seen) in &table {
            if let (0, Some(value)) = (seen, value) {
                // Postfix appends blindly; a last line without its newline
                // would swallow the new definition.
                if out.last().is_some_and(|&b| b != b'\n') {
                    out.push(b'\n');
                }
                push_definition(&mut out, name, value);
            }
        }
    }
    EditOutcome {
        text: out,
        multiple,
    }
}

fn push_definition(out: &mut Vec<u8>, name: &[u8], value: &str) {
    out.extend_from_slice(name);
    out.extend_from_slice(b" = ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// Replaces the file at `path` with `contents` so that readers see either
/// the old file or the new one, never a mix, even across a crash: write a
/// temporary file in the same directory, fsync it, rename it over `path`,
/// fsync the directory. A symlink is followed (its target is replaced).
/// The new file keeps the old one's permission bits (0644 for a new file);
/// it belongs to the caller, as with Postfix's edit_file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let mode = match fs::metadata(&target) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0o644,
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    // The process id keeps two concurrent editors off each other's file;
    // create_new refuses to reuse one a crashed run left behind.
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode given to open.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &target)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// main.cf and master.cf as `postconf` shows them.
#[derive(Clone, Debug)]
pub struct ConfigFiles {
    /// main.cf (or the built-in one), with `-o` overrides and the computed
    /// defaults.
    pub main: MainCf,
    /// Every master.cf service (or the built-in ones).
    pub master: Vec<MasterService>,
    /// Reader warnings, then Postfix's "unused parameter" ones, without a
    /// program prefix.
    pub warnings: Vec<String>,
    /// main.cf names that are neither known nor referred to by a known
    /// parameter: Postfix neither lists nor looks them up.
    pub unused: HashSet<String>,
    /// main.cf did not exist; [`EMBEDDED_MAIN_CF`] stands in, as for the
    /// daemon.
    pub main_embedded: bool,
    /// master.cf did not exist; a built-in one stands in, as for the daemon.
    pub master_embedded: bool,
}

/// Reads `config_dir`'s main.cf and master.cf without the daemon's checks.
/// `overrides` (`postconf -o name=value`) are applied on top of main.cf
/// before the machine's defaults are computed. Fails only on what cannot be
/// parsed at all (a line without `=`, a master.cf line with too few fields)
/// or cannot be read; a default that cannot be computed is a warning.
pub fn read_unchecked(
    config_dir: &Path,
    facts: &HostFacts,
    overrides: &[(String, String)],
) -> Result<ConfigFiles, ConfigError> {
    let main_path = config_dir.join("main.cf");
    let master_path = config_dir.join("master.cf");
    let main_text = read_optional(&main_path)?;
    let master_text = read_optional(&master_path)?;
    let main_embedded = main_text.is_none();
    let master_embedded = master_text.is_none();
    let (main_text, main_name) = match main_text {
        Some(t) => (t, main_path),
        None => (
            EMBEDDED_MAIN_CF.to_string(),
            PathBuf::from("(built-in main.cf)"),
        ),
    };
    let (master_text, master_name) = match master_text {
        Some(t) => (t, master_path),
        None if main_embedded => (
            EMBEDDED_MASTER_CF.to_string(),
            PathBuf::from("(built-in master.cf)"),
        ),
        None => (
            DEFAULT_MASTER_CF.to_string(),
            PathBuf::from("(built-in master.cf)"),
        ),
    };
    let (mut main, mut warnings) = MainCf::parse(&main_text, &main_name)?;
    let override_origin = Origin::file(Path::new("command line"));
    for (name, value) in overrides {
        main.set(name, value, override_origin.clone());
    }
    if let Err(e) = defaults::compute(&mut main, facts, config_dir, &mut warnings) {
        warnings.push(e.to_string());
    }
    let master = mastercf::parse(&master_text, &master_name, &mut warnings)?;
    let unused_warnings = unused_parameter_warnings(&main, &master, &master_name);
    // unused_parameter_warnings words one warning per unused main.cf entry;
    // recognising those lines keeps one definition of "unused".
    let prefix = format!("{}: unused parameter: ", main.path().display());
    let unused: HashSet<String> = main
        .raw_entries()
        .iter()
        .filter(|e| params::param(&e.name).is_none())
        .filter(|e| {
            let line = format!("{prefix}{}={}", e.name, e.value);
            unused_warnings.contains(&line)
        })
        .map(|e| e.name.clone())
        .collect();
    warnings.extend(unused_warnings);
    warnings.extend(undefined_parameter_warnings(&main, &master, &master_name));
    Ok(ConfigFiles {
        main,
        master,
        warnings,
        unused,
        main_embedded,
        master_embedded,
    })
}

/// The defaults alone (`postconf -d`): an empty main.cf with the machine's
/// computed defaults and `config_directory` set to `config_dir`. A default
/// that cannot be computed is a warning, pushed to `warnings`.
pub fn defaults_only(
    config_dir: &Path,
    facts: &HostFacts,
    warnings: &mut Vec<String>,
) -> Result<MainCf, ConfigError> {
    let (mut main, _) = MainCf::parse("", &config_dir.join("main.cf"))?;
    if let Err(e) = defaults::compute(&mut main, facts, config_dir, warnings) {
        warnings.push(e.to_string());
    }
    Ok(main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = "\
# Sluice main.cf
myhostname = mx.example.com

# destinations
mydestination = $myhostname,
    localhost
\t# a comment inside a definition
    other.example
relay_domains=a.example
myhostname2 = keep
";

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn set_replaces_in_place_and_drops_continuations() {
        let got = set_params(
            FIXTURE,
            &pairs(&[
                ("mydestination", "$myhostname"),
                ("myhostname", "mx2.example.com"),
            ]),
        );
        assert_eq!(
            got,
            "\
# Sluice main.cf
myhostname = mx2.example.com

# destinations
mydestination = $myhostname
\t# a comment inside a definition
relay_domains=a.example
myhostname2 = keep
"
        );
    }

    #[test]
    fn set_appends_new_names_in_order() {
        let got = set_params(
            FIXTURE,
            &pairs(&[
                ("relayhost", "[smarthost]:587"),
                ("relay_domains", "b.example"),
                ("a", ""),
            ]),
        );
        assert_eq!(
            got,
            FIXTURE.replace("relay_domains=a.example", "relay_domains = b.example")
                + "relayhost = [smarthost]:587\na = \n"
        );
        // A last line without its newline is completed first.
        assert_eq!(set_params("a = 1", &pairs(&[("b", "2")])), "a = 1\nb = 2\n");
        assert_eq!(set_params("", &pairs(&[("b", "2")])), "b = 2\n");
        // The last edit of a name wins.
        assert_eq!(
            set_params("", &pairs(&[("b", "1"), ("c", "x"), ("b", "2")])),
            "b = 2\nc = x\n"
        );
        // A newline in a value cannot start a definition of its own.
        assert_eq!(
            set_params("", &pairs(&[("b", "1\nmynetworks = 0.0.0.0/0")])),
            "b = 1 mynetworks = 0.0.0.0/0\n"
        );
    }

    #[test]
    fn remove_deletes_definitions_only() {
        let got = remove_params(
            FIXTURE,
            &names(&["mydestination", "relay_domains", "absent"]),
        );
        assert_eq!(
            got,
            "\
# Sluice main.cf
myhostname = mx.example.com

# destinations
\t# a comment inside a definition
myhostname2 = keep
"
        );
    }

    #[test]
    fn comment_out_prefixes_every_line_of_the_definition() {
        let got = comment_out_params(FIXTURE, &names(&["mydestination"]));
        assert_eq!(
            got,
            "\
# Sluice main.cf
myhostname = mx.example.com

# destinations
#mydestination = $myhostname,
#    localhost
\t# a comment inside a definition
#    other.example
relay_domains=a.example
myhostname2 = keep
"
        );
    }

    #[test]
    fn every_definition_is_edited_and_duplicates_reported() {
        let text = "a = 1\nb = 2\na = 3\n  more\na = 4\n";
        let out = edit_main_cf(
            text.as_bytes(),
            &MainCfEdit::Set(pairs(&[("a", "9"), ("b", "8")])),
        );
        assert_eq!(out.text, b"a = 9\nb = 8\na = 9\na = 9\n");
        assert_eq!(out.multiple, ["a"]);
        let out = edit_main_cf(text.as_bytes(), &MainCfEdit::Remove(names(&["a"])));
        assert_eq!(out.text, b"b = 2\n");
        assert_eq!(out.multiple, ["a"]);
    }

    #[test]
    fn non_utf8_comments_survive() {
        let text = b"# caf\xe9\na = 1\n";
        let out = edit_main_cf(text, &MainCfEdit::Set(pairs(&[("a", "2")])));
        assert_eq!(out.text, b"# caf\xe9\na = 2\n");
    }

    #[test]
    fn untouched_lines_keep_their_bytes() {
        let text = "a = 1\r\nb   =\t2  \r\n\r\n  # c\r\nc = 3\r\n";
        assert_eq!(
            set_params(text, &pairs(&[("c", "4")])),
            "a = 1\r\nb   =\t2  \r\n\r\n  # c\r\nc = 4\n"
        );
    }

    /// One main.cf line: a definition, a continuation, a comment or blank.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[a-e]{1,3}", "[ =]{0,2}", "[ -~]{0,12}").prop_map(|(n, s, v)| format!("{n}{s}= {v}")),
            "[ \t]{1,3}[!-~]{1,8}",
            "[ \t]{0,2}#[ -~]{0,10}",
            "[ \t]{0,3}",
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        (proptest::collection::vec(line(), 0..12), any::<bool>()).prop_map(|(lines, crlf)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            lines.iter().map(|l| format!("{l}{eol}")).collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn editing_an_absent_name_changes_nothing(text in text()) {
            let absent = names(&["zz"]);
            prop_assert_eq!(remove_params(&text, &absent), text.clone());
            prop_assert_eq!(comment_out_params(&text, &absent), text.clone());
        }

        #[test]
        fn a_set_value_is_the_effective_one(text in text(), value in "[!-~]([ -~]{0,10}[!-~])?") {
            let edited = set_params(&text, &pairs(&[("b", &value)]));
            let path = Path::new("main.cf");
            if MainCf::parse(&text, path).is_ok() {
                let (cf, _) = MainCf::parse(&edited, path).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(cf.raw("b").map(|e| e.value.as_str()), Some(value.as_str()));
            }
            // Other names keep their effective values.
            if let (Ok((before, _)), Ok((after, _))) = (MainCf::parse(&text, path), MainCf::parse(&edited, path)) {
                for e in before.raw_entries().iter().filter(|e| e.name != "b") {
                    prop_assert_eq!(after.raw(&e.name).map(|x| &x.value), Some(&e.value));
                }
            }
        }
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sluice-edit-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn write_atomically_replaces_keeps_mode_and_leaves_no_temp() {
        let dir = scratch_dir("write");
        let path = dir.join("main.cf");
        write_atomically(&path, b"a = 1\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 1\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"a = 2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 2\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Through a symlink, the target is replaced and the link stays.
        let link = dir.join("link.cf");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_atomically(&link, b"a = 3\n").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&path).unwrap(), "a = 3\n");
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A missing directory is an error, not a panic.
        assert!(write_atomically(&dir.join("no/such/main.cf"), b"").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_unchecked_shows_what_load_refuses() {
        let dir = scratch_dir("read");
        fs::write(
            dir.join("main.cf"),
            "smtpd_timeout = soon\nsmtpd_relay_restrictions =\nmy_list = x\n\
             smtpd_client_restrictions = $my_list\ntypo_param = 1\n",
        )
        .unwrap();
        fs::write(
            dir.join("master.cf"),
            "smtp inet n - n - - smtpd -o stress=yes\n",
        )
        .unwrap();
        let facts = HostFacts::for_tests();
        assert!(super::super::load_with(&dir, &facts).is_err());
        let files = read_unchecked(&dir, &facts, &pairs(&[("mail_name", "Over")])).unwrap();
        assert_eq!(
            files.main.raw_value("smtpd_timeout").as_deref(),
            Some("soon")
        );
        assert_eq!(files.main.get("mail_name").as_deref(), Some("Over"));
        assert_eq!(
            files.main.get("myhostname").as_deref(),
            Some("host.example.com")
        );
        assert_eq!(files.master.len(), 1);
        assert_eq!(files.unused, HashSet::from(["typo_param".to_string()]));
        let warning = format!(
            "{}: unused parameter: typo_param=1",
            dir.join("main.cf").display()
        );
        assert_eq!(files.warnings, [warning]);
        assert!(!files.main_embedded && !files.master_embedded);

        let empty = scratch_dir("empty");
        let files = read_unchecked(&empty, &facts, &[]).unwrap();
        assert!(files.main_embedded && files.master_embedded);
        assert_eq!(
            files.main.raw_value("queue_directory").as_deref(),
            Some("sluice-queue")
        );
        assert_eq!(files.master[0].service, "127.0.0.1:2525");

        let mut warnings = Vec::new();
        let d = defaults_only(&dir, &facts, &mut warnings).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            d.raw_value("smtpd_timeout").as_deref(),
            Some("${stress?{10}:{300}}s")
        );
        assert_eq!(
            d.raw_value("config_directory").as_deref(),
            Some(dir.display().to_string().as_str())
        );
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(&empty).unwrap();
    }
}
