//! What a handshake negotiated, in Postfix's (OpenSSL's) words: rustls
//! names cipher suites after the IANA registry (`TLS13_AES_256_GCM_SHA384`,
//! `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`); Postfix logs OpenSSL's
//! names (`TLS_AES_256_GCM_SHA384`, `ECDHE-ECDSA-AES256-GCM-SHA384`). A
//! suite missing from the table is logged with rustls's name.

use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, NamedGroup, ProtocolVersion, ServerConnection};
use sluice_protocols::smtp::server::TlsInfo;

use super::ServerCert;

/// OpenSSL's name and secret bits of the suites rustls (ring) offers.
fn suite_name(suite: CipherSuite) -> (String, u16) {
    use CipherSuite::*;
    let (name, bits) = match suite {
        TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        other => return (format!("{other:?}"), 0),
    };
    (name.to_string(), bits)
}

/// OpenSSL's short names of the key exchange groups.
fn group_name(group: NamedGroup) -> String {
    match group {
        NamedGroup::X25519 => "X25519".into(),
        NamedGroup::secp256r1 => "prime256v1".into(),
        NamedGroup::secp384r1 => "secp384r1".into(),
        NamedGroup::secp521r1 => "secp521r1".into(),
        other => format!("{other:?}"),
    }
}

/// The summary of an established connection.
pub fn tls_info(conn: &ServerConnection, cert: Option<&ServerCert>) -> TlsInfo {
    let protocol = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let (cipher, bits) = conn
        .negotiated_cipher_suite()
        .map(|s| suite_name(s.suite()))
        .unwrap_or_else(|| ("unknown".into(), 0));
    let tls13 = protocol == "TLSv1.3";
    let signature = cert.and_then(|c| c.signature.clone()).map(|s| {
        // TLS 1.3 signs with RSA-PSS; TLS 1.2 clients may get PKCS#1.
        if s == "RSA" && tls13 {
            "RSA-PSS".to_string()
        } else {
            s
        }
    });
    TlsInfo {
        protocol,
        cipher,
        bits,
        key_exchange: conn
            .negotiated_key_exchange_group()
            .map(|g| group_name(g.name())),
        server_signature: signature,
        server_digest: cert.and_then(|c| c.digest.clone()),
    }
}

const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Postfix's `server-signature` and `server-digest` words from our leaf
/// certificate's public key algorithm (found by its OID in the DER; the
/// issuer's signature algorithm has different OIDs). RSA key sizes are
/// not shown.
pub(super) fn signature_of(cert: &CertificateDer<'_>) -> (Option<String>, Option<String>) {
    let der = cert.as_ref();
    let (sig, digest) = if contains(der, EC_PUBLIC_KEY) && contains(der, P256) {
        ("ECDSA (P-256)", "SHA256")
    } else if contains(der, EC_PUBLIC_KEY) && contains(der, P384) {
        ("ECDSA (P-384)", "SHA384")
    } else if contains(der, RSA) {
        ("RSA", "SHA256")
    } else if contains(der, ED25519) {
        return (Some("ED25519".into()), None);
    } else {
        return (None, None);
    };
    (Some(sig.into()), Some(digest.into()))
}
