//! One destination's concurrency window, with Postfix's feedback rules
//! (qmgr_queue.c: `qmgr_queue_unthrottle` / `qmgr_queue_throttle`).
//!
//! - A new destination starts at `initial_destination_concurrency` (5),
//!   capped by the limit.
//! - **Positive feedback** (a delivery that reached the server): `success
//!   += g(N)`; every whole unit raises the window N by one, capped at
//!   `<transport>_destination_concurrency_limit` (20; 0 = no cap), and only
//!   while N < busy + initial, so that the window stays within reach of the
//!   concurrency actually used.
//! - **Negative feedback** (connect or handshake failure): `fail_cohorts
//!   += 1/N`; at `failed_cohort_limit` (1; 0 = never) the destination is
//!   dead. Otherwise `failure -= g(N)`, and every unit below zero lowers N by
//!   one, to a minimum of 1.
//! - A dead destination comes back (a delivery still in flight succeeds,
//!   the suspension ends, or `postqueue -f` / trigger F forgets it) at the
//!   number of deliveries still in flight, or at the initial concurrency
//!   when there are none.
//!
//! g(N) is a constant (`1`, `1/4`) or a constant over the window
//! (`1/concurrency`, `2/concurrency`): [`ConcurrencyFeedback`]. Postfix
//! keeps the hysteresis at 1 and the arithmetic in doubles; so does this.
//!
//! Pure: no clock, no I/O. The caller says how many deliveries are in
//! flight (`busy`, counting the one reporting, as Postfix does).

/// g(N): how much one delivery's feedback moves the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConcurrencyFeedback {
    /// `1`, `0.5`, `1/8`: the same amount at every window size.
    Constant(f64),
    /// `1/concurrency`, `3/concurrency`: the amount divided by the window.
    PerConcurrency(f64),
}

impl ConcurrencyFeedback {
    /// Parses main.cf's forms: `n`, `n/m`, `n/concurrency` (Postfix's
    /// `sscanf("%lf %1[/] %30s")`). The value must be between 0 and 1;
    /// Postfix warns and uses 1 otherwise, which is what the caller does
    /// with the error.
    pub fn parse(value: &str) -> Result<ConcurrencyFeedback, String> {
        let bad = || format!("ignoring malformed or unreasonable feedback: {value}");
        let v = value.trim();
        let (num, denom) = match v.split_once('/') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (v, None),
        };
        let num: f64 = num.parse().map_err(|_| bad())?;
        let fb = match denom {
            None => ConcurrencyFeedback::Constant(num),
            Some("concurrency") => ConcurrencyFeedback::PerConcurrency(num),
            Some(d) => {
                let d: f64 = d.parse().map_err(|_| bad())?;
                if !(d >= 1.0 / i32::MAX as f64 && d <= i32::MAX as f64) {
                    return Err(bad());
                }
                ConcurrencyFeedback::Constant(num / d)
            }
        };
        let base = match fb {
            ConcurrencyFeedback::Constant(b) | ConcurrencyFeedback::PerConcurrency(b) => b,
        };
        if (0.0..=1.0).contains(&base) {
            Ok(fb)
        } else {
            Err(bad())
        }
    }

    /// g(N) at window `n` (≥ 1).
    pub fn value(&self, n: u32) -> f64 {
        match *self {
            ConcurrencyFeedback::Constant(b) => b,
            ConcurrencyFeedback::PerConcurrency(b) => b / f64::from(n.max(1)),
        }
    }
}

/// The feedback parameters of one transport.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowParams {
    /// initial_destination_concurrency (5).
    pub initial: u32,
    /// `<transport>_destination_concurrency_limit` (20; 0 = no limit).
    pub limit: u32,
    /// `<transport>_destination_concurrency_positive_feedback` (1).
    pub positive: ConcurrencyFeedback,
    /// `<transport>_destination_concurrency_negative_feedback` (1).
    pub negative: ConcurrencyFeedback,
    /// `<transport>_destination_concurrency_failed_cohort_limit` (1; 0 =
    /// never declare the destination dead).
    pub failed_cohort_limit: u32,
}

