//! ESMTP parameters of MAIL FROM (SIZE, BODY, SMTPUTF8, RET, ENVID) and
//! RCPT TO (NOTIFY, ORCPT), with Postfix's replies for each mistake.
//!
//! Postfix does not implement BINARYMIME and does not announce it, so
//! `BODY=BINARYMIME` gets the same `555 5.5.4 Unsupported option` as any
//! unknown parameter.

use crate::envelope::{Body, MailParams, Notify, Ret};

/// A parameter the session refuses, with the reply Postfix gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// `501 5.5.4 Bad message size syntax`
    SizeSyntax,
    /// `552 5.3.4 Message size exceeds file system imposed limit`
    SizeOverflow,
    /// `501 5.5.4 Bad RET parameter syntax`
    Ret,
    /// `501 5.5.4 Bad ENVID parameter syntax`
    Envid,
    /// `501 5.5.4 Error: Bad NOTIFY parameter syntax`
    Notify,
    /// `501 5.5.4 Error: Bad ORCPT parameter syntax`
    Orcpt,
    /// `555 5.5.4 Unsupported option: <param>` (the parameter as sent,
    /// non-printable bytes shown as `?`).
    Unsupported(String),
}

impl ParamError {
    /// The reply line, CRLF included.
    pub fn write_reply(&self, out: &mut Vec<u8>) {
        let line: &[u8] = match self {
            ParamError::SizeSyntax => b"501 5.5.4 Bad message size syntax\r\n",
            ParamError::SizeOverflow => {
                b"552 5.3.4 Message size exceeds file system imposed limit\r\n"
            }
            ParamError::Ret => b"501 5.5.4 Bad RET parameter syntax\r\n",
            ParamError::Envid => b"501 5.5.4 Bad ENVID parameter syntax\r\n",
            ParamError::Notify => b"501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n",
            ParamError::Orcpt => b"501 5.5.4 Error: Bad ORCPT parameter syntax\r\n",
            ParamError::Unsupported(param) => {
                out.extend_from_slice(b"555 5.5.4 Unsupported option: ");
                out.extend_from_slice(param.as_bytes());
                b"\r\n"
            }
        };
        out.extend_from_slice(line);
    }
}

/// RFC 3461: ENVID is at most 100 characters.
pub const ENVID_MAX: usize = 100;

/// Splits `NAME=value` case-insensitively on `name` (given with its `=`).
fn value_of<'a>(param: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (param.len() >= name.len() && param[..name.len()].eq_ignore_ascii_case(name))
        .then(|| &param[name.len()..])
}

/// Parses the MAIL FROM parameters after the path.
pub fn parse_mail_params<'a>(
    params: impl IntoIterator<Item = &'a [u8]>,
) -> Result<MailParams, ParamError> {
    let mut mail = MailParams::default();
    for param in params {
        if param.eq_ignore_ascii_case(b"BODY=8BITMIME") {
            mail.body = Body::EightBitMime;
        } else if param.eq_ignore_ascii_case(b"BODY=7BIT") {
            mail.body = Body::SevenBit;
        } else if param.eq_ignore_ascii_case(b"SMTPUTF8") {
            mail.smtputf8 = true;
        } else if let Some(v) = value_of(param, b"SIZE=") {
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return Err(ParamError::SizeSyntax);
            }
            // Postfix's off_t: anything past i64::MAX overflows.
            let size = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(ParamError::SizeOverflow)?;
            mail.size = Some(size as u64);
        } else if let Some(v) = value_of(param, b"RET=") {
            let ret = if v.eq_ignore_ascii_case(b"FULL") {
                Ret::Full
            } else if v.eq_ignore_ascii_case(b"HDRS") {
                Ret::Hdrs
            } else {
                return Err(ParamError::Ret);
            };
            if mail.ret.replace(ret).is_some() {
                return Err(ParamError::Ret);
            }
        } else if let Some(v) = value_of(param, b"ENVID=") {
            let envid = xtext_decode(v)
                .filter(|s| s.len() <= ENVID_MAX && s.bytes().all(|c| (0x20..0x7f).contains(&c)))
                .ok_or(ParamError::Envid)?;
            if mail.envid.replace(envid).is_some() {
                return Err(ParamError::Envid);
            }
        } else {
            return Err(ParamError::Unsupported(printable(param)));
        }
    }
    Ok(mail)
}

/// The RCPT TO parameters after the path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Notify,
    /// `type;decoded-address`, e.g. `rfc822;jane@example.org`.
    pub orcpt: Option<String>,
}

/// Parses the RCPT TO parameters after the path.
pub fn parse_rcpt_params<'a>(
    params: impl IntoIterator<Item = &'a [u8]>,
) -> Result<RcptParams, ParamError> {
    let mut rcpt = RcptParams::default();
    for param in params {
        if let Some(v) = value_of(param, b"NOTIFY=") {
            if rcpt.notify != Notify::NONE_GIVEN {
                return Err(ParamError::Notify);
            }
            rcpt.notify = notify_mask(v).ok_or(ParamError::Notify)?;
        } else if let Some(v) = value_of(param, b"ORCPT=") {
            if rcpt.orcpt.is_some() {
                return Err(ParamError::Orcpt);
            }
            rcpt.orcpt = Some(orcpt(v).ok_or(ParamError::Orcpt)?);
        } else {
            return Err(ParamError::Unsupported(printable(param)));
        }
    }
    Ok(rcpt)
}

/// `NEVER` alone, or a comma list of `SUCCESS`, `FAILURE`, `DELAY`
/// (Postfix's `dsn_notify_mask()`).
fn notify_mask(v: &[u8]) -> Option<Notify> {
    let mut mask = 0u8;
    for word in v.split(|&c| c == b',') {
        mask |= if word.eq_ignore_ascii_case(b"NEVER") {
            Notify::NEVER
        } else if word.eq_ignore_ascii_case(b"SUCCESS") {
            Notify::SUCCESS
        } else if word.eq_ignore_ascii_case(b"FAILURE") {
            Notify::FAILURE
        } else if word.eq_ignore_ascii_case(b"DELAY") {
            Notify::DELAY
        } else {
            return None;
        };
    }
    if mask & Notify::NEVER != 0 && mask != Notify::NEVER {
        return None;
    }
    Some(Notify(mask))
}

/// `addr-type ";" xtext`, kept as `type;decoded`.
fn orcpt(v: &[u8]) -> Option<String> {
    let semi = memchr::memchr(b';', v)?;
    let (kind, coded) = (&v[..semi], &v[semi + 1..]);
    if kind.is_empty() || !kind.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    let addr = xtext_decode(coded)?;
    if addr.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(kind.len() + 1 + addr.len());
    out.push_str(std::str::from_utf8(kind).ok()?);
    out.push(';');
    out.push_str(&addr);
    Some(out)
}

/// Decodes RFC 3461 xtext (`+XX` hex escapes). The result must be UTF-8.
pub fn xtext_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'+' {
            let hi = hex(*v.get(i + 1)?)?;
            let lo = hex(*v.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if c.is_ascii_graphic() {
            out.push(c);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Postfix's `printable()`: the bytes as text, with anything that is not
/// printable ASCII shown as `?`.
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&c| {
            if c == b' ' || c.is_ascii_graphic() {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}
