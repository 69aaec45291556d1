//! STARTTLS against an in-memory TLS server (rustls's own server side over
//! the in-memory pipe), with a certificate from a CA that the `openssl`
//! command makes for the test run (no key is committed).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::super::tls::{TlsClient, TlsClientParams, TlsFailure, TlsLevel, TlsPolicy};
use super::pipe::{duplex, End, TestClock};
use super::{drive, params, NAMADDR, PEER};
use crate::smtp::{Connection, SessionError};

/// The directory with `ca.pem`, and the server's certificate (for
/// mx.example) and key in memory; made once per run, keys deleted at once.
struct TestPki {
    dir: PathBuf,
    srv_pem: Vec<u8>,
    srv_key: Vec<u8>,
}

fn cert_dir() -> &'static PathBuf {
    &pki().dir
}

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sluice-agents-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl must be installed for this test");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let ca = format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=TestCA");
        let mut ca: Vec<&str> = ca.split(' ').collect();
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        run(&ca);
        let csr = format!("req {ec} -keyout srv.key -out srv.csr -subj /CN=mx.example");
        run(&csr.split(' ').collect::<Vec<_>>());
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:mx.example\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&"x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext.cnf"
            .split(' ')
            .collect::<Vec<_>>());
        let pki = TestPki {
            srv_pem: std::fs::read(dir.join("srv.pem")).unwrap(),
            srv_key: std::fs::read(dir.join("srv.key")).unwrap(),
            dir,
        };
        for secret in ["ca.key", "srv.key", "srv.csr", "ca.srl"] {
            let _ = std::fs::remove_file(pki.dir.join(secret));
        }
        pki
    })
}

fn server_config() -> Arc<rustls::ServerConfig> {
    let pki = pki();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pki.srv_pem)
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&pki.srv_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}

async fn line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut b = [0u8];
    while !out.ends_with(b"\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).trim_end().to_string()
}

async fn say<S: AsyncWrite + Unpin>(s: &mut S, text: &str) {
    let _ = s.write_all(text.as_bytes()).await;
    let _ = s.flush().await;
}

/// How the fake server behaves after STARTTLS.
#[derive(Clone, Copy)]
enum After220 {
    Handshake,
    /// A fake reply pipelined in the same write as the 220.
    Inject,
    /// Junk instead of a handshake.
    Junk,
}

/// The server: greeting, EHLO with STARTTLS, 220, the handshake, then
/// EHLO inside TLS (without STARTTLS). Returns the commands it saw inside
/// TLS.
async fn tls_server(mut s: End, after: After220) -> Vec<String> {
    say(&mut s, "220 mx.example ESMTP\r\n").await;
    assert!(line(&mut s).await.starts_with("EHLO"));
    say(
        &mut s,
        "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
    )
    .await;
    assert_eq!(line(&mut s).await, "STARTTLS");
    match after {
        After220::Handshake => say(&mut s, "220 2.0.0 Ready to start TLS\r\n").await,
        After220::Inject => say(&mut s, "220 2.0.0 Ready to start TLS\r\n250 injected\r\n").await,
        After220::Junk => {
            say(&mut s, "220 2.0.0 Ready to start TLS\r\n").await;
            future::yield_now().await;
            say(&mut s, "not a TLS record at all\r\n").await;
            let _ = s.close().await;
            return Vec::new();
        }
    }
    let acceptor = futures_rustls::TlsAcceptor::from(server_config());
    let Ok(mut tls) = acceptor.accept(s).await else {
        return vec!["handshake failed".into()];
    };
    let mut seen = Vec::new();
    let ehlo = line(&mut tls).await;
    seen.push(ehlo);
    say(&mut tls, "250-mx.example\r\n250 8BITMIME\r\n").await;
    seen.push(line(&mut tls).await);
    say(&mut tls, "221 2.0.0 Bye\r\n").await;
    seen
}

fn client(level: TlsLevel, ca: bool, matches: Option<&str>) -> TlsClient {
    let mut p = TlsClientParams::none();
    p.level = level;
    p.loglevel = 1;
    if ca {
        p.ca_file = Some(cert_dir().join("ca.pem"));
    }
    if let Some(m) = matches {
        let mut policy = TlsPolicy::level(level);
        policy.matches = Some(vec![m.to_string()]);
        p.policies.insert("example.org".into(), policy);
    }
    TlsClient::new(&p).unwrap()
}

/// Opens a session at `level` against the fake server; returns the open
/// result (with the TLS protocol and the extensions' STARTTLS flag) and
/// what the server saw inside TLS.
fn open(tls: &TlsClient, after: After220) -> (Result<(String, bool), SessionError>, Vec<String>) {
    let policy = tls.params().policy_for("example.org");
    let setup = tls.setup(&policy, "mx.example", "example.org").unwrap();
    let (c, s) = duplex(1 << 16);
    let clock = TestClock::default();
    let params = params();
    let client = async {
        match Connection::open_tls(c, PEER.into(), &params, setup.as_ref(), &clock).await {
            Ok(conn) => {
                let proto = conn
                    .tls_info()
                    .map(|i| i.protocol.clone())
                    .unwrap_or_default();
                let starttls = conn.extensions().starttls;
                conn.quit(&clock).await;
                Ok((proto, starttls))
            }
            Err(e) => Err(e),
        }
    };
    drive(future::zip(client, tls_server(s, after)))
}

#[test]
fn encrypt_does_starttls_and_ehlo_again_inside_tls() {
    let (opened, seen) = open(&client(TlsLevel::Encrypt, false, None), After220::Handshake);
    // TLSv1.3; STARTTLS forgotten: the extensions are those of the second EHLO.
    assert_eq!(opened, Ok(("TLSv1.3".to_string(), false)));
    assert_eq!(seen, ["EHLO relay.sluice.example", "QUIT"]);
}

#[test]
fn a_reply_pipelined_after_the_220_is_discarded() {
    let (opened, seen) = open(&client(TlsLevel::Encrypt, false, None), After220::Inject);
    assert_eq!(opened, Ok(("TLSv1.3".to_string(), false)));
    assert_eq!(seen[0], "EHLO relay.sluice.example");
}

#[test]
fn verify_checks_the_chain_and_the_name() {
    let good = client(TlsLevel::Verify, true, None);
    let (opened, _) = open(&good, After220::Handshake);
    assert_eq!(opened, Ok(("TLSv1.3".to_string(), false)));

    let wrong = client(TlsLevel::Verify, true, Some("other.example"));
    let (opened, _) = open(&wrong, After220::Handshake);
    assert_eq!(
        opened,
        Err(SessionError::Tls {
            peer: NAMADDR.into(),
            failure: TlsFailure::NotVerified,
            reply: String::new(),
        })
    );
}

#[test]
fn may_asks_for_a_plaintext_retry_when_the_handshake_fails() {
    let (opened, _) = open(&client(TlsLevel::May, false, None), After220::Junk);
    assert_eq!(
        opened,
        Err(SessionError::TlsRetryPlaintext {
            peer: NAMADDR.into()
        })
    );
    let (opened, _) = open(&client(TlsLevel::Encrypt, false, None), After220::Junk);
    assert!(
        matches!(
            opened,
            Err(SessionError::Tls {
                failure: TlsFailure::HandshakeFailed,
                ..
            })
        ),
        "{opened:?}"
    );
}
