//! Golden tests: exact stdout, stderr and exit status for each mode, run
//! against a fixture directory with fixed machine facts.

use std::fs;
use std::path::PathBuf;

use super::*;

const MAIN_CF: &str = "\
# test main.cf
myhostname = mx.example.com
mydestination = $myhostname,
    localhost.$mydomain   localhost
relayhost =
smtpd_banner = $myhostname   ESMTP $mail_name
my_classes = check_a
smtpd_restriction_classes = $my_classes
typo_param = 1
mail_name = Postfix
";

const MASTER_CF: &str = "\
# service type  private unpriv  chroot  wakeup  maxproc command + args
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o { smtpd_banner = $myhostname hi }
  -o smtpd_helo_required=yes
pickup    unix  n       -       y       60      1       pickup
127.0.0.1:2525 inet n - n - 10 smtpd -v
relay     unix  -       -       y       -       -       smtp -o smtp_helo_timeout=5 -o relayhost=
";

/// A fresh directory with the fixture files.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let dir =
            std::env::temp_dir().join(format!("sluice-postconf-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("main.cf"), MAIN_CF).unwrap();
        fs::write(dir.join("master.cf"), MASTER_CF).unwrap();
        Fixture { dir }
    }

    /// Runs postconf with `-c DIR` given as the default directory.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(
            &args,
            &self.dir,
            Some(&HostFacts::for_tests()),
            &mut out,
            &mut err,
        );
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn main_cf(&self) -> String {
        fs::read_to_string(self.dir.join("main.cf")).unwrap()
    }

    fn unused_warning(&self) -> String {
        format!(
            "postconf: warning: {}/main.cf: unused parameter: typo_param=1\n",
            self.dir.display()
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn n_shows_main_cf_settings_sorted_with_normalized_whitespace() {
    let f = Fixture::new("n");
    let (code, out, err) = f.run(&["-n"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "\
mail_name = Postfix
my_classes = check_a
mydestination = $myhostname, localhost.$mydomain localhost
myhostname = mx.example.com
relayhost =
smtpd_banner = $myhostname ESMTP $mail_name
smtpd_restriction_classes = $my_classes
"
    );
    assert_eq!(err, f.unused_warning());
}

#[test]
fn x_expands_values() {
    let f = Fixture::new("nx");
    let (code, out, _) = f.run(&["-nx"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "\
mail_name = Postfix
my_classes = check_a
mydestination = mx.example.com, localhost.example.com localhost
myhostname = mx.example.com
relayhost =
smtpd_banner = mx.example.com ESMTP Postfix
smtpd_restriction_classes = check_a
"
    );
}

#[test]
fn named_parameters_and_unknown_names() {
    let f = Fixture::new("names");
    let (code, out, err) = f.run(&["myhostname", "nosuch", "smtpd_timeout", "typo_param"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "myhostname = mx.example.com\nsmtpd_timeout = ${stress?{10}:{300}}s\n"
    );
    assert_eq!(
        err,
        format!(
            "postconf: warning: nosuch: unknown parameter\n\
             postconf: warning: typo_param: unknown parameter\n{}",
            f.unused_warning()
        )
    );
    // -n with a name that main.cf does not set prints nothing for it.
    let (_, out, _) = f.run(&["-n", "relayhost", "smtpd_timeout"]);
    assert_eq!(out, "relayhost =\n");
}

#[test]
fn h_and_capital_h_hide_names_or_values() {
    let f = Fixture::new("h");
    let (code, out, _) = f.run(&["-h", "myhostname", "relayhost", "mail_name"]);
    assert_eq!(code, 0);
    assert_eq!(out, "mx.example.com\n\nPostfix\n");
    let (_, out, _) = f.run(&["-hx", "smtpd_banner"]);
    assert_eq!(out, "mx.example.com ESMTP Postfix\n");
    let (_, out, _) = f.run(&["-nH"]);
    assert_eq!(
        out,
        "mail_name\nmy_classes\nmydestination\nmyhostname\nrelayhost\nsmtpd_banner\n\
         smtpd_restriction_classes\n"
    );
}

#[test]
fn d_shows_defaults_without_reading_main_cf() {
    let f = Fixture::new("d");
    let (code, out, err) = f.run(&[
        "-d",
        "myhostname",
        "mydomain",
        "mail_name",
        "smtpd_banner",
        "my_classes",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "\
myhostname = host.example.com
mydomain = example.com
mail_name = Sluice
smtpd_banner = $myhostname ESMTP $mail_name
"
    );
    // User-defined names exist only with main.cf; no unused warnings.
    assert_eq!(err, "postconf: warning: my_classes: unknown parameter\n");
    let (_, out, _) = f.run(&["-dx", "smtpd_banner", "smtpd_timeout"]);
    assert_eq!(
        out,
        "smtpd_banner = host.example.com ESMTP Sluice\nsmtpd_timeout = 300s\n"
    );
    let (_, out, _) = f.run(&["-d", "config_directory"]);
    assert_eq!(out, format!("config_directory = {}\n", f.dir.display()));
}

#[test]
fn no_options_lists_every_parameter_sorted() {
    let f = Fixture::new("all");
    let (code, out, err) = f.run(&[]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    // Every registered parameter plus the one user-defined name in use.
    assert_eq!(lines.len(), PARAMS.len() + 1);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" =").next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for want in [
        "my_classes = check_a",
        "myhostname = mx.example.com",
        "relayhost =",
        "smtpd_timeout = ${stress?{10}:{300}}s",
        "mynetworks = 127.0.0.1/32 192.0.2.10/32 [::1]/128 [2001:db8::10]/128",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("typo_param"));
    assert_eq!(err, f.unused_warning());
    // -C selects classes.
    let (_, out, _) = f.run(&["-C", "user"]);
    assert_eq!(out, "my_classes = check_a\n");
    let (_, out, _) = f.run(&["-C", "builtin"]);
    assert_eq!(out.lines().count(), PARAMS.len());
}

#[test]
fn o_overrides_main_cf() {
    let f = Fixture::new("o");
    let (code, out, _) = f.run(&["-o", "mail_name=Over", "-x", "smtpd_banner"]);
    assert_eq!(code, 0);
    assert_eq!(out, "smtpd_banner = mx.example.com ESMTP Over\n");
    let (code, _, err) = f.run(&["-o", "junk", "mail_name"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "postconf: fatal: invalid parameter override: junk: missing '=' after attribute name\n"
    );
}

#[test]
fn f_folds_long_lines() {
    let mut out = Vec::new();
    let words: Vec<String> = (0..12).map(|i| format!("word{i:02}.example")).collect();
    let text = format!("relay_domains = {}", words.join(",  "));
    print_line(&mut out, flag::FOLD_LINE, &text).ok().unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\
relay_domains = word00.example, word01.example, word02.example, word03.example,
    word04.example, word05.example, word06.example, word07.example,
    word08.example, word09.example, word10.example, word11.example
"
    );
    let mut out = Vec::new();
    print_line(&mut out, 0, &text).ok().unwrap();
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn m_prints_master_cf_in_postfix_columns() {
    let f = Fixture::new("m");
    let (code, out, err) = f.run(&["-M"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "\
smtp       inet  n       -       y       -       -       smtpd
submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/submission -o {smtpd_banner=$myhostname hi} -o smtpd_helo_required=yes
pickup     unix  n       -       y       60      1       pickup
127.0.0.1:2525 inet n    -       n       -       10      smtpd -v
relay      unix  -       -       y       -       -       smtp -o smtp_helo_timeout=5 -o relayhost=
"
    );
    let (_, out, _) = f.run(&["-Mf", "submission/inet", "127.0.0.1:2525"]);
    assert_eq!(
        out,
        "\
submission inet  n       -       y       -       -       smtpd
    -o syslog_name=postfix/submission
    -o {smtpd_banner=$myhostname hi}
    -o smtpd_helo_required=yes
127.0.0.1:2525 inet n    -       n       -       10      smtpd -v
"
    );
    let (_, out, _) = f.run(&["-Mx", "submission"]);
    assert!(
        out.contains(" -o {smtpd_banner=mx.example.com hi} "),
        "{out}"
    );
    let (code, out, err) = f.run(&["-M", "*/unix", "inet", "smtp/fifo"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "\
pickup     unix  n       -       y       60      1       pickup
relay      unix  -       -       y       -       -       smtp -o smtp_helo_timeout=5 -o relayhost=
"
    );
    assert_eq!(
        err,
        "postconf: warning: unmatched request: \"inet\"\n\
         postconf: warning: unmatched request: \"smtp/fifo\"\n"
    );
    let (code, _, err) = f.run(&["-M", "a/b/c"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "postconf: fatal: -M option requires service_name[/type]\n"
    );
}

#[test]
fn e_edits_main_cf_in_place() {
    let f = Fixture::new("e");
    let (code, out, err) = f.run(&[
        "-e",
        "mydestination = $myhostname",
        "relayhost=[smart.example]:587",
        "  new_param =  a   b ",
    ]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert_eq!(
        f.main_cf(),
        "\
# test main.cf
myhostname = mx.example.com
mydestination = $myhostname
relayhost = [smart.example]:587
smtpd_banner = $myhostname   ESMTP $mail_name
my_classes = check_a
smtpd_restriction_classes = $my_classes
typo_param = 1
mail_name = Postfix
new_param = a   b
"
    );
    // name=value without -e edits too (Postfix 2.8 and later).
    let (code, _, _) = f.run(&["mail_name=Sluice"]);
    assert_eq!(code, 0);
    assert!(f
        .main_cf()
        .ends_with("mail_name = Sluice\nnew_param = a   b\n"));
}

#[test]
fn x_and_hash_remove_or_comment_out() {
    let f = Fixture::new("X");
    let (code, _, err) = f.run(&["-X", "mydestination", "typo_param", "absent"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        f.main_cf(),
        "\
# test main.cf
myhostname = mx.example.com
relayhost =
smtpd_banner = $myhostname   ESMTP $mail_name
my_classes = check_a
smtpd_restriction_classes = $my_classes
mail_name = Postfix
"
    );
    let (code, _, _) = f.run(&["-#", "relayhost ", "mail_name"]);
    assert_eq!(code, 0);
    assert_eq!(
        f.main_cf(),
        "\
# test main.cf
myhostname = mx.example.com
#relayhost =
smtpd_banner = $myhostname   ESMTP $mail_name
my_classes = check_a
smtpd_restriction_classes = $my_classes
#mail_name = Postfix
"
    );
}

#[test]
fn edit_warns_about_multiple_definitions() {
    let f = Fixture::new("multi");
    fs::write(f.dir.join("main.cf"), "a = 1\na = 2\n").unwrap();
    let (code, _, err) = f.run(&["-e", "a=3"]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "postconf: warning: {}/main.cf: multiple entries for \"a\"\n",
            f.dir.display()
        )
    );
    assert_eq!(f.main_cf(), "a = 3\na = 3\n");
}

#[test]
fn edit_errors() {
    let f = Fixture::new("editerr");
    let cases: &[(&[&str], &str)] = &[
        (&["-e", "foo"], "missing '=' after attribute name: \"foo\""),
        (&["-e", " = x"], "missing attribute name: \"= x\""),
        (
            &["-e", "a=1\nb=2"],
            "-e, -X, or -# accepts no multi-line input",
        ),
        (&["-e", "# a=1"], "-e, -X, or -# accepts no comment input"),
        // With a first operand name=value, -e is implied and clashes.
        (&["-X", "a=1"], "specify one of -e -X"),
        (
            &["-X", "a", "b=1"],
            "-X or -# requires parameter names without value",
        ),
        (&["-#", " "], "-X or -# requires non-blank parameter names"),
        (&["-e"], "-e requires name=value argument"),
        (&["-X"], "missing service argument"),
        (
            &["-Me", "smtp/inet=x"],
            "master.cf editing is not implemented",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = f.run(args);
        assert_eq!(
            (code, out.as_str(), err),
            (1, "", format!("postconf: fatal: {want}\n")),
            "{args:?}"
        );
    }
    assert_eq!(f.main_cf(), MAIN_CF);
    let empty = std::env::temp_dir().join(format!("sluice-postconf-none-{}", std::process::id()));
    let (code, _, err) = {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let args = vec!["-e".to_string(), "a=1".to_string()];
        let code = run(
            &args,
            &empty,
            Some(&HostFacts::for_tests()),
            &mut out,
            &mut err,
        );
        (code, out, String::from_utf8(err).unwrap())
    };
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "postconf: fatal: open {}/main.cf for reading: No such file or directory\n",
            empty.display()
        )
    );
}

#[test]
fn option_errors_are_postfix_fatals() {
    let f = Fixture::new("opts");
    let cases: &[(&[&str], &str)] = &[
        (&["-d", "-n"], "postconf: fatal: specify one of -d -n\n"),
        (
            &["-Mh"],
            "postconf: fatal: with option -M, do not specify -h\n",
        ),
        (
            &["-Cuser", "-M"],
            "postconf: fatal: with option -M, do not specify -C\n",
        ),
        (&["-ex", "a=1"], "postconf: fatal: specify one of -e -x\n"),
        (&["-m"], "postconf: fatal: option -m is not implemented\n"),
        (
            &["-C", "bogus"],
            "postconf: fatal: unknown -C option value \"bogus\" in \"bogus\"\n",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = f.run(args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (1, "", *want),
            "{args:?}"
        );
    }
    let (code, _, err) = f.run(&["-z"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("postconf: invalid option -- 'z'\npostconf: fatal: usage: postconf [-a (server SASL types)]"),
        "{err}"
    );
    let (code, _, err) = f.run(&["-c"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("postconf: option requires an argument -- 'c'\n"));
    // -c overrides the default directory; options stop at the first name.
    let other = Fixture::new("opts-c");
    fs::write(other.dir.join("main.cf"), "mail_name = Other\n").unwrap();
    let dir = other.dir.display().to_string();
    let (code, out, _) = f.run(&["-c", &dir, "-h", "mail_name", "-n"]);
    assert_eq!(code, 0);
    assert_eq!(out, "Other\n");
    let (_, _, err) = f.run(&["-c", &dir, "--", "-n"]);
    assert_eq!(err, "postconf: warning: -n: unknown parameter\n");
}

#[test]
fn a_broken_config_still_shows() {
    let f = Fixture::new("broken");
    fs::write(
        f.dir.join("main.cf"),
        "smtpd_timeout = soon\nsmtpd_relay_restrictions =\nmynetworks_style = bogus\n",
    )
    .unwrap();
    let (code, out, err) = f.run(&["-n"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "mynetworks_style = bogus\nsmtpd_relay_restrictions =\nsmtpd_timeout = soon\n"
    );
    assert!(err.contains("mynetworks_style"), "{err}");
    // A line that is not name = value is fatal, as in Postfix.
    fs::write(f.dir.join("main.cf"), "oops\n").unwrap();
    let (code, _, err) = f.run(&["-n"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "postconf: fatal: {}/main.cf:1: missing '=' after parameter name\n",
            f.dir.display()
        )
    );
}

#[test]
fn a_missing_main_cf_shows_the_built_in_one() {
    let f = Fixture::new("builtin");
    fs::remove_file(f.dir.join("main.cf")).unwrap();
    fs::remove_file(f.dir.join("master.cf")).unwrap();
    let (code, out, err) = f.run(&["-n"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "\
inet_interfaces = loopback-only
mynetworks = 127.0.0.0/8 [::1]/128
queue_directory = sluice-queue
"
    );
    let (_, out, _) = f.run(&["-M"]);
    assert_eq!(
        out,
        "127.0.0.1:2525 inet n    -       n       -       -       smtpd\n"
    );
}

#[test]
fn an_undefined_parameter_warns_once_after_the_output() {
    let f = Fixture::new("undefined");
    let text =
        MAIN_CF.replace("typo_param = 1\n", "") + "smtpd_banner = $myhostname $nope ${nope}\n";
    fs::write(f.dir.join("main.cf"), text).unwrap();
    let (code, out, err) = f.run(&["smtpd_banner"]);
    assert_eq!(code, 0);
    assert_eq!(out, "smtpd_banner = $myhostname $nope ${nope}\n");
    assert_eq!(
        err,
        format!(
            "postconf: warning: {}/main.cf: undefined parameter: nope\n",
            f.dir.display()
        )
    );
}
