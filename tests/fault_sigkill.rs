//! Fault suite: SIGKILL at random moments under continuous load, 20 rounds,
//! for injection and for relay. The clients never stop sending before the
//! kill, so it lands while transactions are in flight; each round restarts
//! the daemon at once (the restart time is measured and printed). Checks:
//! no acknowledged message is lost (each is queued, intact, or delivered),
//! and duplicate deliveries stay within the deliveries that can be in
//! flight at each kill.

mod common;
use common::load::{intact, token_of, Load};
use common::*;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const CLIENTS: usize = 8;
const SHARDS: usize = 2;

/// xorshift64*: enough randomness for kill times.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("seed {s}");
        Rng(s)
    }
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }
}

/// One round: load, a kill at a random moment while it runs, an immediate
/// restart. Returns what the clients saw and how long the restart took.
fn round(inst: &mut Instance, rng: &mut Rng, tag: &str) -> (common::load::Outcome, Duration) {
    let load = Load::start(inst.addr(), CLIENTS, tag);
    let started = Instant::now();
    let at = Duration::from_millis(300 + rng.next(900));
    while started.elapsed() < at || load.acks() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{tag}: no load"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Instant::now();
    inst.kill();
    inst.start();
    let restart = killed.elapsed();
    (load.finish(), restart)
}

fn summary(name: &str, restarts: &mut [Duration], in_flight: &[usize]) {
    restarts.sort();
    eprintln!(
        "{name}: {} rounds; restart after SIGKILL min {:?} median {:?} max {:?}; \
         transactions in flight at the kills: {in_flight:?}",
        restarts.len(),
        restarts[0],
        restarts[restarts.len() / 2],
        restarts[restarts.len() - 1]
    );
    let mid_flight = in_flight.iter().filter(|&&n| n > 0).count();
    assert!(
        mid_flight * 4 >= in_flight.len() * 3,
        "the kill landed mid-flight in only {mid_flight} of {} rounds",
        in_flight.len()
    );
}

#[test]
fn sigkill_under_injection_loses_no_acknowledged_message() {
    let mut rng = Rng::new();
    let mut inst = Instance::new("kill-inject", "");
    inst.start();
    let (mut acked, mut restarts, mut in_flight) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        let (out, restart) = round(&mut inst, &mut rng, &format!("inj{r}"));
        restarts.push(restart);
        in_flight.push(out.unanswered.len());
        acked.extend(out.acked.into_iter().zip(out.acked_qids));
        // The restarted daemon lists every message acknowledged so far.
        let listed: HashSet<String> = inst
            .queue_json()
            .iter()
            .filter_map(|l| json_str(l, "queue_id"))
            .collect();
        let lost: Vec<_> = acked.iter().filter(|(_, q)| !listed.contains(q)).collect();
        assert!(
            lost.is_empty(),
            "round {r}: acknowledged and lost: {lost:?}"
        );
    }
    assert!(inst.stop().success());
    let queue = read_queue(&inst.queue_dir());
    let by_qid: HashMap<&str, &Vec<u8>> =
        queue.iter().map(|(q, _, _, c)| (q.as_str(), c)).collect();
    for (token, qid) in &acked {
        let content = by_qid[qid.as_str()];
        assert!(intact(token, content), "{qid} ({token}): content differs");
    }
    let mut tokens: HashMap<String, usize> = HashMap::new();
    for (qid, _, _, c) in &queue {
        let t = token_of(c).unwrap_or_else(|| panic!("{qid}: half-written message queued"));
        assert!(intact(&t, c), "{qid} ({t}): content differs");
        *tokens.entry(t).or_default() += 1;
    }
    let dups: Vec<_> = tokens.iter().filter(|(_, &n)| n > 1).collect();
    assert!(dups.is_empty(), "queued twice: {dups:?}");
    eprintln!(
        "injection: {} acknowledged, all queued intact; {} unacknowledged kept",
        acked.len(),
        queue.len() - acked.len()
    );
    summary("injection", &mut restarts, &in_flight);
}

#[test]
fn sigkill_while_relaying_loses_nothing_and_duplicates_stay_bounded() {
    const CONCURRENCY: usize = 10;
    let sink = start_sink(|c| {
        c.keep_received = 1_000_000;
        // A little latency at the next hop keeps deliveries in flight.
        c.delay = Duration::from_millis(5);
    });
    let extra = format!(
        "{}default_destination_concurrency_limit = {CONCURRENCY}\n",
        relay_to(sink.addr().port())
    );
    let mut rng = Rng::new();
    let mut inst = Instance::new("kill-relay", &extra);
    inst.start();
    let (mut acked, mut restarts, mut in_flight) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        let (out, restart) = round(&mut inst, &mut rng, &format!("rel{r}"));
        restarts.push(restart);
        in_flight.push(out.unanswered.len());
        acked.extend(out.acked);
    }
    let counts = || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for m in sink.received() {
            let t = token_of(&m.content).expect("a delivered message without its token");
            assert!(intact(&t, &m.content), "{t}: delivered content differs");
            *counts.entry(t).or_default() += 1;
        }
        counts
    };
    let all_there = wait_until(Duration::from_secs(90), || {
        let c = counts();
        acked.iter().all(|t| c.contains_key(t))
    });
    let counts = counts();
    let lost: Vec<_> = acked.iter().filter(|t| !counts.contains_key(*t)).collect();
    assert!(
        all_there,
        "{} acknowledged messages never delivered, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(inst.stop().success());
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    let bound = ROUNDS * CONCURRENCY * SHARDS;
    eprintln!(
        "relay: {} acknowledged, all delivered; {} deliveries, {duplicates} duplicates (bound {bound})",
        acked.len(),
        counts.values().sum::<usize>()
    );
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
    summary("relay", &mut restarts, &in_flight);
}
