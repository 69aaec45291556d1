//! smtpd's fixed reply lines, byte for byte as Postfix sends them (CRLF
//! included), so the hot path appends a constant instead of formatting.
//! Replies that carry `$myhostname` or client text are built in `session`.

pub const MAIL_OK: &[u8] = b"250 2.1.0 Ok\r\n";
pub const RCPT_OK: &[u8] = b"250 2.1.5 Ok\r\n";
pub const OK: &[u8] = b"250 2.0.0 Ok\r\n";
pub const DATA_GO_AHEAD: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
pub const BYE: &[u8] = b"221 2.0.0 Bye\r\n";
pub const HELP: &[u8] =
    b"214 2.0.0 Commands: BDAT DATA EHLO ETRN HELO HELP MAIL NOOP QUIT RCPT RSET VRFY\r\n";

pub const NOT_RECOGNIZED: &[u8] = b"500 5.5.2 Error: command not recognized\r\n";
pub const BAD_SYNTAX: &[u8] = b"500 5.5.2 Error: bad syntax\r\n";
/// Not a Postfix text: Postfix truncates an over-long command line and runs
/// what is left; we refuse it instead (see `Session` docs).
pub const LINE_TOO_LONG: &[u8] = b"500 5.5.2 Error: line too long\r\n";
pub const BARE_LF: &[u8] = b"550 5.5.2 Error: bare <LF> received\r\n";
/// Our counterpart of `BARE_LF` for a bare CR (Postfix only checks LF).
pub const BARE_CR: &[u8] = b"550 5.5.2 Error: bare <CR> received\r\n";
pub const SYNC_ERROR: &[u8] = b"554 5.5.0 Error: SMTP protocol synchronization\r\n";
pub const BREAK_RULES: &[u8] = b"221 2.7.0 Error: I can break rules, too. Goodbye.\r\n";

pub const HELO_SYNTAX: &[u8] = b"501 Syntax: HELO hostname\r\n";
pub const EHLO_SYNTAX: &[u8] = b"501 Syntax: EHLO hostname\r\n";
pub const MAIL_SYNTAX: &[u8] = b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
pub const RCPT_SYNTAX: &[u8] = b"501 5.5.4 Syntax: RCPT TO:<address>\r\n";
pub const DATA_SYNTAX: &[u8] = b"501 5.5.4 Syntax: DATA\r\n";
pub const BDAT_SYNTAX: &[u8] = b"501 5.5.4 Syntax: BDAT count [LAST]\r\n";
pub const RSET_SYNTAX: &[u8] = b"501 5.5.4 Syntax: RSET\r\n";
pub const VRFY_SYNTAX: &[u8] = b"501 5.5.4 Syntax: VRFY address\r\n";
pub const BAD_SENDER: &[u8] = b"501 5.1.7 Bad sender address syntax\r\n";
pub const BAD_RECIPIENT: &[u8] = b"501 5.1.3 Bad recipient address syntax\r\n";
pub const NEED_SMTPUTF8: &[u8] = b"553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n";

pub const NESTED_MAIL: &[u8] = b"503 5.5.1 Error: nested MAIL command\r\n";
pub const NEED_MAIL: &[u8] = b"503 5.5.1 Error: need MAIL command\r\n";
pub const NEED_RCPT: &[u8] = b"503 5.5.1 Error: need RCPT command\r\n";
/// Not a Postfix text: DATA after BDAT chunks in the same transaction.
pub const BDAT_IN_PROGRESS: &[u8] = b"503 5.5.1 Error: BDAT in progress\r\n";
pub const NO_VALID_RECIPIENTS: &[u8] = b"554 5.5.1 Error: no valid recipients\r\n";
pub const TOO_MANY_RECIPIENTS: &[u8] = b"452 4.5.3 Error: too many recipients\r\n";
pub const SIZE_EXCEEDS_LIMIT: &[u8] = b"552 5.3.4 Message size exceeds fixed limit\r\n";
pub const MESSAGE_TOO_BIG: &[u8] = b"552 5.3.4 Error: message file too big\r\n";
/// Not a Postfix text (Postfix streams content to a queue file and has no
/// memory budget): the shard's `sluice_inflight_memory_limit` is reached.
/// Temporary, with Postfix's 4.3.0 for a local resource problem, so the
/// client keeps the message and retries.
pub const NO_MEMORY: &[u8] = b"451 4.3.0 Error: insufficient system resources\r\n";

pub const VRFY_DISABLED: &[u8] = b"502 5.5.1 VRFY command is disabled\r\n";
pub const ETRN_IN_TRANSACTION: &[u8] = b"503 Error: MAIL transaction in progress\r\n";
pub const ETRN_SYNTAX: &[u8] = b"500 Syntax: ETRN domain\r\n";
pub const ETRN_BAD_PARAM: &[u8] = b"501 Error: invalid parameter syntax\r\n";
/// The fast flush service is not there yet, so every ETRN gets this.
pub const ETRN_UNABLE: &[u8] = b"458 Unable to queue messages\r\n";
