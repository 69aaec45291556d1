//! The in-flight content budget: the accounting core, and sessions that
//! share one budget (451 4.3.0 beyond it, released on every path).

use proptest::prelude::*;

use super::super::budget::{Budget, Content, ContentSink, Reservation};
use super::*;
use crate::smtp::server::AcceptAll;

const NO_MEMORY: &str = "451 4.3.0 Error: insufficient system resources";

#[test]
fn a_reservation_grows_within_the_limit_and_is_released_when_dropped() {
    let b = Budget::new(100);
    let mut r = b.reservation();
    assert!(r.try_grow(60));
    let mut s = b.reservation();
    assert!(!s.try_grow(41), "beyond the limit");
    assert_eq!((b.used(), s.bytes()), (60, 0), "a refusal changes nothing");
    assert!(s.try_grow(40));
    assert_eq!(b.used(), 100);
    r.shrink_to(10);
    assert_eq!(b.used(), 50);
    drop(r);
    drop(s);
    assert_eq!(b.used(), 0);
}

#[test]
fn zero_means_unlimited_but_still_counts() {
    let b = Budget::new(0);
    let mut r = b.reservation();
    assert!(r.try_grow(u64::MAX / 2));
    assert!(!r.try_grow(u64::MAX), "the count never wraps");
    assert_eq!(b.used(), u64::MAX / 2);
    drop(r);
    assert_eq!(b.used(), 0);
}

#[test]
fn content_reserves_its_capacity_before_growing() {
    let b = Budget::new(20_000);
    let mut c = Content::new(&b);
    assert!(c.append(&[b'x'; 3000]));
    assert_eq!(b.used(), 2 * 4096, "a 4 KiB buffer, counted twice");
    assert!(c.append(&[b'y'; 3000]));
    assert_eq!(b.used(), 2 * 8192);
    assert!(!c.append(&[b'z'; 5000]), "2 x (6000 + 5000) > 20000");
    assert_eq!(
        c.len(),
        6000,
        "a refused append leaves the content as it was"
    );
    c.discard();
    assert_eq!((c.len(), b.used()), (0, 0));
}

#[derive(Clone, Debug)]
enum Op {
    Grow(usize, u64),
    Shrink(usize, u64),
    Drop(usize),
    Append(usize, usize),
    Discard(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, 0..3000u64).prop_map(|(i, n)| Op::Grow(i, n)),
        (0..4usize, 0..3000u64).prop_map(|(i, n)| Op::Shrink(i, n)),
        (0..4usize).prop_map(Op::Drop),
        (0..4usize, 0..9000usize).prop_map(|(i, n)| Op::Append(i, n)),
        (0..4usize).prop_map(Op::Discard),
    ]
}

proptest! {
    /// Whatever the reservations and buffers do, the budget's count is the
    /// sum of what they hold, never above the limit, every buffer's
    /// capacity is covered, and with everything dropped it is zero.
    #[test]
    fn the_count_stays_within_the_limit_and_returns_to_zero(
        limit in 1u64..40_000,
        ops in proptest::collection::vec(op(), 0..200),
    ) {
        let b = Budget::new(limit);
        let mut holds: Vec<Option<Reservation>> = (0..4).map(|_| Some(b.reservation())).collect();
        let mut contents: Vec<Content> = (0..4).map(|_| Content::new(&b)).collect();
        let mut lens = [0usize; 4];
        for op in ops {
            match op {
                Op::Grow(i, n) => {
                    let r = holds[i].get_or_insert_with(|| b.reservation());
                    let before = b.used();
                    let ok = r.try_grow(n);
                    prop_assert_eq!(ok, before + n <= limit);
                }
                Op::Shrink(i, n) => {
                    if let Some(r) = holds[i].as_mut() {
                        r.shrink_to(n);
                    }
                }
                Op::Drop(i) => holds[i] = None,
                Op::Append(i, n) => {
                    if contents[i].append(&vec![b'a'; n]) {
                        lens[i] += n;
                    }
                    prop_assert_eq!(contents[i].len(), lens[i]);
                }
                Op::Discard(i) => {
                    contents[i].discard();
                    lens[i] = 0;
                }
            }
            let held: u64 = holds.iter().flatten().map(Reservation::bytes).sum();
            prop_assert!(b.used() <= limit);
            prop_assert!(b.used() >= held + 2 * lens.iter().sum::<usize>() as u64);
        }
        drop(holds);
        drop(contents);
        prop_assert_eq!(b.used(), 0);
    }
}

fn data(t: &mut T, body_len: usize) -> String {
    assert!(t.cmd("DATA").starts_with("354"));
    let mut msg = b"Subject: x\r\n\r\n".to_vec();
    msg.resize(msg.len() + body_len, b'a');
    msg.extend_from_slice(b"\r\n.\r\n");
    t.send(&msg)
}