impl Default for WindowParams {
    /// Postfix's defaults.
    fn default() -> Self {
        WindowParams {
            initial: 5,
            limit: 20,
            positive: ConcurrencyFeedback::Constant(1.0),
            negative: ConcurrencyFeedback::Constant(1.0),
            failed_cohort_limit: 1,
        }
    }
}

impl WindowParams {
    /// The starting window: the initial concurrency, capped by the limit
    /// and at least 1 (qmgr_transport.c).
    pub fn start(&self) -> u32 {
        let init = if self.limit == 0 {
            self.initial
        } else {
            self.initial.min(self.limit)
        };
        init.max(1)
    }
}

/// One destination's window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    params: WindowParams,
    /// N; meaningless while dead.
    window: u32,
    dead: bool,
    success: f64,
    failure: f64,
    fail_cohorts: f64,
}

impl Window {
    pub fn new(params: WindowParams) -> Window {
        Window {
            window: params.start(),
            params,
            dead: false,
            success: 0.0,
            failure: 0.0,
            fail_cohorts: 0.0,
        }
    }

    /// The concurrency allowed now: N, or 0 while dead.
    pub fn concurrency(&self) -> u32 {
        if self.dead {
            0
        } else {
            self.window
        }
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn params(&self) -> &WindowParams {
        &self.params
    }

    /// Whether one more delivery may start with `busy` in flight.
    pub fn may_start(&self, busy: u32) -> bool {
        !self.dead && busy < self.window
    }

    /// Positive feedback. `busy` counts deliveries in flight, the one
    /// reporting included. Brings a dead destination back.
    pub fn on_success(&mut self, busy: u32) {
        // Restart the negative cycle only here, at a positive adjustment
        // (Postfix: otherwise negative feedback would be too aggressive).
        self.fail_cohorts = 0.0;
        if self.dead {
            self.revive(busy);
            return;
        }
        let limit = self.params.limit;
        if (limit == 0 || limit > self.window)
            && u64::from(self.window) < u64::from(busy) + u64::from(self.params.start())
        {
            let feedback = self.params.positive.value(self.window);
            self.success += feedback;
            // Prepare for overshoot (feedback > hysteresis, rounding error).
            while self.success + feedback / 2.0 >= 1.0 {
                self.window = self.window.saturating_add(1);
                self.success -= 1.0;
                self.failure = 0.0;
            }
            if limit > 0 && self.window > limit {
                self.window = limit;
            }
        }
    }

    /// Negative feedback. Returns true when this failure made the
    /// destination dead (the caller suspends it and defers its queue); a
    /// failure reported while already dead changes nothing.
    #[must_use]
    pub fn on_failure(&mut self) -> bool {
        if self.dead {
            return false;
        }
        self.fail_cohorts += 1.0 / f64::from(self.window.max(1));
        let limit = self.params.failed_cohort_limit;
        if limit > 0 && self.fail_cohorts >= f64::from(limit) {
            self.dead = true;
            return true;
        }
        let feedback = self.params.negative.value(self.window);
        self.failure -= feedback;
        // Even at 1 the cycle goes on, so that negative feedback can cancel
        // positive feedback.
        let mut n = i64::from(self.window);
        while self.failure - feedback / 2.0 < 0.0 {
            n -= 1;
            self.success = 0.0;
            self.failure += 1.0;
        }
        self.window = u32::try_from(n.max(1)).unwrap_or(1);
        false
    }

    /// Ends a suspension (timer, trigger F): N = `busy` deliveries still
    /// in flight, or the initial concurrency when none ("back from the
    /// almost grave, best concurrency is anyone's guess").
    pub fn revive(&mut self, busy: u32) {
        self.fail_cohorts = 0.0;
        if !self.dead {
            return;
        }
        self.dead = false;
        self.window = if busy > 0 { busy } else { self.params.start() };
        self.success = 0.0;
        self.failure = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(positive: &str, negative: &str, cohorts: u32) -> WindowParams {
        WindowParams {
            positive: ConcurrencyFeedback::parse(positive).unwrap(),
            negative: ConcurrencyFeedback::parse(negative).unwrap(),
            failed_cohort_limit: cohorts,
            ..WindowParams::default()
        }
    }

    #[test]
    fn feedback_forms() {
        use ConcurrencyFeedback::*;
        let ok = [
            ("1", Constant(1.0)),
            ("0", Constant(0.0)),
            ("0.25", Constant(0.25)),
            ("1/8", Constant(0.125)),
            (" 1 / 4 ", Constant(0.25)),
            ("1/concurrency", PerConcurrency(1.0)),
            ("0.5/concurrency", PerConcurrency(0.5)),
        ];
        for (text, want) in ok {
            assert_eq!(ConcurrencyFeedback::parse(text), Ok(want), "{text}");
        }
        for bad in ["", "2", "-1", "1/0", "x", "1/fish", "3/2", "2/concurrency"] {
            assert_eq!(
                ConcurrencyFeedback::parse(bad),
                Err(format!(
                    "ignoring malformed or unreasonable feedback: {bad}"
                )),
                "{bad}"
            );
        }
        assert_eq!(PerConcurrency(1.0).value(4), 0.25);
    }

    #[test]
    fn starts_at_initial_capped_by_limit() {
        assert_eq!(Window::new(WindowParams::default()).concurrency(), 5);
        let capped = WindowParams {
            limit: 2,
            ..WindowParams::default()
        };
        assert_eq!(Window::new(capped).concurrency(), 2);
        let unlimited = WindowParams {
            limit: 0,
            ..WindowParams::default()
        };
        assert_eq!(Window::new(unlimited).concurrency(), 5);
    }

    /// The window climbs by one per success while busy deliveries keep up,
    /// stops at busy + initial, and never passes the limit.
    #[test]
    fn positive_feedback_sequence() {
        let mut w = Window::new(WindowParams::default());
        let mut seen = Vec::new();
        for _ in 0..20 {
            let busy = w.concurrency(); // saturated destination
            w.on_success(busy);
            seen.push(w.concurrency());
        }
        assert_eq!(
            seen,
            [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 20, 20, 20, 20, 20]
        );

        // With one delivery in flight the window stops at 1 + 5.
        let mut w = Window::new(WindowParams::default());
        for _ in 0..10 {
            w.on_success(1);
        }
        assert_eq!(w.concurrency(), 6);
    }

    #[test]
    fn per_concurrency_positive_feedback_is_gentler() {
        let mut w = Window::new(params("1/concurrency", "1", 0));
        let mut seen = Vec::new();
        for _ in 0..20 {
            let busy = w.concurrency();
            w.on_success(busy);
            seen.push(w.concurrency());
        }
        // 5 successes at N=5 (each 0.2; the fifth crosses 1 - 0.1), 6 at 6…
        assert_eq!(
            seen,
            [5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8]
        );
    }

    /// With the cohort rule off, each failure lowers the window by one,
    /// never below 1; the first step of the negative cycle overshoots by
    /// one (Postfix's `while (failure - feedback / 2 < 0)` starting from a
    /// failure count of 0).
    #[test]
    fn negative_feedback_sequence() {
        let mut w = Window::new(params("1", "1", 0));
        let mut seen = Vec::new();
        for _ in 0..7 {
            assert!(!w.on_failure());
            seen.push(w.concurrency());
        }
        assert_eq!(seen, [3, 2, 1, 1, 1, 1, 1]);

        // 1/concurrency: the cycle starts with a step, then needs a whole
        // unit (0.25 + 0.25 + 0.25 + …) for the next one.
        let mut w = Window::new(params("1", "1/concurrency", 0));
        let seen: Vec<u32> = (0..5)
            .map(|_| {
                let _ = w.on_failure();
                w.concurrency()
            })
            .collect();
        assert_eq!(seen, [4, 4, 4, 3, 3]);
        assert!(!w.is_dead());
    }

    /// Default cohort limit 1: failures worth 1/N each; at window 5 the
    /// fifth failure in a row kills the destination.
    #[test]
    fn failed_cohort_rule() {
        let mut w = Window::new(params("1", "1/concurrency", 1));
        let mut deaths = Vec::new();
        for _ in 0..5 {
            deaths.push(w.on_failure());
        }
        assert_eq!(deaths, [false, false, false, false, true]);
        assert!(w.is_dead());
        assert_eq!(w.concurrency(), 0);
        assert!(!w.may_start(0));
        assert!(!w.on_failure(), "already dead: not a new death");

        // Negative feedback 1: window 5 → 3 → 2, cohorts 1/5 + 1/3 + 1/2
        // ≥ 1 at the third failure.
        let mut w = Window::new(WindowParams::default());
        let deaths: Vec<bool> = (0..3).map(|_| w.on_failure()).collect();
        assert_eq!(deaths, [false, false, true]);

        // A single-connection destination dies at the first failure.
        let mut w = Window::new(WindowParams {
            initial: 1,
            ..WindowParams::default()
        });
        assert!(w.on_failure());
    }

    #[test]
    fn success_resets_the_cohort_count() {
        let mut w = Window::new(params("0", "0", 1));
        for _ in 0..4 {
            assert!(!w.on_failure());
            w.on_success(1);
        }
        assert!(!w.is_dead());
    }

    #[test]
    fn revival() {
        let mut w = Window::new(WindowParams::default());
        while !w.on_failure() {}
        w.on_success(3); // a delivery still in flight got through
        assert_eq!(w.concurrency(), 3);

        while !w.on_failure() {}
        w.revive(0);
        assert_eq!(w.concurrency(), 5);
        assert!(w.may_start(4) && !w.may_start(5));
    }

    #[derive(Clone, Debug)]
    enum Event {
        Success(u32),
        Failure,
        Revive(u32),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u32..40).prop_map(Event::Success),
            Just(Event::Failure),
            (0u32..40).prop_map(Event::Revive),
        ]
    }

