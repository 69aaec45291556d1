//! sendmail end to end, in-process: a temporary configuration directory,
//! buffers for the standard streams, and the maildrop read back.

use std::path::{Path, PathBuf};

use sluice_protocols::envelope::{Body, Notify, Ret};
use sluice_storage::maildrop::{self, MaildropMessage};

use super::options::{self, Mode};
use super::*;

/// A configuration directory with `queue_directory` inside it; removed
/// when dropped.
struct Instance {
    dir: PathBuf,
}

impl Instance {
    fn new(tag: &str) -> Instance {
        Instance::with_main_cf(tag, "")
    }

    fn with_main_cf(tag: &str, extra: &str) -> Instance {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sluice-sendmail-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let main_cf = format!(
            "queue_directory = {}\nmyhostname = mail.example.com\n{extra}",
            dir.join("queue").display()
        );
        std::fs::write(dir.join("main.cf"), main_cf).unwrap();
        Instance { dir }
    }

    fn queue(&self) -> PathBuf {
        self.dir.join("queue")
    }

    /// Runs sendmail with `-C <dir>` prepended; (status, stdout, stderr).
    fn run(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        self.run_as("sendmail", args, stdin)
    }

    fn run_as(&self, argv0: &str, args: &[&str], mut stdin: &[u8]) -> (i32, String, String) {
        let mut full = vec!["-C".to_owned(), self.dir.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main_with_io(argv0, &full, &mut stdin, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// Every deposited message, oldest first.
    fn messages(&self) -> Vec<MaildropMessage> {
        match maildrop::ready_files(&self.queue(), 1000) {
            Ok(files) => files
                .iter()
                .map(|p| maildrop::load(p, u64::MAX).unwrap().message)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    fn only_message(&self) -> MaildropMessage {
        let mut m = self.messages();
        assert_eq!(m.len(), 1, "exactly one message deposited");
        m.remove(0)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rcpts(m: &MaildropMessage) -> Vec<&str> {
    m.envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect()
}

fn login_name() -> String {
    User::current()
        .name
        .expect("the test user has a login name")
}

// ---- end to end ---------------------------------------------------------

#[test]
fn enqueue_while_the_daemon_is_down() {
    let inst = Instance::new("basic");
    let (code, out, err) = inst.run(
        &["bob@example.org, Carol <carol@example.net>"],
        b"From alice Mon Jan  1 00:00:00 2026\nSubject: hi\n\nhello\n",
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let m = inst.only_message();
    assert_eq!(rcpts(&m), ["bob@example.org", "carol@example.net"]);
    assert_eq!(m.envelope.sender, login_name());
    // SAFETY: getuid() cannot fail.
    assert_eq!(m.uid, unsafe { libc::getuid() });
    assert_eq!(m.content, b"Subject: hi\r\n\r\nhello\r\n");
    assert!(!m.envelope.mail.smtputf8);
    assert!(m.submitted_us > 1_600_000_000_000_000);
}

#[test]
fn envelope_options_are_recorded() {
    let inst = Instance::new("envopts");
    let (code, _, err) = inst.run(
        &[
            "-f",
            "Alice <alice@example.com>",
            "-F",
            "Alice Example",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            "envelope-42",
            "-B",
            "8BITMIME",
            "bob@example.org",
        ],
        b"x\n",
    );
    assert_eq!((code, err.as_str()), (0, ""));
    let m = inst.only_message();
    assert_eq!(m.envelope.sender, "alice@example.com");
    assert_eq!(m.fullname.as_deref(), Some("Alice Example"));
    assert_eq!(
        m.envelope.recipients[0].notify,
        Notify(Notify::SUCCESS | Notify::FAILURE)
    );
    assert_eq!(m.envelope.mail.ret, Some(Ret::Hdrs));
    assert_eq!(m.envelope.mail.envid.as_deref(), Some("envelope-42"));
    assert_eq!(m.envelope.mail.body, Body::EightBitMime);
}

#[test]
fn null_sender() {
    for f in ["<>", ""] {
        let inst = Instance::new("null");
        let (code, _, _) = inst.run(&["-f", f, "bob@example.org"], b"x\n");
        assert_eq!(code, 0);
        assert_eq!(inst.only_message().envelope.sender, "", "-f {f:?}");
    }
}

#[test]
fn t_reads_recipients_from_headers_and_adds_the_command_line() {
    let inst = Instance::new("t");
    let msg = b"To: a@x.example,\n  B <b@y.example>\nCc: c@z.example\nBcc: hidden@w.example\nSubject: s\n\nTo: body@nowhere\n";
    let (code, _, err) = inst.run(&["-t", "extra@v.example"], msg);
    assert_eq!((code, err.as_str()), (0, ""));
    let m = inst.only_message();
    assert_eq!(
        rcpts(&m),
        [
            "extra@v.example",
            "a@x.example",
            "b@y.example",
            "c@z.example",
            "hidden@w.example"
        ]
    );
    // Bcc: stays in the content; cleanup removes it.
    assert!(m.content.windows(5).any(|w| w == b"Bcc: "));
}

#[test]
fn t_with_resent_headers_uses_only_those() {
    let inst = Instance::new("resent");
    let msg = b"To: orig@x.example\nResent-To: new@y.example\nResent-Cc: also@y.example\n\nbody\n";
    let (code, _, _) = inst.run(&["-t"], msg);
    assert_eq!(code, 0);
    assert_eq!(
        rcpts(&inst.only_message()),
        ["new@y.example", "also@y.example"]
    );
}

#[test]
fn no_recipients_is_a_usage_error() {
    let inst = Instance::new("norcpt");
    let (code, _, err) = inst.run(&[], b"Subject: x\n\n");
    assert_eq!(code, exit::USAGE);
    assert_eq!(
        err,
        "sendmail: fatal: Recipient addresses must be specified on the command line or via the -t option\n"
    );
    let (code, _, err) = inst.run(&["-t"], b"Subject: x\nTo: undisclosed-recipients:;\n\n");
    assert_eq!(code, exit::USAGE);
    assert_eq!(
        err,
        format!(
            "sendmail: fatal: {}({}): No recipient addresses found in message header\n",
            login_name(),
            // SAFETY: getuid() cannot fail.
            unsafe { libc::getuid() }
        )
    );
    assert!(inst.messages().is_empty());
}

#[test]
fn lone_dot_with_and_without_i() {
    let input = b"Subject: x\n\nline\n.\nafter the dot\n";
    let inst = Instance::new("dot");
    assert_eq!(inst.run(&["bob@example.org"], input).0, 0);
    assert_eq!(inst.only_message().content, b"Subject: x\r\n\r\nline\r\n");

    for flag in ["-i", "-oi"] {
        let inst = Instance::new("dot-i");
        assert_eq!(inst.run(&[flag, "bob@example.org"], input).0, 0);
        assert_eq!(
            inst.only_message().content,
            b"Subject: x\r\n\r\nline\r\n.\r\nafter the dot\r\n"
        );
    }
}

#[test]
fn utf8_envelope_or_headers_mark_smtputf8() {
    let inst = Instance::new("utf8");
    assert_eq!(inst.run(&["jöran@exämple.org"], b"x\n").0, 0);
    assert!(inst.only_message().envelope.mail.smtputf8);
    let inst = Instance::new("utf8h");
    assert_eq!(
        inst.run(&["-t"], "To: Jöran <j@x.example>\n\n".as_bytes())
            .0,
        0
    );
    assert!(inst.only_message().envelope.mail.smtputf8);
}

#[test]
fn oversized_input_is_a_data_error() {
    let inst = Instance::with_main_cf("big", "message_size_limit = 100\n");
    let big = vec![b'x'; 200];
    let (code, _, err) = inst.run(&["bob@example.org"], &big);
    assert_eq!(code, exit::DATAERR, "{err}");
    assert!(err.contains("message file too big"), "{err}");
    assert!(inst.messages().is_empty());
}

#[test]
fn bad_options_are_usage_errors() {
    let inst = Instance::new("badopt");
    let cases: &[(&[&str], &str)] = &[
        (&["-k"], "sendmail: invalid option -- 'k'\nsendmail: fatal: usage: sendmail [options]\n"),
        (&["-f"], "sendmail: option requires an argument -- 'f'\nsendmail: fatal: usage: sendmail [options]\n"),
        (&["-X", "logfile"], "sendmail: fatal: unsupported: -Xl\n"),
        (&["-bq"], "sendmail: fatal: unsupported: -bq\n"),
        (&["-n", "bob"], "sendmail: fatal: -n option not supported\n"),
        (&["-qS"], "sendmail: fatal: -qS is not implemented\n"),
        (&["-qR"], "sendmail: fatal: specify: -qRsitename\n"),
        (&["-B", "BINARY", "bob"], "sendmail: fatal: -B option needs 8BITMIME or 7BIT\n"),
        (&["-bp", "bob"], "sendmail: fatal: display queue mode requires no recipient\n"),
        (&["-bs", "-t"], "sendmail: fatal: -t can be used only in delivery mode\n"),
        (&["-bs", "bob"], "sendmail: fatal: stand-alone mode requires no recipient\n"),
    ];
    for (args, want) in cases {
        let (code, _, err) = inst.run(args, b"");
        assert_eq!((code, err.as_str()), (exit::USAGE, *want), "{args:?}");
    }
}

#[test]
fn queue_options_exit_zero() {
    let inst = Instance::new("q");
    assert_eq!(inst.run(&["-q30m"], b""), (0, String::new(), String::new()));
    let (code, _, err) = inst.run(&["-q"], b"");
    assert_eq!(code, 0);
    assert!(err.starts_with("sendmail: warning: queue flush"), "{err}");
    assert_eq!(inst.run(&["-qRexample.com"], b"").0, 0);
    assert_eq!(inst.run(&["-qIABC123"], b"").0, 0);
    assert_eq!(inst.run(&["-bh"], b"").0, 0);
}

#[test]
fn bad_config_is_exit_78() {
    let inst = Instance::with_main_cf("badcf", "message_size_limit = lots\n");
    let (code, _, err) = inst.run(&["bob@example.org"], b"x\n");
    assert_eq!(code, exit::CONFIG, "{err}");
    assert!(err.starts_with("sendmail: fatal: "), "{err}");
}

#[test]
fn unauthorized_user_is_exit_77() {
    let inst = Instance::with_main_cf("acl", "authorized_submit_users = no-such-user-here\n");
    let (code, _, err) = inst.run(&["bob@example.org"], b"x\n");
    assert_eq!(code, exit::NOPERM);
    assert!(err.contains("is not allowed to submit mail"), "{err}");
    assert!(inst.messages().is_empty());
}

#[test]
fn an_unreadable_submit_acl_table_is_a_configuration_error() {
    let inst = Instance::with_main_cf(
        "acltable",
        "authorized_submit_users = !nosuchtype:/etc/x, static:anyone\n",
    );
    let (code, _, err) = inst.run(&["bob@example.org"], b"x\n");
    assert_eq!(code, exit::CONFIG, "{err}");
    assert!(
        err.contains("main.cf:") && err.contains("authorized_submit_users"),
        "{err}"
    );
    assert!(inst.messages().is_empty());
}

#[test]
fn bs_session_deposits_each_message() {
    let inst = Instance::new("bs");
    let input = b"EHLO client.example\r\n\
MAIL FROM:<alice@example.com>\r\n\
RCPT TO:<bob@example.org> NOTIFY=SUCCESS\r\n\
DATA\r\n\
Subject: one\r\n\r\nfirst\r\n..dot\r\n.\r\n\
MAIL FROM:<>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\n\
QUIT\r\n";
    let (code, out, err) = inst.run(&["-bs"], input);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("220 mail.example.com ESMTP"), "{out}");
    let msgs = inst.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].envelope.sender, "alice@example.com");
    assert_eq!(rcpts(&msgs[0]), ["bob@example.org"]);
    assert_eq!(
        msgs[0].envelope.recipients[0].notify,
        Notify(Notify::SUCCESS)
    );
    assert_eq!(msgs[0].content, b"Subject: one\r\n\r\nfirst\r\n.dot\r\n");
    assert_eq!(msgs[1].envelope.sender, "");
    assert_eq!(msgs[1].content, b"Subject: two\r\n\r\nsecond\r\n");
    // The replies name the maildrop files as queue IDs.
    for path in maildrop::ready_files(&inst.queue(), 10).unwrap() {
        let id = path.file_name().unwrap().to_str().unwrap();
        assert!(
            out.contains(&format!("250 2.0.0 Ok: queued as {id}\r\n")),
            "{out}"
        );
    }
    assert!(out.ends_with("221 2.0.0 Bye\r\n"), "{out}");
}

#[test]
fn bs_session_with_lf_line_endings_and_no_quit() {
    let inst = Instance::new("bs-lf");
    let input =
        b"HELO c\nMAIL FROM:<a@x.example>\nRCPT TO:<b@y.example>\nDATA\nSubject: s\n\nbody\n.\n";
    let (code, out, err) = inst.run(&["-bs"], input);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("250 2.0.0 Ok: queued as "), "{out}");
    let m = inst.only_message();
    assert_eq!(rcpts(&m), ["b@y.example"]);
    assert_eq!(m.content, b"Subject: s\r\n\r\nbody\r\n");
}

#[test]
fn mailq_by_argv0_refuses_recipients() {
    let inst = Instance::new("mailq");
    let (code, _, err) = inst.run_as("/usr/bin/mailq", &["bob"], b"");
    assert_eq!(code, exit::USAGE);
    assert_eq!(
        err,
        "mailq: fatal: display queue mode requires no recipient\n"
    );
}

// ---- option parsing -----------------------------------------------------

fn parse(args: &[&str]) -> Result<options::Options, options::UsageError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    options::parse("sendmail", &args)
}

#[test]
fn option_table() {
    let o = parse(&["-oi", "-t", "-f", "a@x", "bob", "-v"]).unwrap();
    assert!(!o.dot_ends_input && o.extract_recipients);
    assert_eq!(o.sender.as_deref(), Some("a@x"));
    // Options end at the first operand: "-v" is a recipient.
    assert_eq!(o.recipients, ["bob", "-v"]);
    assert_eq!(o.verbose, 0);

    // Bundled flags and an attached argument.
    let o = parse(&["-tifalice@x", "bob"]).unwrap();
    assert!(o.extract_recipients && !o.dot_ends_input);
    assert_eq!(o.sender.as_deref(), Some("alice@x"));

    let o = parse(&["-ralice", "--", "-notanoption"]).unwrap();
    assert_eq!(o.sender.as_deref(), Some("alice"));
    assert_eq!(o.recipients, ["-notanoption"]);

    // Ignored options, some with arguments.
    let o = parse(&[
        "-Am",
        "-Ac",
        "-h",
        "10",
        "-L",
        "label",
        "-m",
        "-o7",
        "-o8",
        "-om",
        "-oeq",
        "-U",
        "-c",
        "-e",
        "x",
        "-p",
        "smtp",
        "-x",
        "-G",
        "-O",
        "smtputf8=yes",
        "bob",
    ])
    .unwrap();
    assert_eq!(o.recipients, ["bob"]);
    assert_eq!(o.mode, Mode::Enqueue);

    let modes: &[(&[&str], Mode)] = &[
        (&["-bp"], Mode::Mailq),
        (&["-bs"], Mode::StandAlone),
        (&["-bd"], Mode::Daemon),
        (&["-bi"], Mode::NewAliases),
        (&["-I"], Mode::NewAliases),
        (&["-bm"], Mode::Enqueue),
        (&["-bh"], Mode::Ignore),
        (&["-bH"], Mode::Ignore),
        (&["-q"], Mode::FlushQueue),
        (&["-b", "p"], Mode::Mailq),
    ];
    for (args, mode) in modes {
        assert_eq!(parse(args).unwrap().mode, *mode, "{args:?}");
    }
    assert_eq!(options::parse("mailq", &[]).unwrap().mode, Mode::Mailq);
    assert_eq!(
        options::parse("newaliases", &[]).unwrap().mode,
        Mode::NewAliases
    );

    let o = parse(&["-q15m"]).unwrap();
    assert_eq!(o.queue_interval.as_deref(), Some("15m"));
    let o = parse(&["-qRexample.com"]).unwrap();
    assert_eq!(o.flush_site.as_deref(), Some("example.com"));
    let o = parse(&["-qIABC"]).unwrap();
    assert_eq!(o.flush_id.as_deref(), Some("ABC"));
}

#[test]
fn config_dir_option() {
    let o = parse(&["-C", "/etc/sluice"]).unwrap();
    assert_eq!(o.config_dir.as_deref(), Some(Path::new("/etc/sluice")));
    let o = parse(&["-C/etc/sluice/main.cf"]).unwrap();
    assert_eq!(o.config_dir.as_deref(), Some(Path::new("/etc/sluice")));
    let o = parse(&["-C", "main.cf"]).unwrap();
    assert_eq!(o.config_dir.as_deref(), Some(Path::new(".")));
}

#[test]
fn dsn_options() {
    let n = |v: &str| parse(&["-N", v]).unwrap();
    assert_eq!(n("never").notify, Notify(Notify::NEVER));
    assert_eq!(
        n("Success,Delay").notify,
        Notify(Notify::SUCCESS | Notify::DELAY)
    );
    let bad = n("never,success");
    assert_eq!(bad.notify, Notify::NONE_GIVEN);
    assert_eq!(bad.warnings, ["bad -N option value -- ignored"]);
    assert_eq!(n("bogus").warnings, ["bad -N option value -- ignored"]);

    assert_eq!(parse(&["-R", "FULL"]).unwrap().ret, Some(Ret::Full));
    assert_eq!(parse(&["-Rhdrs"]).unwrap().ret, Some(Ret::Hdrs));
    assert_eq!(parse(&["-R", "x"]).unwrap().ret, None);

    let long = "x".repeat(101);
    let o = parse(&["-V", &long]).unwrap();
    assert_eq!(
        (o.envid, o.warnings),
        (None, vec!["too long -V option value -- ignored".to_owned()])
    );
    let o = parse(&["-V", "bad\tenvid"]).unwrap();
    assert_eq!(o.warnings, ["bad syntax in -V option value -- ignored"]);
    assert_eq!(parse(&["-V", "abc"]).unwrap().envid.as_deref(), Some("abc"));

    assert_eq!(parse(&["-B", "7BIT"]).unwrap().body, Body::SevenBit);
    assert!(
        parse(&["-B", "8bitmime"]).is_err(),
        "case matters, as in Postfix"
    );
}

#[test]
fn verp_forms() {
    assert_eq!(parse(&["-XV"]).unwrap().verp.as_deref(), Some("+="));
    assert_eq!(parse(&["-XV-="]).unwrap().verp.as_deref(), Some("-="));
    // The pre-2.3 spellings, with a deprecation warning.
    let o = parse(&["-V", "+="]).unwrap();
    assert_eq!((o.verp.as_deref(), o.envid), (Some("+="), None));
    assert_eq!(o.warnings.len(), 1);
    let o = parse(&["-V+="]).unwrap();
    assert_eq!(o.verp.as_deref(), Some("+="));
    assert_eq!(
        parse(&["-XVab"]).unwrap_err().message,
        "-V requires two characters from -=+"
    );
}

#[test]
fn conflicts() {
    let err = |args: &[&str]| parse(args).unwrap_err().message;
    assert_eq!(err(&["-bv", "-t"]), "-t option cannot be used with -bv");
    assert_eq!(
        err(&["-bv", "-N", "never"]),
        "-N option cannot be used with -bv"
    );
    assert_eq!(err(&["-bv", "-v"]), "-v option cannot be used with -bv");
    assert!(parse(&["-bv", "-v", "-v"]).is_ok());
    assert_eq!(
        err(&["-bp", "-qRx"]),
        "-qR can be used only in delivery mode"
    );
    assert_eq!(
        err(&["-bp", "-qIx"]),
        "-qI can be used only in delivery mode"
    );
    assert_eq!(err(&["-oA"]), "-oA requires pathname");
    let o = parse(&["-bd", "-q"]).unwrap();
    assert_eq!(o.mode, Mode::Daemon);
    assert_eq!(o.warnings, ["ignoring -q option in daemon mode"]);
}

#[test]
fn gecos_full_name() {
    let user = |name: &str, gecos: &str| User {
        uid: 1000,
        name: Some(name.into()),
        gecos: Some(gecos.into()),
    };
    assert_eq!(
        user("alice", "Alice Example,Room 1,555")
            .gecos_name()
            .as_deref(),
        Some("Alice Example")
    );
    assert_eq!(
        user("bob", "& Builder").gecos_name().as_deref(),
        Some("Bob Builder")
    );
    assert_eq!(user("carol", ",,,").gecos_name(), None);
}
