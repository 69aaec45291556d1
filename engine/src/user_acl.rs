//! Postfix's user access lists: `authorized_submit_users`,
//! `authorized_mailq_users`, `authorized_flush_users` (Postfix's
//! `user_acl`): who may use a command, by login name.
//!
//! Syntax, as Postfix's match lists: login names, `!pattern` to exclude,
//! `/file/name` (replaced by the names in the file), and `type:table`
//! (matches when the name is a key of the table; `static:…` matches every
//! name). Matching is case-insensitive, left to right, and stops at the
//! first match; no match denies. A uid with no password entry is named
//! `unknown`. root and the mail owner are always allowed: that is the
//! caller's rule, as in Postfix, not the list's.
//!
//! Files and tables are read when the list is built (at start and at
//! `sluice reload`), never when it is checked. A table type Sluice cannot
//! read is an error, not a pattern that matches no one: in `!type:table`
//! that would let in the very users it was meant to keep out.

use sluice_storage::table::Table;

/// A parsed access list.
#[derive(Clone, Debug)]
pub struct UserAcl {
    items: Vec<Item>,
}

#[derive(Clone, Debug)]
struct Item {
    negate: bool,
    pattern: Pattern,
}

#[derive(Clone, Debug)]
enum Pattern {
    /// A login name, lower-cased.
    Name(String),
    /// `static:…`
    Anyone,
    Table(Table),
}

/// A list that cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("{param}: {message}")]
pub struct AclError {
    pub param: String,
    pub message: String,
}

/// Names in a `/file/name` pattern at most (a bound on what one list holds).
const MAX_FILE_NAMES: usize = 100_000;

impl UserAcl {
    /// Everyone (Postfix's default, `static:anyone`).
    pub fn anyone() -> UserAcl {
        UserAcl {
            items: vec![Item {
                negate: false,
                pattern: Pattern::Anyone,
            }],
        }
    }

    /// Builds the list that parameter `param` holds (`items` as main.cf's
    /// list splitting gives them).
    pub fn parse(param: &str, items: &[String]) -> Result<UserAcl, AclError> {
        let fail = |message: String| AclError {
            param: param.to_string(),
            message,
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let (negate, body) = match item.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, item.as_str()),
            };
            if body.starts_with('/') {
                let text =
                    std::fs::read_to_string(body).map_err(|e| fail(format!("open {body}: {e}")))?;
                let names: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .flat_map(|l| l.split(|c: char| c == ',' || c.is_whitespace()))
                    .filter(|w| !w.is_empty())
                    .take(MAX_FILE_NAMES)
                    .collect();
                for name in names {
                    out.push(Item {
                        negate,
                        pattern: Pattern::Name(name.to_ascii_lowercase()),
                    });
                }
            } else if body.starts_with("static:") {
                out.push(Item {
                    negate,
                    pattern: Pattern::Anyone,
                });
            } else if body.contains(':') {
                let table = Table::open(body).map_err(|e| fail(e.to_string()))?;
                out.push(Item {
                    negate,
                    pattern: Pattern::Table(table),
                });
            } else if !body.is_empty() {
                out.push(Item {
                    negate,
                    pattern: Pattern::Name(body.to_ascii_lowercase()),
                });
            }
        }
        Ok(UserAcl { items: out })
    }

    /// Whether the list allows `name` (`unknown` for a uid without a
    /// password entry).
    pub fn allows(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        for item in &self.items {
            let matched = match &item.pattern {
                Pattern::Anyone => true,
                Pattern::Name(n) => *n == name,
                Pattern::Table(t) => t.lookup(&name).is_some(),
            };
            if matched {
                return !item.negate;
            }
        }
        false
    }

    /// Whether the answer depends on the name (so a caller can skip the
    /// password-file lookup when it does not).
    pub fn needs_name(&self) -> bool {
        !matches!(
            self.items.first(),
            Some(Item {
                pattern: Pattern::Anyone,
                ..
            })
        )
    }

    /// Whether `uid` may use the command this list guards: root and the
    /// mail owner (`owner_uids`: the daemon's own uid and mail_owner's)
    /// always may; anyone else by login name.
    pub fn allows_uid(&self, uid: u32, owner_uids: &[u32]) -> bool {
        if uid == 0 || owner_uids.contains(&uid) {
            return true;
        }
        if !self.needs_name() {
            return self.allows("");
        }
        let name = crate::passwd::by_uid(uid).map(|p| p.name);
        self.allows(name.as_deref().unwrap_or("unknown"))
    }
}

/// `name(uid)`, as Postfix names a user in messages.
pub fn display_user(uid: u32) -> String {
    match crate::passwd::by_uid(uid) {
        Some(p) => format!("{}({uid})", p.name),
        None => format!("unknown({uid})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(items: &[&str]) -> UserAcl {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        UserAcl::parse("authorized_flush_users", &items).unwrap()
    }

    #[test]
    fn first_match_wins_and_no_match_denies() {
        assert!(acl(&["static:anyone"]).allows("alice"));
        assert!(acl(&["alice", "bob"]).allows("BOB"));
        assert!(!acl(&["alice"]).allows("bob"));
        assert!(!acl(&["!bob", "static:anyone"]).allows("bob"));
        assert!(acl(&["!bob", "static:anyone"]).allows("carol"));
        assert!(!acl(&[]).allows("carol"));
        assert!(acl(&["unknown"]).allows("unknown"));
    }

    #[test]
    fn files_and_tables_are_read_when_the_list_is_built() {
        let dir = std::env::temp_dir().join(format!("sluice-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = dir.join("names");
        std::fs::write(&names, "# ops\nalice, bob\n carol\n").unwrap();
        let table = dir.join("table");
        std::fs::write(&table, "dave ok\n").unwrap();
        let list = acl(&[
            &format!("!{}", names.display()),
            &format!("texthash:{}", table.display()),
        ]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!list.allows("carol"));
        assert!(list.allows("dave"));
        assert!(!list.allows("erin"));
    }

    #[test]
    fn unreadable_or_unknown_tables_are_errors_not_silent_denials() {
        let items = vec!["!nosuchtype:/x".to_string(), "static:anyone".to_string()];
        let e = UserAcl::parse("authorized_mailq_users", &items).unwrap_err();
        assert!(e.to_string().starts_with("authorized_mailq_users: "), "{e}");
        let items = vec!["/nonexistent/sluice/acl".to_string()];
        assert!(UserAcl::parse("authorized_mailq_users", &items).is_err());
    }

    #[test]
    fn root_and_the_owner_always_pass() {
        let nobody = acl(&["!static:anyone"]);
        assert!(nobody.allows_uid(0, &[]));
        assert!(nobody.allows_uid(4321, &[4321]));
        assert!(!nobody.allows_uid(4321, &[1]));
        assert!(acl(&["static:anyone"]).allows_uid(4_000_000_000, &[]));
        assert!(!acl(&["alice"]).allows_uid(4_000_000_000, &[]));
        assert!(acl(&["unknown"]).allows_uid(4_000_000_000, &[]));
    }
}
