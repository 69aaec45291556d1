//! Privileges end to end, with the real binary (issue 8, points 1 and 2):
//! the daemon started as root runs every thread as mail_owner; the queue
//! is the mail owner's alone; `postcat -q` as nobody fails; a non-root
//! user's sendmail submits through the setgid postdrop and the daemon
//! queues the message; postdrop refuses CR, LF and NUL in envelope fields;
//! `set-permissions` repairs a broken queue; the embedded default still
//! runs as an ordinary user.
//!
//! These tests need root and Debian's `postfix` user and `postdrop` group
//! (.ci/run creates them): without them they fail, never skip.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{run_with_input, show, wait_until, Instance, TempDir, SLUICE};
use sluice_engine::passwd;
use sluice_protocols::envelope::{Envelope, MailParams, Recipient};
use sluice_storage::maildrop::{self, MaildropMessage};

const POSTDROP: &str = env!("CARGO_BIN_EXE_sluice-postdrop");
/// The default configuration directory, whose main.cf authorizes others
/// for postdrop (alternate_config_directories).
const DEFAULT_CONFIG: &str = "/etc/sluice";

/// (uid, gid) of a user that must exist.
fn user(name: &str) -> (u32, u32) {
    let p = passwd::by_name(name)
        .unwrap_or_else(|| panic!("user {name} is missing: these tests need Debian's postfix package (.ci/run installs it)"));
    (p.uid, p.gid)
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the privilege tests must run as root (CI does)"
    );
    assert!(
        passwd::group_gid("postdrop").is_some(),
        "group postdrop is missing (.ci/run creates it)"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

/// A command run as `nobody` (no supplementary groups).
fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let (uid, gid) = user("nobody");
    let mut c = Command::new(program);
    c.uid(uid).gid(gid).current_dir("/");
    c
}

/// Every thread of `pid` has these real/effective/saved/fs uids and gids,
/// and these supplementary groups.
fn threads_run_as(pid: u32, uid: u32, gid: u32, groups: &[u32]) -> Vec<String> {
    let mut seen = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .unwrap_or_default()
                .split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(field("Uid:"), vec![uid.to_string(); 4], "{status}");
        assert_eq!(field("Gid:"), vec![gid.to_string(); 4], "{status}");
        let want: Vec<String> = groups.iter().map(u32::to_string).collect();
        assert_eq!(field("Groups:"), want, "{status}");
        seen.push(field("Name:").join(" "));
    }
    seen
}

/// Every file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn daemon_runs_as_mail_owner_and_the_queue_is_private() {
    require_root();
    let (puid, pgid) = user("postfix");
    let mut inst = Instance::new("priv-daemon", "");
    inst.start();
    let qid = inst.submit(
        "alice@example.test",
        &["bob@example.org"],
        "Subject: secret\r\n\r\nthe secret word is xyzzy\r\n",
    );
    let pid = inst.child.as_ref().unwrap().id();
    let names = threads_run_as(pid, puid, pgid, &[pgid]);
    assert!(
        names.iter().filter(|n| n.starts_with("shard-")).count() >= 2,
        "{names:?}"
    );
    assert!(inst.log().contains("running as postfix"), "{}", inst.log());

    let q = inst.queue_dir();
    assert_eq!((mode(&q), owner(&q).0), (0o755, 0));
    for shard in ["0", "1"] {
        let d = q.join(shard);
        assert_eq!(
            (mode(&d), owner(&d)),
            (0o700, (puid, pgid)),
            "{}",
            d.display()
        );
    }
    let segs = files_under(&q.join("0"))
        .into_iter()
        .chain(files_under(&q.join("1")))
        .collect::<Vec<_>>();
    assert!(!segs.is_empty());
    for f in &segs {
        assert_eq!(
            (mode(f), owner(f)),
            (0o600, (puid, pgid)),
            "{}",
            f.display()
        );
    }
    let md = q.join("maildrop");
    let postdrop_gid = passwd::group_gid("postdrop").unwrap();
    assert_eq!((mode(&md), owner(&md)), (0o1730, (puid, postdrop_gid)));
    assert_eq!(mode(&q.join("public")), 0o755);
    assert_eq!(mode(&q.join("public").join("showq.0")), 0o666);

    // As nobody: postcat fails with a permission error (Postfix's exit 1),
    // grep cannot read the segments, mailq still works.
    let out = as_nobody(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .args(["postcat", "-q", &qid])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("postcat: fatal: open queue file {qid}")),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("xyzzy"));
    let out = as_nobody("grep")
        .args(["-r", "xyzzy"])
        .arg(&q)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("xyzzy"),
        "{}",
        show(&out)
    );
    let out = as_nobody(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .args(["postqueue", "-p"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&qid),
        "{}",
        show(&out)
    );
    assert!(inst.stop().success(), "{}", inst.log());
}

