//! Certificate and key files: `smtpd_tls_chain_files` (Postfix 3.4+: in
//! each file a private key, then its certificate chain) or
//! `smtpd_tls_cert_file` with `smtpd_tls_key_file`. Errors read
//! `file: what is wrong`.

use std::sync::Arc;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, SupportedProtocolVersion};

use super::info::signature_of;
use super::ServerCert;

/// The PEM sections of one file, in order.
fn sections(file: &str) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    let data = std::fs::read(file).map_err(|e| format!("{file}: cannot read: {e}"))?;
    <(SectionKind, Vec<u8>)>::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{file}: bad PEM: {e}"))
}

fn key_of(kind: SectionKind, der: Vec<u8>) -> Option<PrivateKeyDer<'static>> {
    match kind {
        SectionKind::PrivateKey => Some(PrivateKeyDer::Pkcs8(der.into())),
        SectionKind::RsaPrivateKey => Some(PrivateKeyDer::Pkcs1(der.into())),
        SectionKind::EcPrivateKey => Some(PrivateKeyDer::Sec1(der.into())),
        _ => None,
    }
}

type Pair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Reads the key and chain; `Err` is `file: what is wrong`.
fn read_pair(
    chain_files: &[String],
    cert_file: &str,
    key_file: &str,
) -> Result<(Pair, String, String), String> {
    let (mut certs, mut keys) = (Vec::new(), Vec::new());
    let (cert_name, key_name);
    if chain_files.is_empty() {
        for (kind, der) in sections(cert_file)? {
            if kind == SectionKind::Certificate {
                certs.push(CertificateDer::from(der));
            }
        }
        keys.extend(
            sections(key_file)?
                .into_iter()
                .filter_map(|(k, d)| key_of(k, d)),
        );
        (cert_name, key_name) = (cert_file.to_string(), key_file.to_string());
    } else {
        for file in chain_files {
            for (kind, der) in sections(file)? {
                if kind == SectionKind::Certificate {
                    certs.push(CertificateDer::from(der));
                } else if let Some(key) = key_of(kind, der) {
                    keys.push(key);
                }
            }
        }
        let all = chain_files.join(", ");
        (cert_name, key_name) = (all.clone(), all);
    }
    if certs.is_empty() {
        return Err(format!("{cert_name}: no certificate found"));
    }
    let key = match keys.len() {
        0 => return Err(format!("{key_name}: no private key found")),
        1 => keys.remove(0),
        _ => {
            return Err(format!(
                "{key_name}: more than one private key; Sluice serves one key and its chain (several algorithms are not supported yet)"
            ))
        }
    };
    Ok(((certs, key), cert_name, key_name))
}

/// Builds the server config: the key, its chain, the protocol versions.
pub fn load_server_config(
    chain_files: &[String],
    cert_file: &str,
    key_file: &str,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<ServerCert, String> {
    let ((certs, key), cert_name, key_name) = read_pair(chain_files, cert_file, key_file)?;
    let (signature, digest) = signature_of(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("{cert_name}: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("{key_name}: the private key does not match the certificate in {cert_name}")
            }
            other => format!("{key_name}: unusable private key or certificate: {other}"),
        })?;
    let files = if chain_files.is_empty() {
        format!("{cert_file} {key_file}")
    } else {
        chain_files.join(" ")
    };
    Ok(ServerCert {
        config: Arc::new(config),
        signature,
        digest,
        files,
    })
}
