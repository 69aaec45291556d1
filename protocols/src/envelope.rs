//! The envelope of one message: what smtpd (or pickup) learned from the
//! client, stored in the queue with the content.
//!
//! These are plain data types shared by `protocols` (which fills them),
//! `agents` (cleanup, which normalises them) and `storage` (which encodes
//! them into queue records).

use std::net::IpAddr;

/// `BODY=` from MAIL FROM (RFC 6152, RFC 3030).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Body {
    /// No BODY= parameter was given.
    #[default]
    Unspecified,
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// `RET=` from MAIL FROM (RFC 3461): how much of the message a DSN returns.
/// Values as Postfix's `ret_flags` (FULL=1, HDRS=2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    Full = 1,
    Hdrs = 2,
}

/// `NOTIFY=` from RCPT TO (RFC 3461), as Postfix's bit values
/// (NEVER=1 SUCCESS=2 FAILURE=4 DELAY=8). Zero means "not given", which
/// Postfix treats as `DELAY,FAILURE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Notify(pub u8);

impl Notify {
    pub const NONE_GIVEN: Notify = Notify(0);
    pub const NEVER: u8 = 1;
    pub const SUCCESS: u8 = 2;
    pub const FAILURE: u8 = 4;
    pub const DELAY: u8 = 8;

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The MAIL FROM parameters that travel with the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` as declared by the client (RFC 1870).
    pub size: Option<u64>,
    pub body: Body,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-decoded (RFC 3461), at most 100 characters.
    pub envid: Option<String>,
}

/// One envelope recipient with its DSN parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address in standard form (`user@domain`), without angle brackets.
    pub address: String,
    pub notify: Notify,
    /// `ORCPT=` (RFC 3461) as given, e.g. `rfc822;jane@example.org`,
    /// xtext-decoded.
    pub orcpt: Option<String>,
}

impl Recipient {
    pub fn new(address: impl Into<String>) -> Self {
        Recipient {
            address: address.into(),
            notify: Notify::NONE_GIVEN,
            orcpt: None,
        }
    }
}

/// The envelope: reverse-path, forward-paths and their parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path without angle brackets; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    pub mail: MailParams,
}

/// `SMTP` after HELO, `ESMTP` after EHLO (Postfix's `proto=` log field and
/// the `with` clause of Received:).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[default]
    Smtp,
    Esmtp,
    /// Injected locally (sendmail / pickup).
    Local,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "SMTP",
            Protocol::Esmtp => "ESMTP",
            Protocol::Local => "local",
        }
    }
}

/// What we know about the client that submitted a message, for the
/// Received: header, logging and restrictions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// Verified reverse name, or `unknown` (Postfix's convention).
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    /// The HELO/EHLO argument, if the client gave one.
    pub helo: Option<String>,
    pub protocol: Protocol,
}

impl ClientInfo {
    /// `name[addr]`, as Postfix logs a client.
    pub fn display(&self) -> String {
        format!("{}[{}]", self.name, self.addr)
    }
}
