//! MAIL FROM / RCPT TO paths (RFC 5321 §4.1.2), checked the way Postfix's
//! `extract_addr()` is lenient: angle brackets are optional, a source route
//! (`<@a,@b:user@d>`) is dropped, quoted local parts are kept as given. What
//! is refused is what cannot be one address: white space or control bytes
//! outside quotes, unbalanced quotes or brackets, a second `@`-address, an
//! empty local part or domain.
//!
//! The address is returned as given (without brackets and route); cleanup
//! turns it into standard form.

use thiserror::Error;

/// Why a path is not an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("unbalanced angle brackets")]
    Brackets,
    #[error("bad local part")]
    LocalPart,
    #[error("bad domain")]
    Domain,
}

/// Extracts the address from a path token. `<>` gives the empty address;
/// whether that is allowed is the caller's business.
pub fn parse_path(token: &[u8]) -> Result<&[u8], AddressError> {
    let inner = match token {
        [b'<', inner @ .., b'>'] => inner,
        [b'<', ..] => return Err(AddressError::Brackets),
        other => other,
    };
    // Truncate the deprecated route address form, as Postfix does.
    let addr = match inner {
        [b'@', ..] => match memchr::memchr(b':', inner) {
            Some(colon) => &inner[colon + 1..],
            None => return Err(AddressError::LocalPart),
        },
        _ => inner,
    };
    if !addr.is_empty() {
        check_address(addr)?;
    }
    Ok(addr)
}

/// Checks `local[@domain]`.
fn check_address(addr: &[u8]) -> Result<(), AddressError> {
    let (local, domain) = split_at_domain(addr)?;
    if local.is_empty() {
        return Err(AddressError::LocalPart);
    }
    if local[0] != b'"' && !local.iter().all(|&c| is_atom_byte(c) || c == b'.') {
        return Err(AddressError::LocalPart);
    }
    match domain {
        None => Ok(()),
        Some(d) => check_domain(d),
    }
}

/// Splits at the `@` that follows the local part. A quoted local part must
/// be a single quoted string (escapes allowed), directly followed by `@` or
/// the end.
fn split_at_domain(addr: &[u8]) -> Result<(&[u8], Option<&[u8]>), AddressError> {
    if addr[0] == b'"' {
        let mut i = 1;
        while i < addr.len() {
            match addr[i] {
                b'\\' => i += 2,
                b'"' => break,
                b'\r' | b'\n' | 0 => return Err(AddressError::LocalPart),
                _ => i += 1,
            }
        }
        if i >= addr.len() {
            return Err(AddressError::LocalPart);
        }
        let local = &addr[..=i];
        return match &addr[i + 1..] {
            [] => Ok((local, None)),
            [b'@', domain @ ..] => Ok((local, Some(domain))),
            _ => Err(AddressError::LocalPart),
        };
    }
    match memchr::memchr(b'@', addr) {
        None => Ok((addr, None)),
        Some(at) => Ok((&addr[..at], Some(&addr[at + 1..]))),
    }
}

/// A domain name (letters, digits, `-`, `_`, `.`, and UTF-8 for SMTPUTF8)
/// or an address literal `[…]`.
fn check_domain(domain: &[u8]) -> Result<(), AddressError> {
    let ok = match domain {
        [] => false,
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&c| c.is_ascii_graphic() && !matches!(c, b'[' | b']' | b'\\'))
        }
        name => name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.') || c >= 0x80),
    };
    if ok {
        Ok(())
    } else {
        Err(AddressError::Domain)
    }
}

/// A byte allowed in an unquoted local part: RFC 5322 `atext`, plus 8-bit
/// bytes (UTF-8, which the caller checks against SMTPUTF8).
fn is_atom_byte(c: u8) -> bool {
    c >= 0x80
        || c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'/'
                | b'='
                | b'?'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// Postfix's `valid_hostname()` (for ETRN): dot-separated labels of
/// letters, digits, `-` and `_`, each at most 63 bytes, not starting or
/// ending with `-`, at most 255 bytes in all, not all-numeric.
pub fn valid_hostname(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let labels_ok = name.split(|&c| c == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    });
    labels_ok && !name.iter().all(|&c| c.is_ascii_digit() || c == b'.')
}
