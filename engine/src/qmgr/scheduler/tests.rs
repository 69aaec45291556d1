use super::*;
use crate::qmgr::window::WindowParams;
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct E {
    msg: u32,
    rcpt: u32,
}

impl Entry for E {
    type Key = u32;
    fn message(&self) -> &u32 {
        &self.msg
    }
}

const S: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * S;

fn entries(msg: u32, n: u32) -> Vec<E> {
    (0..n).map(|rcpt| E { msg, rcpt }).collect()
}

fn smtp(host: &str) -> Destination {
    Destination::new("smtp", host)
}

fn scheduler(window: WindowParams, recipient_limit: u32) -> Scheduler<E> {
    let mut transports = TransportTable::new(TransportParams {
        window,
        recipient_limit,
        process_limit: 100,
    });
    transports.insert(
        "local",
        TransportParams {
            window: WindowParams { limit: 2, ..window },
            recipient_limit: 1,
            process_limit: 100,
        },
    );
    Scheduler::new(SchedulerParams {
        transports,
        ..SchedulerParams::default()
    })
}

fn default_scheduler() -> Scheduler<E> {
    scheduler(WindowParams::default(), 50)
}

fn shape(batch: &[E]) -> (u32, usize) {
    (batch[0].msg, batch.len())
}

#[test]
fn recipients_are_batched_per_message_up_to_the_limit() {
    let mut s = scheduler(WindowParams::default(), 3);
    let d = smtp("example.org");
    let mut mixed = entries(1, 4);
    mixed.extend(entries(2, 2));
    mixed.push(E { msg: 1, rcpt: 9 });
    assert!(s.enqueue(d.clone(), mixed, T0).is_none());
    assert_eq!(s.queued(), 7);
    // Topping up message 2's open batch from a later call.
    assert!(s.enqueue(d.clone(), entries(2, 2), T0).is_none());

    let mut got = Vec::new();
    while let Some((dest, batch)) = s.next_delivery() {
        assert_eq!(dest, d);
        assert!(batch.iter().all(|e| e.msg == batch[0].msg));
        got.push(shape(&batch));
    }
    assert_eq!(got, [(1, 3), (1, 2), (2, 3), (2, 1)]);
    assert_eq!(s.queued(), 0);
    assert_eq!(s.busy(&d), 4);
}

#[test]
fn local_delivers_one_recipient_at_a_time_two_at_once() {
    let mut s = default_scheduler();
    let d = Destination::new("local", "host.example.com");
    assert!(s.enqueue(d.clone(), entries(1, 5), T0).is_none());
    let first = s.next_delivery().unwrap();
    let second = s.next_delivery().unwrap();
    assert_eq!((first.1.len(), second.1.len()), (1, 1));
    assert!(s.next_delivery().is_none(), "local's window is 2");
    assert!(s.done(&d, Feedback::Success, "", T0).is_empty());
    assert_eq!(s.next_delivery().map(|(_, b)| b[0].rcpt), Some(2));
}

#[test]
fn window_limits_deliveries_in_flight() {
    let mut s = default_scheduler();
    let d = smtp("example.org");
    for m in 0..10 {
        assert!(s.enqueue(d.clone(), entries(m, 1), T0).is_none());
    }
    let started: Vec<u32> = std::iter::from_fn(|| s.next_delivery())
        .map(|(_, b)| b[0].msg)
        .collect();
    assert_eq!(started, [0, 1, 2, 3, 4], "initial concurrency 5");
    assert_eq!(s.busy(&d), 5);
    // One success with 5 busy raises the window to 6: two may start.
    assert!(s.done(&d, Feedback::Success, "", T0).is_empty());
    assert_eq!(s.concurrency(&d), Some(6));
    assert_eq!(s.next_delivery().map(|(_, b)| b[0].msg), Some(5));
    assert_eq!(s.next_delivery().map(|(_, b)| b[0].msg), Some(6));
    assert!(s.next_delivery().is_none());
}

