//! The built-in notice templates, as Postfix's `bounce_templates.c` has
//! them (`postconf -b` prints the same text), and their `$name` expansion.
//!
//! Only the built-in templates exist here; `bounce_template_file` is not
//! supported.

use super::NoticeKind;

/// Placeholders the templates use; expanded by [`expand`].
const MYHOSTNAME: &str = "$myhostname";
const DELAY_HOURS: &str = "$delay_warning_time_hours";
const LIFETIME_DAYS: &str = "$maximal_queue_lifetime_days";

const FAILURE: &[&str] = &[
    "This is the mail system at host $myhostname.",
    "",
    "I'm sorry to have to inform you that your message could not",
    "be delivered to one or more recipients. It's attached below.",
    "",
    "For further assistance, please send mail to postmaster.",
    "",
    "If you do so, please include this problem report. You can",
    "delete your own text from the attached returned message.",
    "",
    "                   The mail system",
];

const DELAY: &[&str] = &[
    "This is the mail system at host $myhostname.",
    "",
    "####################################################################",
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
    "####################################################################",
    "",
    "Your message could not be delivered for more than $delay_warning_time_hours hour(s).",
    "It will be retried until it is $maximal_queue_lifetime_days day(s) old.",
    "",
    "For further assistance, please send mail to postmaster.",
    "",
    "If you do so, please include this problem report. You can",
    "delete your own text from the attached returned message.",
    "",
    "                   The mail system",
];

const SUCCESS: &[&str] = &[
    "This is the mail system at host $myhostname.",
    "",
    "Your message was successfully delivered to the destination(s)",
    "listed below. If the message was delivered to mailbox you will",
    "receive no further notifications. Otherwise you may still receive",
    "notifications of mail delivery errors from other systems.",
    "",
    "                   The mail system",
];

/// The `From:` of every built-in template, before cleanup qualifies the
/// address (`MAILER-DAEMON (Mail Delivery System)`).
pub(super) const FROM_LOCAL_PART: &str = "MAILER-DAEMON";
pub(super) const FROM_COMMENT: &str = "(Mail Delivery System)";

pub(super) fn subject(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Failure => "Undelivered Mail Returned to Sender",
        NoticeKind::Delay => "Delayed Mail (still being retried)",
        NoticeKind::Success => "Successful Mail Delivery Report",
    }
}

fn body(kind: NoticeKind) -> &'static [&'static str] {
    match kind {
        NoticeKind::Failure => FAILURE,
        NoticeKind::Delay => DELAY,
        NoticeKind::Success => SUCCESS,
    }
}

/// The values `$name` expands to.
pub(super) struct Values<'a> {
    pub myhostname: &'a str,
    pub delay_warning_time_s: i64,
    pub maximal_queue_lifetime_s: i64,
}

/// Appends the template text for `kind`, one CRLF line per template line.
pub(super) fn expand(out: &mut Vec<u8>, kind: NoticeKind, v: &Values<'_>) {
    // Postfix's bounce_template_lookup(): whole units, rounded down.
    let hours = (v.delay_warning_time_s / 3600).max(0).to_string();
    let days = (v.maximal_queue_lifetime_s / 86_400).max(0).to_string();
    for line in body(kind) {
        let mut rest = *line;
        while let Some(dollar) = rest.find('$') {
            let (before, tail) = rest.split_at(dollar);
            out.extend_from_slice(before.as_bytes());
            let (value, used) = if tail.starts_with(DELAY_HOURS) {
                (hours.as_str(), DELAY_HOURS.len())
            } else if tail.starts_with(LIFETIME_DAYS) {
                (days.as_str(), LIFETIME_DAYS.len())
            } else if tail.starts_with(MYHOSTNAME) {
                (v.myhostname, MYHOSTNAME.len())
            } else {
                ("$", 1)
            };
            push_filtered(out, value);
            rest = &tail[used..];
        }
        out.extend_from_slice(rest.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// mac_expand()'s filter in `bounce_template_expand()`: an expanded value
/// keeps TAB and printable ASCII; anything else becomes `_`.
fn push_filtered(out: &mut Vec<u8>, value: &str) {
    out.extend(value.bytes().map(|b| {
        if b == b'\t' || (b' '..=b'~').contains(&b) {
            b
        } else {
            b'_'
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: NoticeKind, delay_s: i64, life_s: i64, host: &str) -> String {
        let mut out = Vec::new();
        let v = Values {
            myhostname: host,
            delay_warning_time_s: delay_s,
            maximal_queue_lifetime_s: life_s,
        };
        expand(&mut out, kind, &v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn delay_units_round_down() {
        let t = text(
            NoticeKind::Delay,
            4 * 3600 + 3599,
            5 * 86_400 + 86_399,
            "mx",
        );
        assert!(t.contains("for more than 4 hour(s).\r\n"));
        assert!(t.contains("until it is 5 day(s) old.\r\n"));
        let t = text(NoticeKind::Delay, 0, 0, "mx");
        assert!(t.contains("for more than 0 hour(s)."));
    }

    #[test]
    fn hostname_is_filtered() {
        let t = text(NoticeKind::Success, 0, 0, "mx\r\nX: é");
        assert!(t.starts_with("This is the mail system at host mx__X: __.\r\n"));
    }

    #[test]
    fn every_line_is_crlf_terminated_ascii() {
        for kind in [NoticeKind::Failure, NoticeKind::Delay, NoticeKind::Success] {
            let t = text(kind, 3600, 86_400, "mx.example.org");
            assert!(t.is_ascii());
            assert_eq!(t.matches("\r\n").count(), body(kind).len());
            assert!(t.ends_with("                   The mail system\r\n"));
        }
    }
}
