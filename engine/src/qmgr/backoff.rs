//! *When* a message is tried again: Postfix's retry schedule as pure
//! functions of the message's arrival time and the current time (STYLE.md,
//! "When apart from where").
//!
//! - After an attempt that leaves recipients deferred, the next attempt is
//!   `now + clamp(now - arrival, minimal_backoff_time,
//!   maximal_backoff_time)`: the wait doubles with the message's age, from
//!   5 minutes up to 4000 s (qmgr_active.c). Postfix writes this as the
//!   queue file's mtime and a deferred-queue scan (every `queue_run_delay`)
//!   picks the file up once it has passed; Sluice's scheduler may use a
//!   timer instead, which is never later.
//! - A message is **expired** when an attempt ends at or after arrival +
//!   `maximal_queue_lifetime` (`bounce_queue_lifetime` for null-sender
//!   mail); its deferred recipients are then returned
//!   (`status=expired, returned to sender`). A lifetime of 0 means one try.
//! - A **delay warning** is due at the first attempt at or after arrival +
//!   `delay_warning_time` (0 = never), once per message.
//!
//! All times are microseconds since the epoch, as in the queue log.

use std::time::Duration;

use crate::config::{ConfigError, MainCf};

/// The parameters of the retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffParams {
    /// minimal_backoff_time (300s). Also how long a dead destination stays
    /// suspended.
    pub minimal_backoff: Duration,
    /// maximal_backoff_time (4000s).
    pub maximal_backoff: Duration,
    /// queue_run_delay (300s): how often deferred mail is scanned for.
    pub queue_run_delay: Duration,
    /// maximal_queue_lifetime (5d).
    pub maximal_queue_lifetime: Duration,
    /// bounce_queue_lifetime (5d), for mail from the null sender; never
    /// more than maximal_queue_lifetime.
    pub bounce_queue_lifetime: Duration,
    /// delay_warning_time (0h = no warnings).
    pub delay_warning_time: Duration,
}

impl Default for BackoffParams {
    /// Postfix's defaults.
    fn default() -> Self {
        BackoffParams {
            minimal_backoff: Duration::from_secs(300),
            maximal_backoff: Duration::from_secs(4000),
            queue_run_delay: Duration::from_secs(300),
            maximal_queue_lifetime: Duration::from_secs(5 * 86_400),
            bounce_queue_lifetime: Duration::from_secs(5 * 86_400),
            delay_warning_time: Duration::ZERO,
        }
    }
}

/// Postfix's lower bound for minimal_backoff_time, maximal_backoff_time
/// and queue_run_delay.
const MIN_TIME: Duration = Duration::from_secs(1);

