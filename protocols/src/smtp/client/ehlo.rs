//! The ESMTP extensions a server announces in its EHLO reply (RFC 5321
//! §4.1.1.1), read the way Postfix's `smtp_helo()` reads them.

use super::reply::ServerReply;

/// What the server offered. Everything is off after HELO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: `Some(limit)` when SIZE was announced; a limit of 0 (or
    /// none given, or one that is not a number) means no fixed limit.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit_mime: bool,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3030.
    pub chunking: bool,
    /// RFC 2034.
    pub enhanced_status_codes: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 4954: the SASL mechanisms offered (upper case), from `AUTH`
    /// and the old `AUTH=` form.
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keywords of a 250 EHLO reply. The first line is the
    /// server's name, not a keyword. Keywords are matched without regard to
    /// case; a keyword may be followed by a space or (for old AUTH=
    /// servers) `=`. Unknown keywords are ignored.
    pub fn from_ehlo(reply: &ServerReply) -> Self {
        let mut ext = Extensions::default();
        for line in reply.line_texts().skip(1) {
            let mut words = line.split([' ', '\t', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            let is = |name: &str| keyword.eq_ignore_ascii_case(name);
            if is("PIPELINING") {
                ext.pipelining = true;
            } else if is("SIZE") {
                // Postfix warns about and ignores a limit that is not a number.
                let limit = words.next().and_then(|w| w.parse::<u64>().ok());
                ext.size = Some(limit.unwrap_or(0));
            } else if is("8BITMIME") {
                ext.eight_bit_mime = true;
            } else if is("DSN") {
                ext.dsn = true;
            } else if is("SMTPUTF8") {
                ext.smtputf8 = true;
            } else if is("CHUNKING") {
                ext.chunking = true;
            } else if is("ENHANCEDSTATUSCODES") {
                ext.enhanced_status_codes = true;
            } else if is("STARTTLS") {
                ext.starttls = true;
            } else if is("AUTH") {
                for mech in words {
                    let mech = mech.to_ascii_uppercase();
                    if !ext.auth.contains(&mech) {
                        ext.auth.push(mech);
                    }
                }
            }
        }
        // Postfix (fix 20140706): a server that offers SMTPUTF8 but not
        // 8BITMIME is treated as offering 8BITMIME; SMTPUTF8 implies it.
        if ext.smtputf8 {
            ext.eight_bit_mime = true;
        }
        ext
    }

    /// The server's fixed message size limit, if it announced one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::client::reply::{ReplyParser, LINE_LENGTH_LIMIT, MAX_REPLY_BYTES};

    fn ehlo(wire: &str) -> Extensions {
        let mut p = ReplyParser::new(LINE_LENGTH_LIMIT, MAX_REPLY_BYTES);
        let r = p.feed(wire.as_bytes()).unwrap().reply.unwrap();
        Extensions::from_ehlo(&r)
    }

    #[test]
    fn postfix_ehlo_reply() {
        let ext = ehlo(
            "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
             250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
             250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
        );
        assert_eq!(
            ext,
            Extensions {
                pipelining: true,
                size: Some(10240000),
                eight_bit_mime: true,
                dsn: true,
                smtputf8: true,
                chunking: true,
                enhanced_status_codes: true,
                starttls: true,
                auth: Vec::new(),
            }
        );
        assert_eq!(ext.size_limit(), Some(10240000));
    }

    #[test]
    fn auth_mechanisms_in_both_forms() {
        let ext = ehlo("250-mx.example\r\n250-AUTH PLAIN login\r\n250 AUTH=LOGIN CRAM-MD5\r\n");
        assert_eq!(ext.auth, ["PLAIN", "LOGIN", "CRAM-MD5"]);
    }

    #[test]
    fn name_only_reply_offers_nothing() {
        assert_eq!(ehlo("250 mx.example\r\n"), Extensions::default());
    }

    #[test]
    fn the_server_name_is_not_a_keyword() {
        assert!(!ehlo("250-PIPELINING\r\n250 DSN\r\n").pipelining);
    }

    #[test]
    fn keywords_ignore_case_and_odd_sizes() {
        let ext = ehlo("250-mx\r\n250-pipelining\r\n250-size\r\n250 Dsn\r\n");
        assert!(ext.pipelining && ext.dsn);
        assert_eq!((ext.size, ext.size_limit()), (Some(0), None));
        assert_eq!(ehlo("250-mx\r\n250 SIZE big\r\n").size_limit(), None);
        assert_eq!(ehlo("250-mx\r\n250 SIZE=1000\r\n").size_limit(), Some(1000));
    }

    #[test]
    fn smtputf8_implies_8bitmime() {
        let ext = ehlo("250-mx\r\n250 SMTPUTF8\r\n");
        assert!(ext.smtputf8 && ext.eight_bit_mime);
    }
}
