//! The smtp client's TLS settings, turned into rustls client configurations
//! once (at start and at reload, per shard: rustls's session cache inside a
//! configuration is not shared between shards), and the certificate
//! verifiers for each level.
//!
//! At `may` and `encrypt` the server's certificate is accepted as it is
//! (the handshake is still complete and its signatures checked); at
//! `verify` and `secure` the chain is checked by webpki against
//! `smtp_tls_CAfile` / `smtp_tls_CApath` (the system's roots when both are
//! empty) and the name against the level's match list. Sessions from
//! unverified handshakes are resumed (rustls's in-memory cache, one per
//! configuration and shard); verified levels do full handshakes, so that a
//! resumed session never stands in for a certificate check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::policy::{policy_lookup_keys, Protocols, TlsLevel, TlsPolicy};

/// `smtp_tls_servername`: what SNI names (Postfix 3.4+). Empty: no SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerNameMode {
    None,
    /// `hostname`: the MX host name.
    Hostname,
    /// `nexthop`: the nexthop domain.
    Nexthop,
    Literal(String),
}

impl ServerNameMode {
    pub fn parse(text: &str) -> ServerNameMode {
        match text.trim() {
            "" => ServerNameMode::None,
            "hostname" => ServerNameMode::Hostname,
            "nexthop" => ServerNameMode::Nexthop,
            other => ServerNameMode::Literal(other.to_string()),
        }
    }
}

/// The smtp_tls_* parameters, as plain data (cloned into every shard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClientParams {
    /// `smtp_tls_security_level` (Sluice and Postfix 3.11: `may`).
    pub level: TlsLevel,
    /// `smtp_tls_protocols`, at level `may`.
    pub protocols: Protocols,
    /// `smtp_tls_mandatory_protocols`, at `encrypt` and above.
    pub mandatory_protocols: Protocols,
    /// `smtp_tls_CAfile`.
    pub ca_file: Option<PathBuf>,
    /// `smtp_tls_CApath`.
    pub ca_path: Option<PathBuf>,
    /// `smtp_tls_servername`.
    pub servername: ServerNameMode,
    /// `smtp_tls_verify_cert_match` (`hostname`).
    pub verify_match: Vec<String>,
    /// `smtp_tls_secure_cert_match` (`nexthop, dot-nexthop`).
    pub secure_match: Vec<String>,
    /// `smtp_tls_loglevel` (0: failures only; 1: one line per handshake).
    pub loglevel: u32,
    /// `smtp_tls_policy_maps`, read at load: lookup key → policy.
    pub policies: HashMap<String, TlsPolicy>,
}

impl TlsClientParams {
    /// Plaintext only (`smtp_tls_security_level = none`).
    pub fn none() -> Self {
        TlsClientParams {
            level: TlsLevel::None,
            protocols: Protocols::ALL,
            mandatory_protocols: Protocols::ALL,
            ca_file: None,
            ca_path: None,
            servername: ServerNameMode::None,
            verify_match: vec!["hostname".into()],
            secure_match: vec!["nexthop".into(), "dot-nexthop".into()],
            loglevel: 0,
            policies: HashMap::new(),
        }
    }

    /// The policy for a nexthop: the first `smtp_tls_policy_maps` entry
    /// for its lookup keys, else the instance's level.
    pub fn policy_for(&self, nexthop: &str) -> TlsPolicy {
        policy_lookup_keys(nexthop)
            .iter()
            .find_map(|k| self.policies.get(&k.to_ascii_lowercase()))
            .cloned()
            .unwrap_or_else(|| TlsPolicy::level(self.level))
    }

    fn needs_roots(&self) -> bool {
        self.level.must_verify() || self.policies.values().any(|p| p.level.must_verify())
    }
}

/// Everything one STARTTLS needs: the configuration, the name given to
/// rustls (SNI when enabled), the level, and how much to log.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub level: TlsLevel,
    pub loglevel: u32,
}

/// The built TLS client state of one shard.
pub struct TlsClient {
    params: TlsClientParams,
    provider: Arc<CryptoProvider>,
    /// None when no level needs verification.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Accept-any configurations for `smtp_tls_protocols` and
    /// `smtp_tls_mandatory_protocols`, with and without SNI.
    unverified: HashMap<(Protocols, bool), Arc<ClientConfig>>,
}