#[test]
fn root_as_mail_owner_is_refused() {
    require_root();
    let mut inst = Instance::new("priv-root-owner", "mail_owner = root");
    let out = Command::new(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .arg("start-fg")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("parameter mail_owner: user root has privileged user ID"),
        "{err}"
    );
    inst.child = None;
}

/// `/etc/sluice/main.cf` authorizing `dir` for postdrop, removed on drop.
/// Fails when a real one exists (this test will not edit it).
struct AlternateConfig(PathBuf);

impl AlternateConfig {
    fn authorize(dir: &Path) -> AlternateConfig {
        let main_cf = Path::new(DEFAULT_CONFIG).join("main.cf");
        assert!(
            !main_cf.exists(),
            "{} exists; this test writes its own (alternate_config_directories) and will not edit a real one",
            main_cf.display()
        );
        std::fs::create_dir_all(DEFAULT_CONFIG).unwrap();
        std::fs::write(
            &main_cf,
            format!("alternate_config_directories = {}\n", dir.display()),
        )
        .unwrap();
        AlternateConfig(main_cf)
    }
}

impl Drop for AlternateConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(DEFAULT_CONFIG);
    }
}

fn message(sender: &str, rcpt: &str) -> MaildropMessage {
    MaildropMessage {
        uid: 0,
        fullname: None,
        submitted_us: 1,
        envelope: Envelope {
            sender: sender.to_string(),
            recipients: vec![Recipient::new(rcpt)],
            mail: MailParams::default(),
        },
        content: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
    }
}

fn postdrop_as_nobody(bin: &Path, config: &Path, input: &[u8]) -> Output {
    let mut cmd = as_nobody(bin);
    cmd.arg("-S").arg("-c").arg(config);
    run_with_input(cmd, input, Duration::from_secs(30))
}

