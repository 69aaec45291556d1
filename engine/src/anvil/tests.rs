use super::*;
use proptest::prelude::*;

const UNIT: Duration = Duration::from_secs(60);

fn key(last: u8) -> ClientKey {
    ClientKey {
        service: "smtp".to_string(),
        addr: IpAddr::from([127, 0, 0, last]),
    }
}

#[test]
fn counts_connections_and_their_rate() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 100);
    let k = key(5);
    assert_eq!(a.connect(&k, t0), ConnectCounts { count: 1, rate: 1 });
    assert_eq!(a.connect(&k, t0), ConnectCounts { count: 2, rate: 2 });
    a.disconnect(&k, t0);
    assert_eq!(a.connect(&k, t0), ConnectCounts { count: 2, rate: 3 });
    // Other services and clients are other entries.
    let other = ClientKey {
        service: "submission".to_string(),
        ..k.clone()
    };
    assert_eq!(a.connect(&other, t0), ConnectCounts { count: 1, rate: 1 });
    assert_eq!(a.connect(&key(6), t0).count, 1);
}

#[test]
fn the_window_is_fixed_and_starts_with_the_first_event() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 100);
    let k = key(5);
    // An open connection keeps the entry (an idle one is forgotten one
    // unit after it went idle, whatever its rates).
    a.connect(&k, t0);
    assert_eq!(a.event(&k, Event::Message, t0 + Duration::from_secs(30)), 1);
    assert_eq!(a.event(&k, Event::Message, t0 + Duration::from_secs(59)), 2);
    // At exactly start + unit the window still holds (anvil.c: start +
    // unit < now); one tick later everything restarts.
    assert_eq!(a.event(&k, Event::Message, t0 + UNIT), 3);
    let later = t0 + UNIT + Duration::from_millis(1);
    assert_eq!(a.connect(&k, later), ConnectCounts { count: 2, rate: 1 });
    assert_eq!(a.event(&k, Event::Message, later), 1);
    assert_eq!(a.event(&k, Event::Recipient, later), 1);
    assert_eq!(a.event(&k, Event::Recipient, later), 2);
    assert_eq!(a.event(&k, Event::NewTls, later), 1);
}

#[test]
fn the_count_survives_a_new_window() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 100);
    let k = key(5);
    a.connect(&k, t0);
    a.connect(&k, t0);
    let c = a.connect(&k, t0 + UNIT * 2);
    assert_eq!(c, ConnectCounts { count: 3, rate: 1 });
}

#[test]
fn idle_clients_are_forgotten_after_the_time_unit() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 100);
    let (busy, idle, mail_only) = (key(1), key(2), key(3));
    a.connect(&busy, t0);
    a.connect(&idle, t0);
    a.disconnect(&idle, t0 + Duration::from_secs(10));
    a.event(&mail_only, Event::Message, t0 + Duration::from_secs(10));
    assert_eq!(a.len(), 3);
    // Still remembered just before the unit has passed since it went idle.
    a.disconnect(&key(9), t0 + Duration::from_secs(69));
    assert_eq!(a.len(), 3);
    a.disconnect(&key(9), t0 + Duration::from_secs(131));
    assert_eq!(a.len(), 1, "only the client with an open connection stays");
    assert_eq!(a.count(&busy), 1);
}

#[test]
fn the_table_is_capped() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 3);
    for i in 0..3 {
        a.connect(&key(i), t0);
        a.disconnect(&key(i), t0 + Duration::from_secs(u64::from(i)));
    }
    // Full of idle entries: the longest idle (key 0) makes room.
    assert_eq!(a.connect(&key(10), t0 + Duration::from_secs(5)).count, 1);
    assert_eq!(a.len(), 3);
    assert_eq!(a.count(&key(10)), 1);
    // Full of live connections: a newcomer is not tracked.
    let mut b = Anvil::new(UNIT, 2);
    b.connect(&key(1), t0);
    b.connect(&key(2), t0);
    assert_eq!(b.connect(&key(3), t0), ConnectCounts { count: 1, rate: 1 });
    assert_eq!(b.event(&key(3), Event::Message, t0), 1);
    assert_eq!(b.len(), 2);
    b.disconnect(&key(3), t0);
    assert_eq!((b.count(&key(1)), b.count(&key(2))), (1, 1));
}

#[test]
fn disconnect_without_connect_changes_nothing() {
    let t0 = Instant::now();
    let mut a = Anvil::new(UNIT, 100);
    a.disconnect(&key(1), t0);
    assert!(a.is_empty());
    a.connect(&key(1), t0);
    a.disconnect(&key(1), t0);
    a.disconnect(&key(1), t0);
    assert_eq!(a.count(&key(1)), 0);
    assert_eq!(a.connect(&key(1), t0).count, 1);
}

#[test]
fn routing_is_stable_and_spreads() {
    let v4: IpAddr = "127.0.0.5".parse().unwrap();
    let mapped: IpAddr = "::ffff:127.0.0.5".parse().unwrap();
    assert_eq!(shard_for_client(v4, 4), shard_for_client(mapped, 4));
    assert_eq!(shard_for_client(v4, 1), 0);
    let spread: std::collections::HashSet<usize> = (0..64u8)
        .map(|i| shard_for_client(IpAddr::from([10, 0, 0, i]), 4))
        .collect();
    assert_eq!(spread.len(), 4);
}

#[derive(Clone, Debug)]
enum Op {
    Connect(u8),
    Disconnect(u8),
    Event(u8),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4u8).prop_map(Op::Connect),
        (0..4u8).prop_map(Op::Disconnect),
        (0..4u8).prop_map(Op::Event),
        (0..90u16).prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Conservation: for every client, connects minus disconnects of
    /// open connections is the count anvil reports; the rate never
    /// exceeds the connects since the window began; the table stays
    /// within its cap and keeps every client with an open connection.
    #[test]
    fn conservation(ops in proptest::collection::vec(op(), 0..200)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut a = Anvil::new(UNIT, 8);
        let mut open = [0u32; 4];
        // Every connect's time, per client: a window is at most one unit
        // long, so the rate never exceeds the connects of the last unit.
        let mut connects: [Vec<Instant>; 4] = Default::default();
        for op in ops {
            match op {
                Op::Connect(i) => {
                    let c = a.connect(&key(i), now);
                    open[i as usize] += 1;
                    connects[i as usize].push(now);
                    let recent = connects[i as usize]
                        .iter()
                        .filter(|t| **t + UNIT >= now)
                        .count() as u32;
                    prop_assert_eq!(c.count, open[i as usize]);
                    prop_assert!(c.rate >= 1);
                    prop_assert!(c.rate <= recent, "rate {} > {} recent connects", c.rate, recent);
                }
                Op::Disconnect(i) => {
                    if open[i as usize] > 0 {
                        open[i as usize] -= 1;
                    }
                    a.disconnect(&key(i), now);
                }
                Op::Event(i) => {
                    prop_assert!(a.event(&key(i), Event::Message, now) >= 1);
                }
                Op::Wait(s) => now += Duration::from_secs(u64::from(s)),
            }
            for i in 0..4u8 {
                prop_assert_eq!(a.count(&key(i)), open[i as usize]);
            }
            prop_assert!(a.len() <= 8);
        }
    }
}
