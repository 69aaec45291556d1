//! Properties over random sessions built from the SMTP alphabet.

use proptest::prelude::*;

use super::*;
use crate::smtp::BareNewline;

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"EHLO c\r\n",
        b"HELO c\r\n",
        b"MAIL FROM:<a@b>\r\n",
        b"MAIL FROM:<> SIZE=10\r\n",
        b"RCPT TO:<c@d>\r\n",
        b"RCPT TO:<x@relay.invalid>\r\n",
        b"DATA\r\n",
        b"data\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"VRFY a@b\r\n",
        b"HELP\r\n",
        b"ETRN example.org\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"\n.\n",
        b"\r.\r",
        b"..",
        b".",
        b"\r",
        b"\n",
        b"\r\n",
        b"Subject: x\r\n",
    ];
    prop_oneof![
        8 => proptest::sample::select(fixed).prop_map(<[u8]>::to_vec),
        2 => (0u64..24, any::<bool>()).prop_map(|(n, last)| {
            format!("BDAT {n}{}\r\n", if last { " LAST" } else { "" }).into_bytes()
        }),
        1 => "[A-Za-z0-9 <>@:.=\"]{0,40}\r\n".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..24),
        1 => Just(b"QUIT\r\n".to_vec()),
    ]
}

fn session_input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

fn mode() -> impl Strategy<Value = BareNewline> {
    prop_oneof![
        Just(BareNewline::Normalize),
        Just(BareNewline::Reject),
        Just(BareNewline::No)
    ]
}

/// Splits `input` at the given (sorted, clamped) cut points.
fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut reads = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for c in cuts {
        reads.push(&input[from..c]);
        from = c;
    }
    reads.push(&input[from..]);
    reads
}

/// Every output line is `ddd` + space or dash + text, CRLF-terminated.
fn well_formed(output: &str) -> bool {
    let Some(body) = output.strip_suffix("\r\n") else {
        return output.is_empty();
    };
    body.split("\r\n").all(|line| {
        let b = line.as_bytes();
        b.len() >= 4
            && b[..3].iter().all(u8::is_ascii_digit)
            && matches!(b[3], b' ' | b'-')
            && (b'2'..=b'5').contains(&b[0])
            && !line.contains('\r')
            && !line.contains('\n')
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sessions_never_misbehave(
        input in session_input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
        mode in mode(),
        forbid in any::<bool>(),
        size_limit in prop_oneof![Just(0u64), Just(16u64), Just(10_240_000u64)],
    ) {
        let cfg = ServerConfig {
            bare_newline: mode,
            forbid_unauth_pipelining: forbid,
            message_size_limit: size_limit,
            line_length_limit: 64,
            hard_error_limit: 8,
            ..cfg()
        };
        // drive() checks consumed <= input and the command-line buffer bound.
        let out = drive(cfg, &split(&input, &cuts));
        prop_assert!(well_formed(&out.output), "{:?}", out.output);
        let lower = input.to_ascii_lowercase();
        let data_cmds = lower.windows(4).filter(|w| w == b"data" || w == b"bdat").count();
        prop_assert!(out.messages.len() <= data_cmds);
        for m in &out.messages {
            prop_assert!(!m.envelope.recipients.is_empty());
            if size_limit > 0 {
                prop_assert!(m.content.len() as u64 <= size_limit);
            }
        }
    }

    #[test]
    fn any_split_gives_the_same_session(
        input in session_input(),
        cuts in proptest::collection::vec(any::<usize>(), 1..8),
        mode in mode(),
    ) {
        let cfg = || ServerConfig { bare_newline: mode, ..split_cfg() };
        prop_assert_eq!(drive(cfg(), &split(&input, &cuts)), drive(cfg(), &[&input]));
    }
}
