//! Writes one notice: the sequence of Postfix's `post_mail_init()`,
//! `bounce_header()`, `bounce_boilerplate()`, `bounce_diagnostic_log()`,
//! `bounce_header_dsn()`, `bounce_diagnostic_dsn()` and
//! `bounce_original()`, plus the `Message-Id:` cleanup appends at the end
//! of the header section.

use std::borrow::Cow;

use memchr::memchr;
use sluice_protocols::envelope::Ret;

use super::template::{self, Values};
use super::wrap::{push_wrapped, WRAP_INDENT, WRAP_WIDTH};
use super::{Notice, NoticeKind, NoticeParams, NoticeRcpt};
use crate::rewrite::quote_822_local;

/// Room for everything but the returned original: headers, template text
/// and the delivery report are well under this for a few recipients.
const TEXT_RESERVE: usize = 2048;
const PER_RCPT_RESERVE: usize = 512;

/// How the parts are declared (Postfix's `mime_encoding` and SMTPUTF8
/// flags).
struct Mime {
    /// Any part may hold 8-bit text: declare `8bit`, `charset=utf-8`.
    eight_bit: bool,
    /// The original asked for SMTPUTF8: `message/global-*` types.
    global: bool,
}

/// What every step of the writer needs.
struct Ctx<'a> {
    p: &'a NoticeParams,
    n: &'a Notice<'a>,
    mime: Mime,
    boundary: String,
    /// `mail_name` as an atom, for the `X-<mail_name>-` names.
    atom: String,
    /// The original sender, quoted and cleaned.
    sender: String,
    date: &'a dyn Fn(i64) -> String,
}

pub(super) fn render(
    p: &NoticeParams,
    n: &Notice<'_>,
    rcpts: &[&NoticeRcpt],
    date: &dyn Fn(i64) -> String,
) -> Vec<u8> {
    let mime = Mime {
        eight_bit: p.smtputf8_enable || !n.original.is_ascii(),
        global: n.smtputf8,
    };
    let sender = clean(&quote_822_local(n.sender), mime.eight_bit).into_owned();
    let cx = Ctx {
        p,
        n,
        boundary: format!("{}.{}/{}", n.qid, n.now_secs.max(0), p.myhostname),
        atom: diagnostic_atom(&p.mail_name),
        sender,
        mime,
        date,
    };
    let headers_only = returns_headers_only(p, n);
    let returned = if headers_only {
        header_section(n.original)
    } else {
        n.original
    };
    let mut out = Vec::with_capacity(
        TEXT_RESERVE + PER_RCPT_RESERVE.saturating_mul(rcpts.len()) + returned.len(),
    );
    push_headers(&mut out, &cx);
    push_notification(&mut out, &cx, rcpts);
    push_delivery_report(&mut out, &cx, rcpts);
    push_original(&mut out, &cx, returned, headers_only);
    out
}

/// `post_mail_init()`'s Received: and Date:, `bounce_header()`'s message
/// headers, cleanup's Message-Id:, and the MIME preamble.
fn push_headers(o: &mut Vec<u8>, cx: &Ctx<'_>) {
    let (p, n) = (cx.p, cx.n);
    // One date for both lines, as post_mail_init() does.
    let now = (cx.date)(n.now_secs);
    line(
        o,
        &format!("Received: by {} ({})", p.myhostname, p.mail_name),
    );
    line(o, &format!("\tid {}; {now}", n.notice_qid));
    line(o, &format!("Date: {now}"));
    line(
        o,
        &format!(
            "From: {}@{} {}",
            template::FROM_LOCAL_PART,
            p.myorigin,
            template::FROM_COMMENT
        ),
    );
    line(o, &format!("Subject: {}", template::subject(n.kind)));
    line(o, &format!("To: {}", cx.sender));
    line(o, "Auto-Submitted: auto-replied");
    line(o, "MIME-Version: 1.0");
    line(
        o,
        "Content-Type: multipart/report; report-type=delivery-status;",
    );
    line(o, &format!("\tboundary=\"{}\"", cx.boundary));
    // The built-in templates are 7bit; 8bit wins when anything may be.
    let cte = if cx.mime.eight_bit { "8bit" } else { "7bit" };
    line(o, &format!("Content-Transfer-Encoding: {cte}"));
    // cleanup's addition, at the end of the header section.
    line(
        o,
        &format!("Message-Id: <{}@{}>", n.notice_qid, p.myhostname),
    );
    line(o, "");
    line(o, "This is a MIME-encapsulated message.");
}

