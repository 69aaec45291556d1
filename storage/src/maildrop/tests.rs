use super::dir::*;
use super::*;
use proptest::prelude::*;
use sluice_protocols::envelope::{Body, MailParams, Notify, Recipient, Ret};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("sluice-maildrop-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample() -> MaildropMessage {
    MaildropMessage {
        uid: 1000,
        fullname: Some("Alice Example".into()),
        submitted_us: 1_700_000_000_123_456,
        envelope: Envelope {
            sender: "alice".into(),
            recipients: vec![
                Recipient::new("bob@example.org"),
                Recipient {
                    address: "carol@example.net".into(),
                    notify: Notify(Notify::SUCCESS | Notify::FAILURE),
                    orcpt: Some("rfc822;carol@example.net".into()),
                },
            ],
            mail: MailParams {
                size: None,
                body: Body::EightBitMime,
                smtputf8: false,
                ret: Some(Ret::Hdrs),
                envid: Some("env-1".into()),
            },
        },
        content: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
    }
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn message_strategy() -> impl Strategy<Value = MaildropMessage> {
    let rcpt =
        (text(), any::<u8>(), proptest::option::of(text())).prop_map(|(address, notify, orcpt)| {
            Recipient {
                address,
                notify: Notify(notify),
                orcpt,
            }
        });
    let body = prop_oneof![
        Just(Body::Unspecified),
        Just(Body::SevenBit),
        Just(Body::EightBitMime),
        Just(Body::BinaryMime),
    ];
    let ret = proptest::option::of(prop_oneof![Just(Ret::Full), Just(Ret::Hdrs)]);
    let mail = (
        proptest::option::of(any::<u64>()),
        body,
        any::<bool>(),
        ret,
        proptest::option::of(text()),
    )
        .prop_map(|(size, body, smtputf8, ret, envid)| MailParams {
            size,
            body,
            smtputf8,
            ret,
            envid,
        });
    (
        any::<u32>(),
        proptest::option::of(text()),
        any::<u64>(),
        text(),
        proptest::collection::vec(rcpt, 0..6),
        mail,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(uid, fullname, submitted_us, sender, recipients, mail, content)| MaildropMessage {
                uid,
                fullname,
                submitted_us,
                envelope: Envelope {
                    sender,
                    recipients,
                    mail,
                },
                content,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(m in message_strategy()) {
        let bytes = encode(&m);
        prop_assert_eq!(decode(&bytes), Ok(m));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }

    /// Any single damaged byte is detected: the CRC covers the header
    /// fields before it and the whole payload.
    #[test]
    fn any_flipped_byte_is_an_error(m in message_strategy(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = encode(&m);
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        prop_assert!(decode(&bytes).is_err());
    }

    /// Random garbage behind a valid header with a matching CRC still
    /// decodes to an error or a message, never a panic.
    #[test]
    fn garbage_payload_with_valid_crc_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4] = FORMAT_VERSION;
        bytes[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..16]), &payload);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        let _ = decode(&bytes);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = encode(&sample());
    for len in 0..bytes.len() {
        assert!(
            matches!(decode(&bytes[..len]), Err(MaildropError::Truncated { .. })),
            "length {len}"
        );
    }
}

#[test]
fn header_errors_are_named() {
    let good = encode(&sample());
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(decode(&b), Err(MaildropError::BadMagic));
    let mut b = good.clone();
    b[4] = 2;
    assert_eq!(decode(&b), Err(MaildropError::UnsupportedVersion(2)));
    let mut b = good.clone();
    b[6] = 1;
    assert_eq!(decode(&b), Err(MaildropError::BadHeader));
    let mut b = good.clone();
    b.push(0);
    assert_eq!(decode(&b), Err(MaildropError::TrailingBytes(1)));
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    assert_eq!(decode(&b), Err(MaildropError::Checksum));
}

/// A huge recipient count that the payload does not back is refused
/// without allocating for it.
#[test]
fn lying_recipient_count_is_malformed() {
    let mut m = sample();
    m.envelope.recipients.clear();
    let mut bytes = encode(&m);
    // uid (4) + fullname tag/len/bytes + submitted (8) + sender len/bytes:
    // find the count by re-encoding the prefix.
    let mut prefix = Vec::new();
    crate::wire::put_u32(&mut prefix, m.uid);
    crate::wire::put_opt_str(&mut prefix, m.fullname.as_deref());
    crate::wire::put_u64(&mut prefix, m.submitted_us);
    crate::wire::put_str(&mut prefix, &m.envelope.sender);
    let at = HEADER_LEN + prefix.len();
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..16]), &bytes[HEADER_LEN..]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(decode(&bytes), Err(MaildropError::Malformed(_))));
}