impl TlsClient {
    /// Builds the configurations; an unreadable CA file is an error, as
    /// is an empty set of trust roots when a level needs them.
    pub fn new(params: &TlsClientParams) -> Result<TlsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = if params.needs_roots() || params.ca_file.is_some() || params.ca_path.is_some()
        {
            let roots = load_roots(params.ca_file.as_deref(), params.ca_path.as_deref())?;
            let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("smtp_tls_CAfile/smtp_tls_CApath: {e}"))?;
            Some(v)
        } else {
            None
        };
        let mut client = TlsClient {
            params: params.clone(),
            provider,
            webpki,
            unverified: HashMap::new(),
        };
        for protocols in [params.protocols, params.mandatory_protocols] {
            for sni in [false, true] {
                let verifier = Arc::new(AcceptAny(client.provider.clone()));
                let config = client.config(protocols, sni, verifier)?;
                client.unverified.insert((protocols, sni), Arc::new(config));
            }
        }
        Ok(client)
    }

    pub fn params(&self) -> &TlsClientParams {
        &self.params
    }

    /// The setup for one connection to `mx_host` for `nexthop_domain`
    /// under `policy`; `None` at level `none`.
    pub fn setup(
        &self,
        policy: &TlsPolicy,
        mx_host: &str,
        nexthop_domain: &str,
    ) -> Result<Option<TlsSetup>, String> {
        let level = policy.level;
        if level == TlsLevel::None {
            return Ok(None);
        }
        let protocols = policy.protocols.unwrap_or(if level.is_required() {
            self.params.mandatory_protocols
        } else {
            self.params.protocols
        });
        let sni_name = match &self.params.servername {
            ServerNameMode::None => None,
            ServerNameMode::Hostname => Some(mx_host.to_string()),
            ServerNameMode::Nexthop => Some(nexthop_domain.to_string()),
            ServerNameMode::Literal(s) => Some(s.clone()),
        };
        let sni = sni_name.is_some();
        let name_text = sni_name.unwrap_or_else(|| mx_host.to_string());
        let server_name = ServerName::try_from(name_text.clone())
            .or_else(|_| ServerName::try_from("invalid.invalid".to_string()))
            .map_err(|e| format!("bad TLS server name {name_text:?}: {e}"))?;
        let config = if level.must_verify() {
            let webpki = self.webpki.clone().ok_or("no trust roots loaded")?;
            let patterns = policy.matches.clone().unwrap_or_else(|| {
                if level == TlsLevel::Secure {
                    self.params.secure_match.clone()
                } else {
                    self.params.verify_match.clone()
                }
            });
            let names = match_names(&patterns, mx_host, nexthop_domain);
            let verifier = Arc::new(MatchNames { webpki, names });
            let mut config = self.config(protocols, sni, verifier)?;
            // No resumption here: a session from an unverified handshake
            // (or one checked against other names) must never stand in for
            // a verified one, and a resumed session skips the check.
            config.resumption = rustls::client::Resumption::disabled();
            Arc::new(config)
        } else {
            match self.unverified.get(&(protocols, sni)) {
                Some(c) => c.clone(),
                None => Arc::new(self.config(
                    protocols,
                    sni,
                    Arc::new(AcceptAny(self.provider.clone())),
                )?),
            }
        };
        Ok(Some(TlsSetup {
            config,
            server_name,
            level,
            loglevel: self.params.loglevel,
        }))
    }

    fn config(
        &self,
        protocols: Protocols,
        sni: bool,
        verifier: Arc<dyn ServerCertVerifier>,
    ) -> Result<ClientConfig, String> {
        let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
        if protocols.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if protocols.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS protocols: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.enable_sni = sni;
        Ok(config)
    }
}

/// The names a certificate may match (Postfix's match lists): `hostname`
/// (the MX host), `nexthop` (the nexthop domain), `dot-nexthop` (its
/// subdomains), a literal name, or a `.domain` pattern. Without parsing the
/// certificate's names, subdomain patterns are checked through the MX host
/// name when it lies in that domain.
fn match_names(patterns: &[String], mx_host: &str, nexthop: &str) -> Vec<ServerName<'static>> {
    let in_domain = |suffix: &str| {
        mx_host.len() > suffix.len()
            && mx_host
                .to_ascii_lowercase()
                .ends_with(&suffix.to_ascii_lowercase())
    };
    let mut names = Vec::new();
    for p in patterns {
        let name = match p.as_str() {
            "hostname" => Some(mx_host.to_string()),
            "nexthop" => Some(nexthop.to_string()),
            "dot-nexthop" => in_domain(&format!(".{nexthop}")).then(|| mx_host.to_string()),
            dot if dot.starts_with('.') => in_domain(dot).then(|| mx_host.to_string()),
            literal => Some(literal.to_string()),
        };
        if let Some(n) = name.and_then(|n| ServerName::try_from(n).ok()) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

fn load_roots(ca_file: Option<&Path>, ca_path: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let add = |roots: &mut RootCertStore, file: &Path, what: &str| -> Result<usize, String> {
        let mut n = 0;
        let iter = CertificateDer::pem_file_iter(file)
            .map_err(|e| format!("{what} {}: {e}", file.display()))?;
        for cert in iter {
            let cert = cert.map_err(|e| format!("{what} {}: {e}", file.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{what} {}: {e}", file.display()))?;
            n += 1;
        }
        Ok(n)
    };
    if let Some(file) = ca_file {
        if add(&mut roots, file, "smtp_tls_CAfile")? == 0 {
            return Err(format!(
                "smtp_tls_CAfile {}: no certificates",
                file.display()
            ));
        }
    }
    if let Some(dir) = ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("smtp_tls_CApath {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                // c_rehash leaves hash links next to the files; bad files are skipped.
                let _ = add(&mut roots, &path, "smtp_tls_CApath");
            }
        }
    }
    if ca_file.is_none() && ca_path.is_none() {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
    }
    if roots.is_empty() {
        return Err("no trust roots: set smtp_tls_CAfile or install ca-certificates".into());
    }
    Ok(roots)
}

/// `may` and `encrypt`: any certificate, but the handshake's signatures
/// are still checked, so the session is a real TLS session with the
/// holder of that certificate's key.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify` and `secure`: webpki's chain check, and the certificate must
/// be valid for one of `names` (rustls's own check takes only one name).
#[derive(Debug)]
struct MatchNames {
    webpki: Arc<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for MatchNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut last = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        for name in &self.names {
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, name, ocsp, now)
            {
                Ok(ok) => return Ok(ok),
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => {}
                Err(other) => last = other,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