#[test]
fn round_robin_over_destinations_then_transports() {
    let mut s = default_scheduler();
    for host in ["a", "b", "c"] {
        assert!(s.enqueue(smtp(host), entries(1, 1), T0).is_none());
        assert!(s.enqueue(smtp(host), entries(2, 1), T0).is_none());
    }
    let order: Vec<String> = std::iter::from_fn(|| s.next_delivery())
        .map(|(d, _)| d.nexthop)
        .collect();
    assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);

    // Transports take turns whatever their number of destinations.
    let mut s = default_scheduler();
    for host in ["a", "b", "c"] {
        assert!(s.enqueue(smtp(host), entries(1, 1), T0).is_none());
    }
    let relay = Destination::new("relay", "r");
    for m in 0..3 {
        assert!(s.enqueue(relay.clone(), entries(m, 1), T0).is_none());
    }
    let order: Vec<String> = std::iter::from_fn(|| s.next_delivery())
        .map(|(d, _)| d.to_string())
        .collect();
    assert_eq!(
        order,
        ["smtp:a", "relay:r", "smtp:b", "relay:r", "smtp:c", "relay:r"]
    );
}

#[test]
fn process_limit_caps_a_transport() {
    let mut transports = TransportTable::default();
    transports.insert(
        "smtp",
        TransportParams {
            process_limit: 2,
            ..TransportParams::default()
        },
    );
    let mut s = Scheduler::new(SchedulerParams {
        transports,
        ..SchedulerParams::default()
    });
    for host in ["a", "b", "c"] {
        assert!(s.enqueue(smtp(host), entries(1, 1), T0).is_none());
    }
    assert!(s
        .enqueue(Destination::new("relay", "r"), entries(1, 1), T0)
        .is_none());
    let started: Vec<String> = std::iter::from_fn(|| s.next_delivery())
        .map(|(d, _)| d.to_string())
        .collect();
    assert_eq!(started, ["smtp:a", "relay:r", "smtp:b"]);
    assert!(s.done(&smtp("a"), Feedback::Success, "", T0).is_empty());
    assert_eq!(
        s.next_delivery().map(|(d, _)| d.nexthop),
        Some("c".to_string())
    );
}

#[test]
fn dead_destination_defers_its_queue_and_refuses_until_the_suspension_ends() {
    let mut s = default_scheduler();
    let d = smtp("down.example");
    for m in 0..8 {
        assert!(s.enqueue(d.clone(), entries(m, 2), T0).is_none());
    }
    let in_flight: Vec<_> = std::iter::from_fn(|| s.next_delivery()).collect();
    assert_eq!(in_flight.len(), 5);
    let reason = "connect to down.example[192.0.2.1]:25: Connection refused";
    // Negative feedback 1: windows 5, 3, 2 and cohorts 1/5 + 1/3 + 1/2.
    for _ in 0..2 {
        assert!(s.done(&d, Feedback::Failure, reason, T0).is_empty());
    }
    let dropped = s.done(&d, Feedback::Failure, reason, T0);
    assert_eq!(
        dropped.iter().map(|e| e.msg).collect::<Vec<_>>(),
        [5, 5, 6, 6, 7, 7]
    );
    assert_eq!(s.queued(), 0);
    let text = format!("delivery temporarily suspended: {reason}");
    assert_eq!(s.suspended(&d), Some(text.as_str()));
    assert_eq!(s.concurrency(&d), Some(0));
    assert!(s.next_delivery().is_none());

    // New mail for it is refused with the same text until 300 s later.
    let refused = s.enqueue(d.clone(), entries(9, 1), T0 + 299 * S).unwrap();
    assert_eq!(refused.why, Refusal::Suspended { reason: text });
    assert_eq!(refused.entries, entries(9, 1));
    // The last deliveries in flight fail too: already dead, nothing new.
    assert!(s
        .done(&d, Feedback::Failure, reason, T0 + 299 * S)
        .is_empty());
    assert!(s
        .done(&d, Feedback::Failure, reason, T0 + 299 * S)
        .is_empty());

    assert!(s.enqueue(d.clone(), entries(9, 1), T0 + 300 * S).is_none());
    assert_eq!(s.suspended(&d), None);
    assert_eq!(s.concurrency(&d), Some(5));
    assert_eq!(s.next_delivery().map(|(_, b)| b[0].msg), Some(9));
}