    fn feedback() -> impl Strategy<Value = ConcurrencyFeedback> {
        prop_oneof![
            (0.0f64..=1.0).prop_map(ConcurrencyFeedback::Constant),
            (0.0f64..=1.0).prop_map(ConcurrencyFeedback::PerConcurrency),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the feedback sequence: alive means 1 ≤ N ≤ limit; from
        /// a live state a success raises N by at most one and a failure
        /// lowers it by at most two (the first step of a negative cycle
        /// can overshoot, as in Postfix); only a failure kills.
        #[test]
        fn window_invariants(
            initial in 1u32..10,
            limit in 0u32..30,
            positive in feedback(),
            negative in feedback(),
            cohorts in 0u32..3,
            events in proptest::collection::vec(event(), 0..200),
        ) {
            let p = WindowParams { initial, limit, positive, negative, failed_cohort_limit: cohorts };
            let mut w = Window::new(p);
            let cap = if limit == 0 { u32::MAX } else { limit };
            for e in events {
                let before = w.clone();
                match e {
                    Event::Success(busy) => w.on_success(busy),
                    Event::Failure => {
                        let died = w.on_failure();
                        prop_assert_eq!(died, !before.is_dead() && w.is_dead());
                        if cohorts == 0 { prop_assert!(!w.is_dead()); }
                    }
                    Event::Revive(busy) => w.revive(busy),
                }
                if !matches!(e, Event::Failure) {
                    prop_assert!(!w.is_dead());
                }
                if !w.is_dead() {
                    let n = w.concurrency();
                    prop_assert!(n >= 1);
                    let was = before.concurrency();
                    if !before.is_dead() {
                        prop_assert!(n <= cap.max(was));
                        match e {
                            Event::Success(_) => prop_assert!(n >= was && n <= was + 1),
                            Event::Failure => prop_assert!(n <= was && n + 2 >= was),
                            Event::Revive(_) => prop_assert_eq!(n, was),
                        }
                    }
                }
            }
        }
    }
}
