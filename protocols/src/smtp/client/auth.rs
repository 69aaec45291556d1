//! The client's side of SMTP AUTH (RFC 4954) for the two mechanisms
//! Sluice's smtp client speaks: PLAIN (RFC 4616, the initial response on
//! the AUTH line) and LOGIN (the username and password each answering a
//! 334 challenge). Sans-IO: this builds the lines; the driver sends them
//! and reads the replies.
//!
//! Trust: the credentials are ours (from `smtp_sasl_password_maps`) and
//! are never logged; the server's 334 challenges are not interpreted
//! (LOGIN's prompts are fixed by convention).

/// The SASL mechanisms the client implements, in order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// `AUTH PLAIN <base64(NUL user NUL password)>`.
pub fn plain(user: &str, password: &str) -> Vec<u8> {
    let mut token = Vec::with_capacity(user.len() + password.len() + 2);
    token.push(0);
    token.extend_from_slice(user.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    let mut out = b"AUTH PLAIN ".to_vec();
    base64_encode(&mut out, &token);
    out.extend_from_slice(b"\r\n");
    out
}

/// `AUTH LOGIN`, then, after each 334, one of these lines.
pub const LOGIN: &[u8] = b"AUTH LOGIN\r\n";

/// A base64 line answering a LOGIN challenge (the username, then the
/// password).
pub fn login_response(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 4 / 3 + 6);
    base64_encode(&mut out, value.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// `*`: cancels an exchange (RFC 4954 §4).
pub const CANCEL: &[u8] = b"*\r\n";

/// Standard base64 (RFC 4648 §4) with padding, appended to `out`.
pub fn base64_encode(out: &mut Vec<u8>, input: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(input: &[u8]) -> String {
        let mut out = Vec::new();
        base64_encode(&mut out, input);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in vectors {
            assert_eq!(b64(input.as_bytes()), want);
        }
    }

    #[test]
    fn plain_and_login_lines() {
        assert_eq!(
            plain("tim", "tanstaaftanstaaf"),
            b"AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n"
        );
        assert_eq!(login_response("tim"), b"dGlt\r\n");
    }
}
