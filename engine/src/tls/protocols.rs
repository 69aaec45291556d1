//! Postfix's TLS protocol lists (`smtpd_tls_protocols`,
//! `smtpd_tls_mandatory_protocols`) mapped onto what rustls speaks.
//!
//! Syntax (Postfix ≥ 3.6): `>=TLSv1.2`, `<=TLSv1.3`, or names to include
//! (`TLSv1.2, TLSv1.3`) or exclude (`!SSLv2, !SSLv3`), separated by
//! commas, spaces or colons. rustls has TLS 1.2 and 1.3 only, so a list
//! that also allows older versions gets those two (a client that speaks
//! only TLS 1.0 cannot start TLS); a list that allows neither is refused.

use rustls::version::{TLS12, TLS13};
use rustls::SupportedProtocolVersion;

const NAMES: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

fn index(name: &str) -> Result<usize, String> {
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("unknown TLS protocol \"{name}\" (use SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"))
}

/// The versions a list allows, of the two rustls has.
pub fn parse_protocols(list: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let mut allowed = [true; 6];
    let mut included = [false; 6];
    let mut any_included = false;
    for word in list.split([',', ' ', '\t', ':']).filter(|w| !w.is_empty()) {
        if let Some(v) = word.strip_prefix(">=") {
            let i = index(v)?;
            allowed[..i].iter_mut().for_each(|a| *a = false);
        } else if let Some(v) = word.strip_prefix("<=") {
            let i = index(v)?;
            allowed[i + 1..].iter_mut().for_each(|a| *a = false);
        } else if let Some(v) = word.strip_prefix('!') {
            allowed[index(v)?] = false;
        } else {
            included[index(word)?] = true;
            any_included = true;
        }
    }
    let ok = |i: usize| allowed[i] && (!any_included || included[i]);
    let mut out = Vec::new();
    if ok(4) {
        out.push(&TLS12);
    }
    if ok(5) {
        out.push(&TLS13);
    }
    if out.is_empty() {
        return Err("allows neither TLSv1.2 nor TLSv1.3, the only versions Sluice speaks".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_lists_map_onto_tls12_and_tls13() {
        let cases: &[(&str, Result<&[u16], ()>)] = &[
            ("", Ok(&[12, 13])),
            (">=TLSv1", Ok(&[12, 13])),
            ("!SSLv2, !SSLv3", Ok(&[12, 13])),
            ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", Ok(&[12, 13])),
            (">=TLSv1.2", Ok(&[12, 13])),
            (">=TLSv1.3", Ok(&[13])),
            ("<=TLSv1.2", Ok(&[12])),
            ("TLSv1.3", Ok(&[13])),
            ("TLSv1.2:TLSv1.3", Ok(&[12, 13])),
            ("!TLSv1.3", Ok(&[12])),
            ("<=TLSv1.1", Err(())),
            ("TLSv1", Err(())),
            (">=TLSv9", Err(())),
        ];
        for (list, want) in cases {
            let got = parse_protocols(list).map(|v| {
                v.iter()
                    .map(|p| {
                        if p.version == rustls::ProtocolVersion::TLSv1_3 {
                            13
                        } else {
                            12
                        }
                    })
                    .collect::<Vec<u16>>()
            });
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(*w), "{list}"),
                Err(()) => assert!(got.is_err(), "{list}"),
            }
        }
    }
}
