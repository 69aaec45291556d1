//! DNS messages in and out, without I/O: build a query, frame it for TCP,
//! and read a reply into what the resolver acts on. The engine's transport
//! uses the public helpers ([`is_reply_to`], [`tcp_frame`],
//! [`tcp_reply_len`]); the rest is the resolver's.

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::{ANSWER_RECORDS_MAX, CNAME_HOPS_MAX, DNS_MESSAGE_MAX_BYTES};

/// Postfix's `valid_hostname()` bounds: a whole name and one label.
const VALID_HOSTNAME_LEN: usize = 255;
const VALID_LABEL_LEN: usize = 63;

/// Whether `reply` can be the answer to `query`: same ID, and the QR bit
/// says "response". A cheap filter for the transport's receive loop
/// (no decoding); the resolver checks the question too.
pub fn is_reply_to(query: &[u8], reply: &[u8]) -> bool {
    const QR: u8 = 0x80;
    query.len() >= 12 && reply.len() >= 12 && query[..2] == reply[..2] && reply[2] & QR != 0
}

/// `message` with the 2-byte big-endian length that DNS over TCP puts in
/// front (RFC 1035 §4.2.2); `None` if it is too long to frame.
pub fn tcp_frame(message: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(message.len()).ok()?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Some(framed)
}

/// How many bytes follow a TCP reply's 2-byte length prefix: at most
/// [`DNS_MESSAGE_MAX_BYTES`], by construction.
pub fn tcp_reply_len(prefix: [u8; 2]) -> usize {
    usize::from(u16::from_be_bytes(prefix))
}

/// `name` as a fully qualified DNS name, if Postfix's `valid_hostname()`
/// would take it: letters, digits, `-` and `_` in labels of 1 to 63 bytes
/// that neither start nor end with `-`, 255 bytes in all, not all-numeric.
/// A trailing dot is allowed; a UTF-8 name is converted to its IDNA
/// (`xn--`) form first, as Postfix does with `smtputf8_enable`.
pub(crate) fn host_name(name: &str) -> Option<Name> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let ascii = if name.is_ascii() {
        name.to_string()
    } else {
        let idna = Name::from_utf8(name).ok()?.to_ascii();
        idna.strip_suffix('.').unwrap_or(&idna).to_string()
    };
    if !valid_hostname(&ascii) {
        return None;
    }
    let mut fqdn = Name::from_ascii(&ascii).ok()?;
    fqdn.set_fqdn(true);
    Some(fqdn)
}

fn valid_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > VALID_HOSTNAME_LEN {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= VALID_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let all_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    labels_ok && !all_numeric
}

/// A name as Postfix prints it: ASCII, no trailing dot.
pub(crate) fn display(name: &Name) -> String {
    let mut text = name.to_ascii();
    if text.ends_with('.') && text.len() > 1 {
        text.pop();
    }
    text
}

/// The query type as Postfix prints it in error texts.
pub(crate) fn type_name(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::MX => "MX",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::CNAME => "CNAME",
        _ => "other",
    }
}

/// A recursive (RD) query for `name`/`rtype` in class IN, with `id`.
pub(crate) fn encode_query(name: &Name, rtype: RecordType, id: u16) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), rtype));
    message.to_vec().ok()
}

/// What a reply means for the lookup.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// Records of the type asked for, at the end of any CNAME chain in
    /// the answer (at most [`ANSWER_RECORDS_MAX`]).
    Records(Vec<RData>),
    /// The answer aliases the name to this one without giving its data:
    /// ask again for the target.
    Alias(Name),
    /// NXDOMAIN.
    NxDomain,
    /// NOERROR with an empty answer section.
    NoData,
    /// Answers, but neither of the type asked for nor a CNAME.
    Unexpected,
    /// The UDP reply did not fit (TC): ask again over TCP.
    Truncated,
    /// SERVFAIL, REFUSED, NOTIMP: this server cannot help now; try the next.
    ServerFailure,
    /// FORMERR and other codes the C library calls non-recoverable.
    NoRecovery,
    /// Not an answer to our question (undecodable, other ID, other
    /// question, not a response): as if nothing had arrived.
    Ignore,
}