impl BackoffParams {
    /// Reads the parameters. Like Postfix's qmgr, a bounce_queue_lifetime
    /// above maximal_queue_lifetime is lowered to it, with a warning
    /// (returned for the caller to log).
    pub fn from_config(main: &MainCf) -> Result<(BackoffParams, Vec<String>), ConfigError> {
        let at_least_1s = |name: &str| -> Result<Duration, ConfigError> {
            let t = main.get_time(name)?;
            if t < MIN_TIME {
                let problem = format!("invalid {name}: {}s (min 1s)", t.as_secs());
                return Err(main.bad_value(name, &problem));
            }
            Ok(t)
        };
        let mut p = BackoffParams {
            minimal_backoff: at_least_1s("minimal_backoff_time")?,
            maximal_backoff: at_least_1s("maximal_backoff_time")?,
            queue_run_delay: at_least_1s("queue_run_delay")?,
            maximal_queue_lifetime: main.get_time("maximal_queue_lifetime")?,
            bounce_queue_lifetime: main.get_time("bounce_queue_lifetime")?,
            delay_warning_time: main.get_time("delay_warning_time")?,
        };
        let mut warnings = Vec::new();
        if p.bounce_queue_lifetime > p.maximal_queue_lifetime {
            warnings.push(
                "bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime"
                    .to_string(),
            );
            p.bounce_queue_lifetime = p.maximal_queue_lifetime;
        }
        Ok((p, warnings))
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// When to try again after an attempt at `now_us` left recipients
/// deferred: `now + clamp(now - arrival, min, max)`, computed as Postfix
/// does (upper bound first, then lower, so min wins if max < min) and never
/// sooner than one second.
pub fn next_attempt_us(arrival_us: u64, now_us: u64, p: &BackoffParams) -> u64 {
    let mut delay = now_us.saturating_sub(arrival_us);
    delay = delay.min(us(p.maximal_backoff));
    delay = delay.max(us(p.minimal_backoff)).max(us(MIN_TIME));
    now_us.saturating_add(delay)
}

/// Whether an attempt ending at `now_us` is past the message's lifetime,
/// so that its deferred recipients are returned instead.
pub fn is_expired(arrival_us: u64, now_us: u64, p: &BackoffParams, null_sender: bool) -> bool {
    let lifetime = if null_sender {
        p.bounce_queue_lifetime
    } else {
        p.maximal_queue_lifetime
    };
    now_us >= arrival_us.saturating_add(us(lifetime))
}

/// Whether a delay warning is due at an attempt at `now_us`. The caller
/// checks [`is_expired`] first (an expired message is returned, not
/// warned about) and records that the warning went out.
pub fn delay_warning_due(
    arrival_us: u64,
    now_us: u64,
    p: &BackoffParams,
    already_sent: bool,
) -> bool {
    !already_sent
        && !p.delay_warning_time.is_zero()
        && now_us >= arrival_us.saturating_add(us(p.delay_warning_time))
}

/// A bound on [`schedule`]'s length, against parameters that would make it
/// enormous (a 1 s backoff over a year's lifetime).
pub const SCHEDULE_MAX_ATTEMPTS: usize = 100_000;

/// Every attempt a message that is never delivered gets, from its first
/// (at arrival) to the one after which it expires, assuming attempts take
/// no time and start exactly when due. For tests and `postconf`-style
/// explanations.
pub fn schedule(arrival_us: u64, p: &BackoffParams) -> Vec<u64> {
    schedule_for(arrival_us, p, false)
}

/// [`schedule`] for a message from the null sender or not.
pub fn schedule_for(arrival_us: u64, p: &BackoffParams, null_sender: bool) -> Vec<u64> {
    let mut attempts = vec![arrival_us];
    let mut now = arrival_us;
    while !is_expired(arrival_us, now, p, null_sender) && attempts.len() < SCHEDULE_MAX_ATTEMPTS {
        now = next_attempt_us(arrival_us, now, p);
        attempts.push(now);
    }
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000 * S;

    fn secs(schedule: &[u64]) -> Vec<u64> {
        schedule.iter().map(|t| (t - T0) / S).collect()
    }

    #[test]
    fn default_schedule() {
        let s = schedule(T0, &BackoffParams::default());
        let s = secs(&s);
        // The wait doubles (300, 300, 600, 1200, 2400) until it reaches
        // 4000 s, then stays there.
        assert_eq!(&s[..8], [0, 300, 600, 1200, 2400, 4800, 8800, 12800]);
        // The last attempt is the first one at or past 5 days; the one
        // before it is still inside the lifetime.
        let last = *s.last().unwrap();
        let before = s[s.len() - 2];
        assert!(before < 5 * 86_400 && last >= 5 * 86_400, "{before} {last}");
        assert_eq!(last, 432_800);
        assert_eq!(s.len(), 113);
    }

    #[test]
    fn zero_lifetime_means_one_try() {
        let p = BackoffParams {
            bounce_queue_lifetime: Duration::ZERO,
            ..BackoffParams::default()
        };
        assert_eq!(schedule_for(T0, &p, true), [T0]);
        assert!(schedule_for(T0, &p, false).len() > 1);
        assert!(is_expired(T0, T0, &p, true));
        assert!(!is_expired(T0, T0, &p, false));
    }

    #[test]
    fn short_lifetime_schedule() {
        let p = BackoffParams {
            minimal_backoff: Duration::from_secs(60),
            maximal_backoff: Duration::from_secs(600),
            maximal_queue_lifetime: Duration::from_secs(3600),
            ..BackoffParams::default()
        };
        assert_eq!(
            secs(&schedule(T0, &p)),
            [0, 60, 120, 240, 480, 960, 1560, 2160, 2760, 3360, 3960]
        );
    }

    #[test]
    fn max_below_min_uses_min() {
        let p = BackoffParams {
            minimal_backoff: Duration::from_secs(600),
            maximal_backoff: Duration::from_secs(60),
            ..BackoffParams::default()
        };
        assert_eq!(next_attempt_us(T0, T0 + 10_000 * S, &p), T0 + 10_600 * S);
    }

    #[test]
    fn clock_before_arrival_is_not_a_panic() {
        let p = BackoffParams::default();
        assert_eq!(next_attempt_us(T0, T0 - 50 * S, &p), T0 + 250 * S);
    }

    #[test]
    fn delay_warnings() {
        let p = BackoffParams {
            delay_warning_time: Duration::from_secs(4 * 3600),
            ..BackoffParams::default()
        };
        let due: Vec<u64> = schedule(T0, &p)
            .into_iter()
            .filter(|&t| delay_warning_due(T0, t, &p, false))
            .collect();
        // The first attempt at or after 4 h: 0, 300, …, 12800, 16800.
        assert_eq!((due[0] - T0) / S, 16_800);
        assert!(!delay_warning_due(T0, due[0], &p, true));
        assert!(!delay_warning_due(
            T0,
            T0 + 1000 * 86_400 * S,
            &BackoffParams::default(),
            false
        ));
    }

    #[test]
    fn from_config_reads_and_adjusts() {
        let (main, _) = MainCf::parse(
            concat!(
                "minimal_backoff_time = 10m\n",
                "maximal_backoff_time = 2h\n",
                "maximal_queue_lifetime = 1\n",
                "bounce_queue_lifetime = 2d\n",
                "delay_warning_time = 4\n",
            ),
            std::path::Path::new("/etc/sluice/main.cf"),
        )
        .unwrap();
        let (p, warnings) = BackoffParams::from_config(&main).unwrap();
        assert_eq!(p.minimal_backoff, Duration::from_secs(600));
        assert_eq!(p.maximal_backoff, Duration::from_secs(7200));
        assert_eq!(p.maximal_queue_lifetime, Duration::from_secs(86_400));
        assert_eq!(p.bounce_queue_lifetime, Duration::from_secs(86_400));
        assert_eq!(p.delay_warning_time, Duration::from_secs(4 * 3600));
        assert_eq!(p.queue_run_delay, Duration::from_secs(300));
        assert_eq!(
            warnings,
            ["bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime"]
        );

        let (main, _) =
            MainCf::parse("minimal_backoff_time = 0\n", std::path::Path::new("/m")).unwrap();
        let err = BackoffParams::from_config(&main).unwrap_err().to_string();
        assert!(
            err.starts_with("/m:1: invalid minimal_backoff_time"),
            "{err}"
        );
        let (main, _) = MainCf::parse("", std::path::Path::new("/m")).unwrap();
        assert_eq!(
            BackoffParams::from_config(&main).unwrap(),
            (BackoffParams::default(), vec![])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Schedules start at arrival, strictly increase, wait between min
        /// and max (min wins), and end with the first attempt past the
        /// lifetime.
        #[test]
        fn schedule_shape(
            min_s in 1u64..2000,
            max_s in 1u64..8000,
            life_s in 0u64..(3 * 86_400),
        ) {
            let p = BackoffParams {
                minimal_backoff: Duration::from_secs(min_s),
                maximal_backoff: Duration::from_secs(max_s),
                maximal_queue_lifetime: Duration::from_secs(life_s),
                ..BackoffParams::default()
            };
            let s = schedule(T0, &p);
            prop_assert_eq!(s[0], T0);
            for pair in s.windows(2) {
                let wait = (pair[1] - pair[0]) / S;
                prop_assert!(wait >= min_s);
                prop_assert!(wait <= max_s.max(min_s));
                prop_assert!(wait >= ((pair[0] - T0) / S).min(max_s));
            }
            let last = *s.last().unwrap();
            prop_assert!(is_expired(T0, last, &p, false));
            for &t in &s[..s.len() - 1] {
                prop_assert!(!is_expired(T0, t, &p, false));
            }
        }
    }
}