#[test]
fn a_success_in_flight_revives_a_dead_destination() {
    let mut s = scheduler(
        WindowParams {
            initial: 2,
            ..WindowParams::default()
        },
        50,
    );
    let d = smtp("flaky.example");
    assert!(s.enqueue(d.clone(), entries(1, 1), T0).is_none());
    assert!(s.enqueue(d.clone(), entries(2, 1), T0).is_none());
    let _ = (s.next_delivery(), s.next_delivery());
    // 1/2 + 1/1: the second failure kills it.
    assert!(s.done(&d, Feedback::Failure, "timeout", T0).is_empty());
    assert!(s.enqueue(d.clone(), entries(3, 1), T0).is_none());
    let dropped = s.done(&d, Feedback::Failure, "timeout", T0);
    assert_eq!(dropped, entries(3, 1));
    assert!(s.suspended(&d).is_some());
    // Re-enqueued work is refused, then a forgotten suspension lets it in.
    assert!(s.enqueue(d.clone(), entries(4, 1), T0).is_some());
    s.forget_dead();
    assert!(s.enqueue(d.clone(), entries(4, 1), T0).is_none());
    assert_eq!(s.next_delivery().map(|(_, b)| b[0].msg), Some(4));
    assert!(s.done(&d, Feedback::Success, "", T0).is_empty());
    assert_eq!(s.destinations(), 0, "idle destinations are forgotten");
}

#[test]
fn recipient_limit_bounds_what_waits() {
    let mut s: Scheduler<E> = Scheduler::new(SchedulerParams {
        recipient_limit: 10,
        ..SchedulerParams::default()
    });
    assert!(s.enqueue(smtp("a"), entries(1, 6), T0).is_none());
    let refused = s.enqueue(smtp("b"), entries(2, 6), T0).unwrap();
    assert_eq!(refused.why, Refusal::Full);
    assert_eq!(
        refused.entries.iter().map(|e| e.rcpt).collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(s.queued(), 10);
    // Entries in flight no longer count against the bound.
    let _ = s.next_delivery();
    assert_eq!(s.queued(), 4);
    assert!(s.enqueue(smtp("c"), entries(3, 6), T0).is_none());
}

#[derive(Clone, Debug)]
enum Op {
    Enqueue { dest: u8, msg: u32, n: u32 },
    Next,
    Done { which: usize, ok: bool },
    Advance(u64),
    Forget,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4, 0u32..6, 1u32..8).prop_map(|(dest, msg, n)| Op::Enqueue { dest, msg, n }),
        3 => Just(Op::Next),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(which, ok)| Op::Done { which, ok }),
        1 => (0u64..400).prop_map(Op::Advance),
        1 => Just(Op::Forget),
    ]
}