/// Read `reply` to the query `id` for `qname`/`qtype`. A TC bit is
/// honoured only for UDP (`over_tcp == false`); over TCP the reply is
/// taken as it is.
pub(crate) fn read_reply(
    reply: &[u8],
    id: u16,
    qname: &Name,
    qtype: RecordType,
    over_tcp: bool,
) -> Reply {
    if reply.len() > DNS_MESSAGE_MAX_BYTES {
        return Reply::Ignore;
    }
    let Ok(message) = Message::from_vec(reply) else {
        return Reply::Ignore;
    };
    let meta = &message.metadata;
    let question_matches = matches!(message.queries.as_slice(), [q]
        if q.name() == qname && q.query_type() == qtype && q.query_class() == DNSClass::IN);
    if meta.id != id
        || meta.message_type != MessageType::Response
        || meta.op_code != OpCode::Query
        || !question_matches
    {
        return Reply::Ignore;
    }
    if meta.truncation && !over_tcp {
        return Reply::Truncated;
    }
    match meta.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Reply::NxDomain,
        ResponseCode::ServFail | ResponseCode::Refused | ResponseCode::NotImp => {
            return Reply::ServerFailure
        }
        _ => return Reply::NoRecovery,
    }
    follow_answer(&message, qname, qtype)
}

/// Walk the answer section from `qname` along CNAMEs (as recursive
/// servers send whole chains) to the records of `qtype`.
fn follow_answer(message: &Message, qname: &Name, qtype: RecordType) -> Reply {
    if message.answers.is_empty() {
        return Reply::NoData;
    }
    let mut current = qname.clone();
    for _ in 0..=CNAME_HOPS_MAX {
        let records: Vec<RData> = message
            .answers
            .iter()
            .filter(|r| {
                r.dns_class == DNSClass::IN && r.record_type() == qtype && r.name == current
            })
            .take(ANSWER_RECORDS_MAX)
            .map(|r| r.data.clone())
            .collect();
        if !records.is_empty() {
            return Reply::Records(records);
        }
        let alias = message.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some(target.0.clone()),
            _ => None,
        });
        match alias {
            Some(target) => current = target,
            None => break,
        }
    }
    if current == *qname {
        Reply::Unexpected
    } else {
        Reply::Alias(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_as_valid_hostname_takes_them() {
        let long_label = "a".repeat(64);
        let long_name = format!("{}.example", "a.".repeat(125));
        let table: Vec<(&str, Option<&str>)> = vec![
            ("example.org", Some("example.org")),
            ("Example.ORG.", Some("Example.ORG")),
            ("_dmarc.example.org", Some("_dmarc.example.org")),
            ("mx-1.example", Some("mx-1.example")),
            ("bücher.example", Some("xn--bcher-kva.example")),
            ("", None),
            (".", None),
            ("a..b", None),
            ("-mx.example", None),
            ("mx-.example", None),
            ("mx example", None),
            ("mx@example", None),
            ("1.2.3", None),
            (long_label.as_str(), None),
            (long_name.as_str(), None),
        ];
        for (input, want) in table {
            let got = host_name(input).map(|n| display(&n));
            assert_eq!(got.as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn tcp_framing() {
        assert_eq!(tcp_frame(b"abc"), Some(vec![0, 3, b'a', b'b', b'c']));
        assert_eq!(tcp_frame(&vec![0; 65_536]), None);
        assert_eq!(tcp_reply_len([0x01, 0x02]), 258);
        assert_eq!(tcp_reply_len([0xff, 0xff]), DNS_MESSAGE_MAX_BYTES);
    }

    #[test]
    fn reply_filter() {
        let name = host_name("example.org").unwrap();
        let query = encode_query(&name, RecordType::MX, 0x1234).unwrap();
        let mut reply = query.clone();
        assert!(!is_reply_to(&query, &reply), "a query is not a reply");
        reply[2] |= 0x80;
        assert!(is_reply_to(&query, &reply));
        reply[1] ^= 1;
        assert!(!is_reply_to(&query, &reply));
        assert!(!is_reply_to(&query, &reply[..11]));
    }

    #[test]
    fn garbage_is_ignored() {
        let name = host_name("example.org").unwrap();
        for junk in [&b""[..], b"\x12\x34", &[0xff; 40]] {
            assert_eq!(
                read_reply(junk, 0x1234, &name, RecordType::MX, false),
                Reply::Ignore
            );
        }
    }
}
