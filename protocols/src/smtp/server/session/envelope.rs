//! The envelope commands: MAIL FROM and RCPT TO (paths, ESMTP parameters,
//! the recipient limit and the relay policy's answer), VRFY and ETRN.

use super::*;

impl Session {
    pub(super) fn mail_cmd(
        &mut self,
        line: &[u8],
        args: &[Token],
        policy: &mut dyn Policy,
    ) -> Outcome {
        if self.txn.is_some() {
            return self.fail(NESTED_MAIL);
        }
        let [keyword, path, params @ ..] = args else {
            return self.fail(MAIL_SYNTAX);
        };
        if !keyword.text(line).eq_ignore_ascii_case(b"from:") {
            return self.fail(MAIL_SYNTAX);
        }
        if let Some(outcome) = self.rate_gate(RateEvent::Mail, policy) {
            return outcome;
        }
        let Some(sender) = path_text(line, path) else {
            return self.fail(BAD_SENDER);
        };
        self.auth_mail_reset();
        for value in params.iter().filter_map(|t| auth_param(t.text(line))) {
            if let Some(outcome) = self.mail_auth_param(value) {
                return outcome;
            }
        }
        let esmtp = params
            .iter()
            .map(|t| t.text(line))
            .filter(|p| auth_param(p).is_none());
        let mail = match parse_mail_params(esmtp) {
            Ok(mail) => mail,
            Err(e) => {
                e.write_reply(&mut self.out);
                return Outcome::Error;
            }
        };
        if !mail.smtputf8 && !sender.is_ascii() {
            return self.fail(NEED_SMTPUTF8);
        }
        let limit = self.cfg.message_size_limit;
        if limit > 0 && mail.size.is_some_and(|size| size > limit) {
            return self.fail(SIZE_EXCEEDS_LIMIT);
        }
        self.txn = Some(Transaction {
            envelope: Envelope {
                sender: sender.to_owned(),
                recipients: Vec::new(),
                mail,
            },
            content: Content::new(&self.budget),
            overshoot: 0,
            bdat: false,
        });
        self.reply(MAIL_OK)
    }

    pub(super) fn rcpt_cmd(
        &mut self,
        line: &[u8],
        args: &[Token],
        policy: &mut dyn Policy,
    ) -> Outcome {
        if self.txn.is_none() {
            return self.fail(NEED_MAIL);
        }
        let [keyword, path, params @ ..] = args else {
            return self.fail(RCPT_SYNTAX);
        };
        if !keyword.text(line).eq_ignore_ascii_case(b"to:") {
            return self.fail(RCPT_SYNTAX);
        }
        if let Some(outcome) = self.rate_gate(RateEvent::Rcpt, policy) {
            return outcome;
        }
        let Some(txn) = self.txn.as_mut() else {
            return self.fail(NEED_MAIL);
        };
        let Some(address) = path_text(line, path).filter(|a| !a.is_empty()) else {
            return self.fail(BAD_RECIPIENT);
        };
        let rcpt = match parse_rcpt_params(params.iter().map(|t| t.text(line))) {
            Ok(rcpt) => rcpt,
            Err(e) => {
                e.write_reply(&mut self.out);
                return Outcome::Error;
            }
        };
        if !txn.envelope.mail.smtputf8 && !address.is_ascii() {
            return self.fail(NEED_SMTPUTF8);
        }
        let limit = self.cfg.recipient_limit;
        if limit > 0 && txn.envelope.recipients.len() >= limit {
            let overshoot = txn.overshoot;
            txn.overshoot = overshoot.saturating_add(1);
            self.out.extend_from_slice(TOO_MANY_RECIPIENTS);
            return if overshoot < SMTPD_RECIPIENT_OVERSHOOT_LIMIT {
                Outcome::Ok
            } else {
                Outcome::Error
            };
        }
        if let Err(reply) = policy.check_recipient(&txn.envelope.sender, address) {
            reply.write_to(&mut self.out);
            return Outcome::Error;
        }
        txn.envelope.recipients.push(Recipient {
            address: address.to_owned(),
            notify: rcpt.notify,
            orcpt: rcpt.orcpt,
        });
        self.reply(RCPT_OK)
    }

    pub(super) fn vrfy_cmd(&mut self, line: &[u8], args: &[Token]) -> Outcome {
        if self.cfg.disable_vrfy {
            return self.fail(VRFY_DISABLED);
        }
        let (Some(first), Some(last)) = (args.first(), args.last()) else {
            return self.fail(VRFY_SYNTAX);
        };
        // RFC 6531 3.7.4: `VRFY <addr> SMTPUTF8` may name a UTF-8 address.
        let (last, smtputf8) = match args {
            [.., before, utf8] if utf8.text(line).eq_ignore_ascii_case(b"SMTPUTF8") => {
                (before, true)
            }
            _ => (last, false),
        };
        // Postfix's collapse_args(): the words as one string.
        let arg = &line[first.start..last.end];
        if !smtputf8 && !arg.is_ascii() {
            return self.fail(NEED_SMTPUTF8);
        }
        let valid = !args.iter().any(|t| t.unterminated)
            && matches!(parse_path(arg), Ok(a) if !a.is_empty());
        if !valid {
            return self.fail(BAD_RECIPIENT);
        }
        let _ = write!(Writer(&mut self.out), "252 2.0.0 {}\r\n", printable(arg));
        Outcome::Ok
    }

    pub(super) fn etrn_cmd(&mut self, line: &[u8], args: &[Token]) -> Outcome {
        if self.txn.is_some() {
            return self.fail(ETRN_IN_TRANSACTION);
        }
        let [site] = args else {
            return self.fail(ETRN_SYNTAX);
        };
        let site = match site.text(line) {
            [b'@' | b'#', rest @ ..] => rest,
            other => other,
        };
        if !valid_hostname(site) && !valid_address_literal(site) {
            return self.fail(ETRN_BAD_PARAM);
        }
        self.fail(ETRN_UNABLE)
    }
}

/// The value of MAIL FROM's `AUTH=` parameter, if `param` is one.
pub(super) fn auth_param(param: &[u8]) -> Option<&[u8]> {
    match param.get(..5) {
        Some(name) if name.eq_ignore_ascii_case(b"AUTH=") => Some(&param[5..]),
        _ => None,
    }
}

/// The address of a MAIL/RCPT path token, as UTF-8, or None if it is not
/// an address.
pub(super) fn path_text<'a>(line: &'a [u8], path: &Token) -> Option<&'a str> {
    if path.unterminated {
        return None;
    }
    let address = parse_path(path.text(line)).ok()?;
    std::str::from_utf8(address).ok()
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (ETRN's extension to RFC 1985).
pub(super) fn valid_address_literal(text: &[u8]) -> bool {
    let [b'[', inner @ .., b']'] = text else {
        return false;
    };
    let inner = match inner {
        [b'I' | b'i', b'P' | b'p', b'v' | b'V', b'6', b':', rest @ ..] => rest,
        other => other,
    };
    std::str::from_utf8(inner).is_ok_and(|s| s.parse::<IpAddr>().is_ok())
}