#[test]
fn data_beyond_the_budget_gets_451_and_the_session_goes_on() {
    let budget = Budget::new(128 * 1024);
    let mut a = T::with_budget(cfg(), budget.clone());
    let mut b = T::with_budget(cfg(), budget.clone());
    a.ready();
    b.ready();
    // a's content is half received: it holds its memory.
    assert!(a.cmd("DATA").starts_with("354"));
    assert_eq!(a.send(&[b'a'; 40_000]), "");
    assert!(budget.used() >= 40_000);
    // b does not fit beside it: read to the end, refused, nothing queued.
    assert_eq!(data(&mut b, 40_000), NO_MEMORY);
    assert!(b.messages.is_empty());
    assert_eq!(b.s.sender(), None, "the transaction is over");
    assert_eq!(a.send(b"\r\n.\r\n"), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(budget.used(), 0, "released when the message was stored");
    // The retry fits now.
    b.ready();
    assert_eq!(data(&mut b, 40_000), "250 2.0.0 Ok: queued as QID1");
    assert_eq!(b.messages[0].content.len(), 40_000 + 16);
    assert_eq!(budget.used(), 0);
}

#[test]
fn an_over_size_message_gets_552_not_451() {
    let budget = Budget::new(4 * 1024);
    let mut t = T::with_budget(
        ServerConfig {
            message_size_limit: 10_000,
            ..cfg()
        },
        budget.clone(),
    );
    t.ready();
    assert_eq!(
        data(&mut t, 20_000),
        "552 5.3.4 Error: message file too big"
    );
    assert_eq!(budget.used(), 0);
}

#[test]
fn the_budget_is_released_on_every_way_out() {
    let budget = Budget::new(1 << 20);
    // RSET after a refused message, QUIT, and a session dropped mid-DATA.
    let mut t = T::with_budget(cfg(), budget.clone());
    t.ready();
    assert!(t.cmd("DATA").starts_with("354"));
    assert_eq!(t.send(&[b'a'; 10_000]), "");
    assert!(budget.used() > 0);
    drop(t);
    assert_eq!(budget.used(), 0, "lost connection in DATA");

    let mut t = T::with_budget(cfg(), budget.clone());
    t.ready();
    assert_eq!(t.send(b"BDAT 5000\r\n"), "");
    assert!(budget.used() >= 5000, "a chunk's room is reserved at BDAT");
    assert_eq!(t.send(&[b'b'; 5000]), "250 2.0.0 Ok: 5000 bytes");
    assert_eq!(t.cmd("RSET"), "250 2.0.0 Ok");
    assert_eq!(budget.used(), 0, "RSET");

    let mut t = T::with_budget(cfg(), budget.clone());
    t.ready();
    assert!(t.cmd("DATA").starts_with("354"));
    assert_eq!(t.s.on_timeout(), Want::Close);
    drop(t);
    assert_eq!(budget.used(), 0, "timeout");
}

#[test]
fn the_owner_holds_the_memory_while_it_stores_the_message() {
    let budget = Budget::new(1 << 20);
    let mut t = T::with_budget(cfg(), budget.clone());
    t.ready();
    assert!(t.cmd("DATA").starts_with("354"));
    let s = &mut t.s;
    let input = b"hello\r\n.\r\n";
    let p = s.receive(input, &mut AcceptAll);
    assert_eq!((p.consumed, p.want), (input.len(), Want::Message));
    let m = s.take_message().expect("a message");
    assert!(
        budget.used() >= 2 * m.content.len() as u64,
        "room for a copy"
    );
    let hold = s.take_reservation();
    s.message_done(Err(Reply::new(
        451,
        (4, 3, 0),
        "Error: queue file write error",
    )));
    assert!(budget.used() > 0, "the owner still holds it");
    drop(hold);
    assert_eq!(budget.used(), 0);
}

#[test]
fn a_chunk_beyond_the_budget_is_read_and_refused() {
    let budget = Budget::new(128 * 1024);
    let mut t = T::with_budget(cfg(), budget.clone());
    t.ready();
    assert_eq!(t.send(b"BDAT 30000\r\n"), "");
    assert_eq!(t.send(&[b'x'; 30_000]), "250 2.0.0 Ok: 30000 bytes");
    let mut big = b"BDAT 50000 LAST\r\n".to_vec();
    big.resize(big.len() + 50_000, b'y');
    assert_eq!(t.send(&big), NO_MEMORY);
    assert_eq!(budget.used(), 0, "the transaction ended");
    assert_eq!(
        t.send(b"BDAT 1 LAST\r\nz"),
        "503 5.5.1 Error: need RCPT command"
    );
    assert!(t.messages.is_empty());
    // A chunk size beyond the budget is refused without allocating.
    t.ready();
    assert_eq!(t.send(b"BDAT 1000000000 LAST\r\n"), "");
    assert_eq!(budget.used(), 0);
}