#[test]
fn deposit_then_ready_then_load() {
    let q = TempDir::new("deposit");
    ensure_dir(q.path(), "postfix", "postdrop").unwrap();
    let mut paths = Vec::new();
    for i in 0..5u32 {
        let mut m = sample();
        m.uid = i;
        paths.push(deposit(q.path(), &m).unwrap());
    }
    // Names are letters, digits and dots, and unique.
    for p in &paths {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.bytes().all(|c| c.is_ascii_digit() || c == b'.'),
            "{name}"
        );
        let meta = std::fs::metadata(p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    }
    // A temp file (a writer in progress) and a directory are not listed.
    std::fs::write(maildrop_dir(q.path()).join(".tmp.1.2"), b"partial").unwrap();
    std::fs::create_dir(maildrop_dir(q.path()).join("subdir")).unwrap();

    let ready = ready_files(q.path(), 100).unwrap();
    assert_eq!(ready, paths, "oldest first, in deposit order");
    assert_eq!(ready_files(q.path(), 2).unwrap(), paths[..2].to_vec());
    assert!(ready_files(q.path(), 0).unwrap().is_empty());

    for (i, p) in paths.iter().enumerate() {
        let loaded = load(p, u64::MAX).unwrap();
        assert_eq!(loaded.message.uid, i as u32);
        assert_eq!(loaded.message.content, sample().content);
        // SAFETY: getuid() cannot fail.
        assert_eq!(loaded.file_uid, unsafe { libc::getuid() });
    }
}

#[test]
fn names_sort_numerically_and_foreign_names_by_mtime() {
    let q = TempDir::new("sort");
    ensure_dir(q.path(), "postfix", "postdrop").unwrap();
    let md = maildrop_dir(q.path());
    // "9" sorts after "10" as text but before it as a number.
    std::fs::write(md.join("100.000010.7.0"), b"").unwrap();
    std::fs::write(md.join("100.000009.7.0"), b"").unwrap();
    std::fs::write(md.join("99.999999.7.0"), b"").unwrap();
    std::fs::write(md.join("100.000009.7.10"), b"").unwrap();
    std::fs::write(md.join("100.000009.7.9"), b"").unwrap();
    let names: Vec<String> = ready_files(q.path(), 10)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "99.999999.7.0",
            "100.000009.7.0",
            "100.000009.7.9",
            "100.000009.7.10",
            "100.000010.7.0"
        ]
    );
    // A foreign name is listed too (so pickup can quarantine it), placed
    // by its modification time: now, after the 1970s names above.
    std::fs::write(md.join("junk"), b"x").unwrap();
    let all = ready_files(q.path(), 10).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].file_name().unwrap(), "junk");
}

#[test]
fn malformed_files_are_quarantined_not_lost() {
    let q = TempDir::new("quarantine");
    ensure_dir(q.path(), "postfix", "postdrop").unwrap();
    let md = maildrop_dir(q.path());
    let bad = md.join("1.000000.1.0");
    std::fs::write(&bad, b"not a maildrop file").unwrap();
    let err = load(&bad, u64::MAX).unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(matches!(
        err,
        LoadError::Malformed {
            source: MaildropError::Truncated { .. } | MaildropError::BadMagic,
            ..
        }
    ));
    let moved = quarantine(q.path(), &bad).unwrap();
    assert_eq!(moved, quarantine_dir(q.path()).join("1.000000.1.0"));
    assert_eq!(std::fs::read(&moved).unwrap(), b"not a maildrop file");
    assert!(!bad.exists());
    assert!(ready_files(q.path(), 10).unwrap().is_empty());

    // A second file of the same name does not overwrite the first.
    std::fs::write(&bad, b"second").unwrap();
    let moved2 = quarantine(q.path(), &bad).unwrap();
    assert_eq!(moved2, quarantine_dir(q.path()).join("1.000000.1.0.1"));
    assert_eq!(std::fs::read(&moved).unwrap(), b"not a maildrop file");
}