#[test]
fn ordinary_users_submit_through_postdrop() {
    require_root();
    let mut inst = Instance::new("priv-postdrop", "");
    let bin = TempDir::new("priv-bin");
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = inst.sluice(&["install-links", bin.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", show(&out));
    let postdrop = bin.path().join("postdrop");
    assert_eq!(mode(&postdrop), 0o2755);
    assert!(
        std::fs::read(&postdrop).unwrap() == std::fs::read(POSTDROP).unwrap(),
        "postdrop is a copy of sluice-postdrop"
    );
    assert_eq!(
        owner(&postdrop),
        (0, passwd::group_gid("postdrop").unwrap())
    );
    let _auth = AlternateConfig::authorize(inst.config_dir());
    inst.start();

    // sendmail as nobody cannot write maildrop/ itself: postdrop does.
    let mut cmd = as_nobody(bin.path().join("sendmail"));
    cmd.env("MAIL_CONFIG", inst.config_dir())
        .args(["-f", "cron@example.test", "ops@example.org"]);
    let out = run_with_input(
        cmd,
        b"Subject: from cron\n\nnightly\n",
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        wait_until(Duration::from_secs(20), || inst
            .queue_json()
            .iter()
            .any(|l| l.contains("cron@example.test"))),
        "not queued; log:\n{}",
        inst.log()
    );
    assert!(
        inst.log().contains("uid=65534 from=<cron@example.test>"),
        "{}",
        inst.log()
    );

    // CR, LF and NUL in envelope fields: refused, nothing written.
    for (what, m) in [
        ("CR in sender", message("a@b\rX-Forged: 1", "r@example.org")),
        (
            "LF in recipient",
            message("a@b", "r@example.org\nX-Forged: 1"),
        ),
        ("NUL in sender", message("a\0@b", "r@example.org")),
    ] {
        let out = postdrop_as_nobody(&postdrop, inst.config_dir(), &maildrop::encode(&m));
        assert_eq!(out.status.code(), Some(65), "{what}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("malformed input"),
            "{what}: {}",
            show(&out)
        );
    }
    // A clean one through the same path is accepted (the refusals above
    // were about the content, not the setup).
    let out = postdrop_as_nobody(
        &postdrop,
        inst.config_dir(),
        &maildrop::encode(&message("ok@example.test", "r@example.org")),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(wait_until(Duration::from_secs(20), || inst
        .queue_json()
        .iter()
        .any(|l| l.contains("ok@example.test"))));
    assert!(!inst.queue_json().iter().any(|l| l.contains("X-Forged")));
    // The uid the input claims (0) is replaced by the caller's.
    assert!(
        inst.log().contains("uid=65534 from=<ok@example.test>"),
        "{}",
        inst.log()
    );

    // A config directory the default main.cf does not list: refused.
    let other = TempDir::new("priv-other-config");
    let out = postdrop_as_nobody(
        &postdrop,
        other.path(),
        &maildrop::encode(&message("a@b", "r@c")),
    );
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unauthorized configuration directory name"),
        "{}",
        show(&out)
    );
    assert!(inst.stop().success(), "{}", inst.log());
}

#[test]
fn set_permissions_repairs_a_broken_queue() {
    require_root();
    let (puid, pgid) = user("postfix");
    let mut inst = Instance::new("priv-repair", "");
    inst.start();
    inst.submit(
        "a@example.test",
        &["b@example.org"],
        "Subject: x\r\n\r\nx\r\n",
    );
    assert!(inst.stop().success(), "{}", inst.log());
    let q = inst.queue_dir();
    let seg = files_under(&q.join("0"))
        .into_iter()
        .chain(files_under(&q.join("1")))
        .next()
        .expect("a segment");
    std::fs::set_permissions(&seg, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&seg, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(q.join("0"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(q.join("maildrop"), std::fs::Permissions::from_mode(0o777)).unwrap();

    let out = as_nobody(SLUICE)
        .arg("-c")
        .arg(inst.config_dir())
        .arg("set-permissions")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reserved for the superuser"));

    let out = inst.sluice(&["set-permissions"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!((mode(&seg), owner(&seg)), (0o600, (puid, pgid)));
    assert_eq!(mode(&q.join("0")), 0o700);
    assert_eq!(mode(&q.join("maildrop")), 0o1730);
    // And the daemon serves the repaired queue.
    inst.start();
    assert_eq!(inst.queue_json().len(), 1);
    assert!(inst.stop().success(), "{}", inst.log());
}

#[test]
fn the_embedded_default_runs_as_an_ordinary_user() {
    require_root();
    let (uid, gid) = user("nobody");
    let dir = TempDir::new("priv-embedded");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    // No main.cf: the embedded default (queue ./sluice-queue); a master.cf
    // only to pick a free port.
    let port = common::free_port();
    std::fs::write(
        dir.path().join("master.cf"),
        format!("127.0.0.1:{port} inet n - n - - smtpd\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut child = as_nobody(SLUICE)
        .current_dir(dir.path())
        .args(["start-fg"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let queue = dir.path().join("sluice-queue");
    let read_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || queue
            .join("pid/master.ready")
            .exists()),
        "not ready:\n{}",
        read_log()
    );
    // Command::uid leaves no supplementary groups.
    threads_run_as(child.id(), uid, gid, &[]);
    let mut c = common::Client::connect(([127, 0, 0, 1], port).into());
    assert!(c.reply().starts_with("220 "));
    c.cmd("EHLO client.example.test");
    let r = c.send_mail(
        "a@example.test",
        &["b@example.org"],
        b"Subject: x\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 "), "{r}\n{}", read_log());
    c.cmd("QUIT");
    for f in files_under(&queue.join("0")) {
        assert_eq!(owner(&f).0, uid, "{}", f.display());
        assert_eq!(mode(&f) & 0o077, 0, "{}", f.display());
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = common::wait_timeout(&mut child, Duration::from_secs(40)).expect("stopped");
    assert!(st.success(), "{}", read_log());
}