/// Part 1: the template text, then `<rcpt>: reason` per recipient
/// (`bounce_boilerplate()`, `bounce_diagnostic_log()`).
fn push_notification(o: &mut Vec<u8>, cx: &Ctx<'_>, rcpts: &[&NoticeRcpt]) {
    let utf8 = cx.mime.eight_bit;
    line(o, "");
    line(o, &format!("--{}", cx.boundary));
    line(o, "Content-Description: Notification");
    let charset = if utf8 { "utf-8" } else { "us-ascii" };
    line(o, &format!("Content-Type: text/plain; charset={charset}"));
    if utf8 {
        line(o, "Content-Transfer-Encoding: 8bit");
    }
    line(o, "");
    let values = Values {
        myhostname: &cx.p.myhostname,
        delay_warning_time_s: cx.p.delay_warning_time_s,
        maximal_queue_lifetime_s: cx.p.maximal_queue_lifetime_s,
    };
    template::expand(o, cx.n.kind, &values);
    for r in rcpts {
        line(o, "");
        let address = clean(&r.address, utf8);
        let reason = clean(&r.reason, utf8);
        let text = match r.original.as_deref() {
            Some(orig) if !orig.is_empty() && !orig.eq_ignore_ascii_case(&r.address) => format!(
                "<{address}> (expanded from <{}>): {reason}",
                clean(orig, utf8)
            ),
            _ => format!("<{address}>: {reason}"),
        };
        push_wrapped(o, text.as_bytes(), WRAP_WIDTH, WRAP_INDENT);
    }
}

/// Part 2: the per-message fields, then a block per recipient
/// (`bounce_header_dsn()`, `bounce_diagnostic_dsn()`).
fn push_delivery_report(o: &mut Vec<u8>, cx: &Ctx<'_>, rcpts: &[&NoticeRcpt]) {
    let (n, mime, atom) = (cx.n, &cx.mime, &cx.atom);
    line(o, "");
    line(o, &format!("--{}", cx.boundary));
    line(o, "Content-Description: Delivery report");
    let global = if mime.global { "global-" } else { "" };
    line(o, &format!("Content-Type: message/{global}delivery-status"));
    // Postfix declares this part 8bit only for SMTPUTF8 mail, so that a
    // downgrade never has to re-encode a message/delivery-status.
    if mime.eight_bit && mime.global {
        line(o, "Content-Transfer-Encoding: 8bit");
    }
    line(o, "");
    line(o, &format!("Reporting-MTA: dns; {}", cx.p.myhostname));
    if let Some(envid) = n.envid.filter(|e| !e.is_empty()) {
        let envid = clean(envid, mime.eight_bit);
        line(o, &format!("Original-Envelope-Id: {envid}"));
    }
    line(o, &format!("X-{atom}-Queue-ID: {}", n.qid));
    let kind = address_type(mime, n.sender);
    line(o, &format!("X-{atom}-Sender: {kind}; {}", cx.sender));
    if n.arrival_secs > 0 {
        line(o, &format!("Arrival-Date: {}", (cx.date)(n.arrival_secs)));
    }
    for r in rcpts {
        line(o, "");
        push_recipient_dsn(o, cx, r);
    }
}

