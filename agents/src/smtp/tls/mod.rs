//! tls: the smtp client's STARTTLS (Postfix's `smtp_tls_*` parameters):
//! the per-destination policy and the decisions it implies
//! ([`policy`]), and the rustls configurations and certificate checks
//! ([`client`]). The conversation itself (STARTTLS, the handshake, EHLO
//! again) is in [`Connection::open_tls`](super::Connection::open_tls).
//!
//! Trust: the server is untrusted; at `may` and `encrypt` its certificate
//! is not judged, at `verify` and `secure` it must chain to our trust
//! roots and name the destination. Reads the CA file or directory (or the
//! system's roots) at start and reload, nothing else on disk.

pub mod client;
pub mod policy;

pub use client::{ServerNameMode, TlsClient, TlsClientParams, TlsSetup};
pub use policy::{
    decide, Handshake, Protocols, TlsAction, TlsEvent, TlsFailure, TlsLevel, TlsPolicy,
};

/// The negotiated session, for logs: `TLSv1.3`, `TLS_AES_256_GCM_SHA384`,
/// and the cipher's key size in bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    pub protocol: String,
    pub cipher: String,
    pub bits: u16,
    /// Whether the certificate was verified (levels `verify`, `secure`).
    pub verified: bool,
}

impl TlsInfo {
    /// Postfix's names (OpenSSL's) for what rustls negotiated.
    pub fn from_connection(conn: &rustls::ClientConnection, verified: bool) -> TlsInfo {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        }
        .to_string();
        let iana = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        let (cipher, bits) = openssl_cipher_name(iana);
        TlsInfo {
            protocol,
            cipher,
            bits,
            verified,
        }
    }
}

/// OpenSSL's name and key size for a suite rustls (ring) offers.
fn openssl_cipher_name(iana: &str) -> (String, u16) {
    let name = match iana {
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => "ECDHE-RSA-CHACHA20-POLY1305",
        other => other,
    };
    let bits = if name.contains("128") { 128 } else { 256 };
    (name.to_string(), bits)
}