fn dest_of(i: u8) -> Destination {
    match i {
        0 => smtp("a"),
        1 => smtp("b"),
        2 => Destination::new("relay", "r"),
        _ => Destination::new("local", "l"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every entry handed in comes out exactly once (started, refused, or
    /// given back by a dying destination); batches hold one message within
    /// the recipient limit; nothing starts past a window; the bound holds.
    #[test]
    fn conservation_and_limits(
        ops in proptest::collection::vec(op(), 0..150),
        rcpt_limit in 1u32..5,
        bound in 5usize..40,
    ) {
        let mut transports = TransportTable::new(TransportParams {
            recipient_limit: rcpt_limit,
            ..TransportParams::default()
        });
        transports.insert("local", TransportParams {
            window: WindowParams { limit: 2, ..WindowParams::default() },
            recipient_limit: 1,
            process_limit: 100,
        });
        let mut s: Scheduler<E> = Scheduler::new(SchedulerParams {
            transports,
            recipient_limit: bound,
            suspend: Duration::from_secs(300),
        });
        let mut now = T0;
        let mut next_rcpt = 0u32;
        let mut handed_in = Vec::new();
        let mut out = Vec::new();
        let mut in_flight: Vec<Destination> = Vec::new();
        for op in ops {
            match op {
                Op::Enqueue { dest, msg, n } => {
                    let es: Vec<E> = (0..n).map(|i| E { msg, rcpt: next_rcpt + i }).collect();
                    next_rcpt += n;
                    handed_in.extend(es.iter().cloned());
                    if let Some(r) = s.enqueue(dest_of(dest), es, now) {
                        prop_assert!(!r.entries.is_empty());
                        out.extend(r.entries);
                    }
                }
                Op::Next => {
                    if let Some((d, batch)) = s.next_delivery() {
                        prop_assert!(!batch.is_empty());
                        prop_assert!(batch.iter().all(|e| e.msg == batch[0].msg));
                        let limit = if d.transport == "local" { 1 } else { rcpt_limit };
                        prop_assert!(batch.len() <= limit as usize);
                        let window = s.concurrency(&d).unwrap_or(0);
                        prop_assert!(s.busy(&d) <= window, "busy {} window {}", s.busy(&d), window);
                        out.extend(batch);
                        in_flight.push(d);
                    }
                }
                Op::Done { which, ok } => {
                    if !in_flight.is_empty() {
                        let d = in_flight.swap_remove(which % in_flight.len());
                        let fb = if ok { Feedback::Success } else { Feedback::Failure };
                        let dropped = s.done(&d, fb, "boom", now);
                        if !dropped.is_empty() {
                            prop_assert!(s.suspended(&d).is_some());
                        }
                        out.extend(dropped);
                    }
                }
                Op::Advance(secs) => now += secs * S,
                Op::Forget => s.forget_dead(),
            }
            prop_assert!(s.queued() <= bound);
            prop_assert_eq!(handed_in.len(), out.len() + s.queued());
        }
        // Drain: finish everything in flight successfully, then start and
        // finish the rest.
        for d in in_flight.drain(..) {
            out.extend(s.done(&d, Feedback::Success, "", now));
        }
        s.forget_dead();
        while let Some((d, batch)) = s.next_delivery() {
            out.extend(batch);
            out.extend(s.done(&d, Feedback::Success, "", now));
        }
        prop_assert_eq!(s.queued(), 0);
        prop_assert_eq!(s.destinations(), 0);
        handed_in.sort();
        out.sort();
        prop_assert_eq!(handed_in, out);
    }

    /// With windows never the constraint, destinations with work are
    /// served in strict rotation: between two turns of one destination,
    /// every other destination that still has work gets one.
    #[test]
    fn round_robin_fairness(work in proptest::collection::vec(1u32..6, 1..6)) {
        let mut s = scheduler(WindowParams { initial: 100, limit: 0, ..WindowParams::default() }, 50);
        for (i, &n) in work.iter().enumerate() {
            for m in 0..n {
                prop_assert!(s.enqueue(smtp(&i.to_string()), entries(m, 1), T0).is_none());
            }
        }
        let order: Vec<usize> = std::iter::from_fn(|| s.next_delivery())
            .map(|(d, _)| d.nexthop.parse().unwrap())
            .collect();
        let mut left = work.clone();
        let mut pos = 0;
        while left.iter().any(|&n| n > 0) {
            for (i, n) in left.iter_mut().enumerate() {
                if *n > 0 {
                    prop_assert_eq!(order[pos], i);
                    pos += 1;
                    *n -= 1;
                }
            }
        }
        prop_assert_eq!(pos, order.len());
    }
}