/// Part 3: Return-Path: and the original or its headers, then the closing
/// delimiter (`bounce_original()`).
fn push_original(o: &mut Vec<u8>, cx: &Ctx<'_>, returned: &[u8], headers_only: bool) {
    let mime = &cx.mime;
    line(o, "");
    line(o, &format!("--{}", cx.boundary));
    let undelivered = match cx.n.kind {
        NoticeKind::Failure | NoticeKind::Delay => "Undelivered ",
        NoticeKind::Success => "",
    };
    let what = if headers_only {
        "Message Headers"
    } else {
        "Message"
    };
    line(o, &format!("Content-Description: {undelivered}{what}"));
    let content_type = match (mime.global, headers_only) {
        (true, true) => "message/global-headers",
        (true, false) => "message/global",
        (false, true) => "text/rfc822-headers",
        (false, false) => "message/rfc822",
    };
    line(o, &format!("Content-Type: {content_type}"));
    if mime.eight_bit {
        line(o, "Content-Transfer-Encoding: 8bit");
    }
    line(o, "");
    line(o, &format!("Return-Path: <{}>", cx.sender));
    o.extend_from_slice(returned);
    // Postfix copies records, each ending in a newline.
    if !returned.is_empty() && !returned.ends_with(b"\n") {
        o.extend_from_slice(b"\r\n");
    }
    line(o, "");
    line(o, &format!("--{}--", cx.boundary));
}

/// One recipient's block of the delivery report (`bounce_recipient_dsn()`).
fn push_recipient_dsn(o: &mut Vec<u8>, cx: &Ctx<'_>, r: &NoticeRcpt) {
    let (p, n, mime, atom) = (cx.p, cx.n, &cx.mime, &cx.atom);
    let utf8 = mime.eight_bit;
    line(
        o,
        &format!(
            "Final-Recipient: {}; {}",
            address_type(mime, &r.address),
            clean(&r.address, utf8)
        ),
    );
    match r.orcpt.as_deref().filter(|s| !s.is_empty()) {
        Some(orcpt) => line(o, &format!("Original-Recipient: {}", clean(orcpt, utf8))),
        None => {
            // What Postfix's smtpd records when the client gave no ORCPT:
            // the address as it was given, before aliasing.
            let given = r
                .original
                .as_deref()
                .filter(|s| !s.is_empty())
                .unwrap_or(&r.address);
            line(
                o,
                &format!(
                    "Original-Recipient: {};{}",
                    address_type(mime, given),
                    clean(given, utf8)
                ),
            );
        }
    }
    let action = match n.kind {
        NoticeKind::Failure => "failed",
        NoticeKind::Delay | NoticeKind::Success => r.action.as_str(),
    };
    line(o, &format!("Action: {action}"));
    line(o, &format!("Status: {}", clean(&r.status, utf8)));
    if let Some(mta) = r.remote_mta.as_deref().filter(|s| !s.is_empty()) {
        let text = format!("Remote-MTA: dns; {}", clean(mta, utf8));
        push_wrapped(o, text.as_bytes(), WRAP_WIDTH, WRAP_INDENT);
    }
    let diagnostic = match &r.diagnostic {
        Some(d) if !d.kind.is_empty() && !d.text.is_empty() => format!(
            "Diagnostic-Code: {}; {}",
            clean(&d.kind, utf8),
            clean(&d.text, utf8)
        ),
        _ => format!("Diagnostic-Code: X-{atom}; {}", clean(&r.reason, utf8)),
    };
    push_wrapped(o, diagnostic.as_bytes(), WRAP_WIDTH, WRAP_INDENT);
    if n.kind == NoticeKind::Delay {
        let until = n.arrival_secs.saturating_add(p.maximal_queue_lifetime_s);
        line(o, &format!("Will-Retry-Until: {}", (cx.date)(until)));
    }
}