#[test]
fn load_refuses_symlinks_and_oversize_files() {
    let q = TempDir::new("load");
    ensure_dir(q.path(), "postfix", "postdrop").unwrap();
    let md = maildrop_dir(q.path());
    let target = q.path().join("secret");
    std::fs::write(&target, encode(&sample())).unwrap();
    let link = md.join("1.000000.1.0");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = load(&link, u64::MAX).unwrap_err();
    assert!(matches!(err, LoadError::NotRegular { .. }), "{err}");
    assert!(err.is_permanent());

    let p = deposit(q.path(), &sample()).unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    assert!(load(&p, len).is_ok());
    let err = load(&p, len - 1).unwrap_err();
    assert!(matches!(err, LoadError::TooBig { .. }), "{err}");

    let err = load(&md.join("gone"), u64::MAX).unwrap_err();
    assert!(!err.is_permanent());
    assert!(
        matches!(&err, LoadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
}

#[test]
fn stale_temp_files_are_removed() {
    let q = TempDir::new("stale");
    ensure_dir(q.path(), "postfix", "postdrop").unwrap();
    let md = maildrop_dir(q.path());
    std::fs::write(md.join(".tmp.1.1"), b"partial").unwrap();
    let kept = deposit(q.path(), &sample()).unwrap();
    let now = SystemTime::now();
    assert_eq!(
        remove_stale_temps(q.path(), Duration::from_secs(3600), now).unwrap(),
        0
    );
    let later = now + Duration::from_secs(7200);
    assert_eq!(
        remove_stale_temps(q.path(), Duration::from_secs(3600), later).unwrap(),
        1
    );
    assert!(!md.join(".tmp.1.1").exists());
    assert!(kept.exists(), "finished files are never touched");
}

#[test]
fn deposit_without_maildrop_fails_cleanly() {
    let q = TempDir::new("nodir");
    let err = deposit(q.path(), &sample()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn ensure_dir_permissions() {
    let q = TempDir::new("perms");
    let queue = q.path().join("queue");
    ensure_dir(&queue, "postfix", "postdrop").unwrap();
    let meta = std::fs::metadata(maildrop_dir(&queue)).unwrap();
    let mode = meta.permissions().mode() & 0o7777;
    // SAFETY: geteuid() cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root: the queue directory is root's, so the maildrop belongs to
        // mail_owner, or stays private to root when there is no such user.
        assert!(mode == 0o1730 || mode == 0o700, "{mode:o}");
        assert_eq!(mode & 0o007, 0, "never world-accessible");
    } else {
        assert_eq!(mode, 0o700);
        // SAFETY: getuid() cannot fail.
        assert_eq!(meta.uid(), unsafe { libc::getuid() });
    }
    // Idempotent, and an existing directory is left alone.
    ensure_dir(&queue, "postfix", "postdrop").unwrap();
    assert_eq!(
        std::fs::metadata(maildrop_dir(&queue))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        mode
    );
}

#[test]
fn ensure_dir_as_root_with_unknown_mail_owner_stays_private() {
    // SAFETY: geteuid() cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let q = TempDir::new("noowner");
    ensure_dir(q.path(), "no-such-user-sluice-test", "postdrop").unwrap();
    let meta = std::fs::metadata(maildrop_dir(q.path())).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    assert_eq!(meta.uid(), 0);
}

#[test]
fn ensure_dir_refuses_a_file_in_the_way() {
    let q = TempDir::new("inway");
    std::fs::write(maildrop_dir(q.path()), b"").unwrap();
    assert!(ensure_dir(q.path(), "postfix", "postdrop").is_err());
}

#[test]
fn line_breaks_and_nul_in_envelope_fields_are_refused() {
    type Poison = fn(&mut MaildropMessage);
    let cases: [(&str, Poison); 6] = [
        ("sender CR", |m| m.envelope.sender.push('\r')),
        ("sender NUL", |m| m.envelope.sender.push('\0')),
        ("recipient LF", |m| {
            m.envelope.recipients[0].address.push_str("\nX-Forged: 1")
        }),
        ("orcpt LF", |m| {
            m.envelope.recipients[0].orcpt = Some("rfc822;a@b\n".into())
        }),
        ("envid CR", |m| m.envelope.mail.envid = Some("id\r".into())),
        ("fullname LF", |m| m.fullname = Some("Eve\nFrom: x".into())),
    ];
    for (what, poison) in cases {
        let mut m = sample();
        poison(&mut m);
        assert!(check_envelope(&m).is_err(), "{what}");
        assert!(
            matches!(decode(&encode(&m)), Err(MaildropError::Malformed(_))),
            "{what}"
        );
    }
    assert!(check_envelope(&sample()).is_ok());
}