/// `bounce_original()`'s choice: failures honour RET= (full by default);
/// delay and success notices return headers only; so does any notice whose
/// original is empty or over `bounce_size_limit`.
fn returns_headers_only(p: &NoticeParams, n: &Notice<'_>) -> bool {
    let by_kind = match n.kind {
        NoticeKind::Failure => n.ret == Some(Ret::Hdrs),
        NoticeKind::Delay | NoticeKind::Success => true,
    };
    let too_big = p.bounce_size_limit > 0
        && (n.original.is_empty() || n.original.len() > p.bounce_size_limit);
    by_kind || too_big
}

/// The leading header lines of `content` (with their line ends): every
/// line that is a header or a continuation, up to the first that is
/// neither — normally the empty line before the body.
fn header_section(content: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos < content.len() {
        let end = memchr(b'\n', &content[pos..]).map_or(content.len(), |i| pos + i + 1);
        let mut text = &content[pos..end];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        let continuation = matches!(text.first(), Some(b' ' | b'\t'));
        if !continuation && !is_header(text) {
            break;
        }
        pos = end;
    }
    &content[..pos]
}

/// Postfix's `is_header()`: a name of printable non-space ASCII, optional
/// blanks, then a colon.
fn is_header(line: &[u8]) -> bool {
    let mut name_len = 0;
    let mut blanks = false;
    for &b in line {
        match b {
            b':' => return name_len > 0,
            b' ' | b'\t' if name_len > 0 => blanks = true,
            b'!'..=b'~' if !blanks => name_len += 1,
            _ => return false,
        }
    }
    false
}

/// `rfc822`, or `utf-8` for a non-ASCII address in SMTPUTF8 mail.
fn address_type(mime: &Mime, address: &str) -> &'static str {
    if mime.global && !address.is_ascii() {
        "utf-8"
    } else {
        "rfc822"
    }
}

/// `mail_name` as an RFC 822 atom: specials and white space become `-`
/// (`bounce_mail_alloc()`).
fn diagnostic_atom(mail_name: &str) -> String {
    mail_name
        .chars()
        .map(|c| {
            if " \t\r\n()<>@,;:\\\".[]".contains(c) {
                '-'
            } else {
                c
            }
        })
        .collect()
}

/// Text from outside copied into the notice: control characters become
/// `?`, and so does anything non-ASCII when the notice is 7bit (Postfix's
/// `printable()`).
fn clean(text: &str, utf8: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() || (!utf8 && !c.is_ascii());
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if bad(c) { '?' } else { c }).collect())
}

fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn header_section_stops_at_the_body() {
        let msg = b"A: 1\r\n\tmore\r\nB : 2\r\n\r\nbody\r\nC: 3\r\n";
        assert_eq!(header_section(msg), b"A: 1\r\n\tmore\r\nB : 2\r\n");
        // A non-header line ends the section even without an empty line.
        assert_eq!(header_section(b"A: 1\r\nnot a header\r\n"), b"A: 1\r\n");
        // Headers only, no final line end.
        assert_eq!(header_section(b"A: 1\r\nB: 2"), b"A: 1\r\nB: 2");
        assert_eq!(header_section(b""), b"");
        assert_eq!(header_section(b"body first\r\n"), b"");
    }

    #[test]
    fn is_header_table() {
        let table: &[(&[u8], bool)] = &[
            (b"Subject: x", true),
            (b"Subject:", true),
            (b"X-A b: x", false),
            (b"Name  : x", true),
            (b": x", false),
            (b" A: x", false),
            (b"From jane Sat", false),
            (b"", false),
            (b"A\x01: x", false),
        ];
        for &(text, want) in table {
            assert_eq!(is_header(text), want, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn atom_and_clean() {
        assert_eq!(diagnostic_atom("Sluice"), "Sluice");
        assert_eq!(diagnostic_atom("My MTA (v1.0)"), "My-MTA--v1-0-");
        assert_eq!(clean("a\r\nb\tc", true), "a??b?c");
        assert_eq!(clean("jöhn", true), "jöhn");
        assert_eq!(clean("jöhn", false), "j?hn");
    }
}
