//! Dates as Postfix writes them.
//!
//! Role: turn a Unix time into the handful of text forms that appear on the
//! wire, in queue listings and in the log:
//!
//! | form | example | Postfix source |
//! |---|---|---|
//! | RFC 5322 `Date:` / `Received:` | `Sat, 28 Nov 2026 18:21:57 +0000 (UTC)` | `mail_date()` (two-digit day, Postfix ≥ 3.9) |
//! | `asctime()` | `Sat Nov 28 18:21:25 2026` | `postqueue -p`, `postcat` |
//! | syslog stamp | `Nov 28 18:21:25` (day space-padded) | `maillog_file` lines |
//! | GMT compact | `20261128182157` | `Message-Id: <YYYYMMDDhhmmss.QID@host>` |
//!
//! Trust and limits: the input is any `i64`; nothing here panics. Times that
//! the C library cannot convert (years beyond `time_t`/`int` range) fall
//! back to UTC arithmetic done here.
//!
//! The local zone comes from the C library (`localtime_r`, `tm_gmtoff`,
//! `tm_zone`), so `TZ` and `/etc/localtime` behave as they do for Postfix.
//! Everything else is pure: [`BrokenDownTime::from_unix`] takes the offset
//! and zone name as arguments, which is what tests (and a simulator) use
//! instead of changing the process-wide `TZ`.

use std::fmt;
use std::sync::Once;

/// Abbreviated day names, Sunday first (`tm_wday` order).
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// Abbreviated month names, January first.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Longest zone abbreviation kept. POSIX `TZNAME_MAX` is commonly 6; glibc
/// accepts longer names from `TZ`, which are cut here rather than
/// allocated for.
const ZONE_MAX_LEN: usize = 15;
const SECS_PER_DAY: i64 = 86_400;

/// A Unix time split into calendar fields in some zone: `struct tm` plus
/// the zone's offset and abbreviation, without the C library's lifetime
/// rules. `Copy` and allocation-free, so a queue listing of 100,000
/// messages can convert each arrival time without touching the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenDownTime {
    /// Full year, e.g. 2026.
    pub year: i64,
    /// 1 = January .. 12 = December.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    /// 0..=60 (60 only for a leap second reported by the C library).
    pub second: u8,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u8,
    /// Seconds east of UTC.
    pub utc_offset_s: i32,
    zone: [u8; ZONE_MAX_LEN],
    zone_len: u8,
}

impl BrokenDownTime {
    /// Splits `unix_secs` for a zone `utc_offset_s` seconds east of UTC
    /// named `zone` (cut to 15 bytes). Pure: no C library, no `TZ`.
    pub fn from_unix(unix_secs: i64, utc_offset_s: i32, zone: &str) -> Self {
        let local = unix_secs.saturating_add(i64::from(utc_offset_s));
        let days = local.div_euclid(SECS_PER_DAY);
        let secs_of_day = local.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday (weekday 4).
        let weekday = (days.rem_euclid(7) + 4) % 7;
        let mut bd = BrokenDownTime {
            year,
            month,
            day,
            // All three are below 60 (or 24) by construction.
            hour: (secs_of_day / 3600) as u8,
            minute: (secs_of_day % 3600 / 60) as u8,
            second: (secs_of_day % 60) as u8,
            weekday: weekday as u8,
            utc_offset_s,
            zone: [0; ZONE_MAX_LEN],
            zone_len: 0,
        };
        bd.set_zone(zone.as_bytes());
        bd
    }

    /// `unix_secs` in UTC, zone name `UTC`.
    pub fn utc(unix_secs: i64) -> Self {
        Self::from_unix(unix_secs, 0, "UTC")
    }

    /// `unix_secs` in the process's local zone, as `localtime_r(3)` sees it
    /// (`TZ`, else `/etc/localtime`). Falls back to [`Self::utc`] when the
    /// C library cannot represent the time.
    pub fn local(unix_secs: i64) -> Self {
        local_from_libc(unix_secs).unwrap_or_else(|| Self::utc(unix_secs))
    }

    /// The zone abbreviation, e.g. `UTC`, `CET`, `EDT`, `+0530`.
    pub fn zone(&self) -> &str {
        let bytes = &self.zone[..usize::from(self.zone_len)];
        // set_zone cuts on a character boundary, so this cannot fail; the
        // fallback keeps the function total anyway.
        std::str::from_utf8(bytes).unwrap_or("")
    }

    /// RFC 5322 date as Postfix's `mail_date()`:
    /// `Sat, 28 Nov 2026 18:21:57 +0000 (UTC)`.
    pub fn rfc2822(&self) -> impl fmt::Display + '_ {
        Rfc2822(self)
    }

    /// `asctime(3)` without the newline: `Sat Nov  8 18:21:25 2026`
    /// (day space-padded to two columns).
    pub fn asctime(&self) -> impl fmt::Display + '_ {
        Asctime(self)
    }

    /// The first 19 characters of `asctime(3)`, `Sat Nov 28 18:21:25`:
    /// the arrival-time column of `postqueue -p`.
    pub fn asctime_no_year(&self) -> impl fmt::Display + '_ {
        AsctimeNoYear(self)
    }

    /// Syslog time stamp, `Nov  8 18:21:25` (strftime `%b %e %H:%M:%S`).
    pub fn syslog_stamp(&self) -> impl fmt::Display + '_ {
        SyslogStamp(self)
    }

    /// `YYYYMMDDhhmmss`, as Postfix puts in a Message-Id (use with
    /// [`Self::utc`]).
    pub fn compact(&self) -> impl fmt::Display + '_ {
        Compact(self)
    }

    fn weekday_name(&self) -> &'static str {
        WEEKDAYS[usize::from(self.weekday % 7)]
    }

    fn month_name(&self) -> &'static str {
        MONTHS[usize::from(self.month.clamp(1, 12) - 1)]
    }

    fn set_zone(&mut self, zone: &[u8]) {
        let mut len = zone.len().min(ZONE_MAX_LEN);
        // Never cut a UTF-8 sequence in half (continuation bytes are
        // 0b10xx_xxxx).
        while len < zone.len() && len > 0 && zone[len] & 0xC0 == 0x80 {
            len -= 1;
        }
        self.zone[..len].copy_from_slice(&zone[..len]);
        self.zone_len = len as u8;
    }
}

/// RFC 5322 date in the local zone, as Postfix's `mail_date()`:
/// `Sat, 28 Nov 2026 18:21:57 +0000 (UTC)`.
pub fn rfc2822_local(unix_secs: i64) -> String {
    BrokenDownTime::local(unix_secs).rfc2822().to_string()
}

/// RFC 5322 date for an explicit zone; the pure twin of [`rfc2822_local`].
pub fn rfc2822_with_offset(unix_secs: i64, utc_offset_s: i32, zone: &str) -> String {
    BrokenDownTime::from_unix(unix_secs, utc_offset_s, zone)
        .rfc2822()
        .to_string()
}

/// `asctime(localtime(t))` without the newline: `Sat Nov 28 18:21:25 2026`.
pub fn asctime_local(unix_secs: i64) -> String {
    BrokenDownTime::local(unix_secs).asctime().to_string()
}

/// `YYYYMMDDhhmmss` in GMT, for `Message-Id: <YYYYMMDDhhmmss.QID@host>`.
pub fn gmt_compact(unix_secs: i64) -> String {
    BrokenDownTime::utc(unix_secs).compact().to_string()
}

/// Syslog stamp in the local zone, `Nov 28 18:21:25` (day space-padded).
pub fn syslog_stamp_local(unix_secs: i64) -> String {
    BrokenDownTime::local(unix_secs).syslog_stamp().to_string()
}

struct Rfc2822<'a>(&'a BrokenDownTime);
struct Asctime<'a>(&'a BrokenDownTime);
struct AsctimeNoYear<'a>(&'a BrokenDownTime);
struct SyslogStamp<'a>(&'a BrokenDownTime);
struct Compact<'a>(&'a BrokenDownTime);

impl fmt::Display for Rfc2822<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let sign = if t.utc_offset_s < 0 { '-' } else { '+' };
        // Whole minutes, as mail_date() computes the offset.
        let offset_min = t.utc_offset_s.unsigned_abs() / 60;
        write!(
            f,
            "{}, {:02} {} {} {:02}:{:02}:{:02} {}{:02}{:02} ({})",
            t.weekday_name(),
            t.day,
            t.month_name(),
            t.year,
            t.hour,
            t.minute,
            t.second,
            sign,
            offset_min / 60,
            offset_min % 60,
            t.zone()
        )
    }
}

impl fmt::Display for AsctimeNoYear<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        // asctime(3): "%.3s %.3s%3d %.2d:%.2d:%.2d %d\n".
        write!(
            f,
            "{} {}{:3} {:02}:{:02}:{:02}",
            t.weekday_name(),
            t.month_name(),
            t.day,
            t.hour,
            t.minute,
            t.second
        )
    }
}

impl fmt::Display for Asctime<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", AsctimeNoYear(self.0), self.0.year)
    }
}

impl fmt::Display for SyslogStamp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{} {:2} {:02}:{:02}:{:02}",
            t.month_name(),
            t.day,
            t.hour,
            t.minute,
            t.second
        )
    }
}

impl fmt::Display for Compact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }
}

/// Year, month (1..=12), day (1..=31) of the proleptic Gregorian calendar
/// for `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of a
    // 400-year era; saturating keeps absurd inputs from overflowing.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe.saturating_add(era.saturating_mul(400)) + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

// The `libc` crate does not declare tzset(3); it is POSIX and in every C
// library we run on.
extern "C" {
    fn tzset();
}

/// `localtime_r` with the zone data loaded once per process by `tzset`
/// (POSIX does not promise that `localtime_r` reads `TZ` itself).
fn local_from_libc(unix_secs: i64) -> Option<BrokenDownTime> {
    static TZSET: Once = Once::new();
    TZSET.call_once(|| {
        // SAFETY: tzset only reads the environment and zone files and
        // updates libc's own globals; Once keeps it to one call here.
        unsafe { tzset() }
    });
    let t = libc::time_t::try_from(unix_secs).ok()?;
    // SAFETY: an all-zero `struct tm` is a valid value (its pointer field
    // `tm_zone` becomes null), and localtime_r writes only into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { libc::localtime_r(&t, &mut tm) };
    if ok.is_null() {
        return None;
    }
    let mut bd = BrokenDownTime {
        year: i64::from(tm.tm_year) + 1900,
        month: u8::try_from(tm.tm_mon + 1).ok()?,
        day: u8::try_from(tm.tm_mday).ok()?,
        hour: u8::try_from(tm.tm_hour).ok()?,
        minute: u8::try_from(tm.tm_min).ok()?,
        second: u8::try_from(tm.tm_sec).ok()?,
        weekday: u8::try_from(tm.tm_wday).ok()?,
        utc_offset_s: i32::try_from(tm.tm_gmtoff).ok()?,
        zone: [0; ZONE_MAX_LEN],
        zone_len: 0,
    };
    if !tm.tm_zone.is_null() {
        // SAFETY: glibc and musl point tm_zone at a NUL-terminated string
        // that lives at least until the next tzset; it is copied at once.
        let zone = unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) };
        let zone = zone.to_bytes();
        // Zone names are ASCII in practice; anything else is dropped
        // rather than printed as bytes we cannot vouch for.
        if zone.is_ascii() {
            bd.set_zone(zone);
        }
    }
    Some(bd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-11-28 18:21:57 UTC, a Saturday.
    const T: i64 = 1_795_890_117;

    #[test]
    fn rfc2822_matches_mail_date() {
        assert_eq!(
            rfc2822_with_offset(T, 0, "UTC"),
            "Sat, 28 Nov 2026 18:21:57 +0000 (UTC)"
        );
        assert_eq!(
            rfc2822_with_offset(T, -5 * 3600, "EST"),
            "Sat, 28 Nov 2026 13:21:57 -0500 (EST)"
        );
        assert_eq!(
            rfc2822_with_offset(T, 5 * 3600 + 1800, "IST"),
            "Sat, 28 Nov 2026 23:51:57 +0530 (IST)"
        );
        // Crossing midnight changes the day and weekday.
        assert_eq!(
            rfc2822_with_offset(T, 13 * 3600 + 45 * 60, "+1345"),
            "Sun, 29 Nov 2026 08:06:57 +1345 (+1345)"
        );
        assert_eq!(
            rfc2822_with_offset(T, -30 * 60, "X"),
            "Sat, 28 Nov 2026 17:51:57 -0030 (X)"
        );
    }

    #[test]
    fn rfc2822_day_is_two_digits() {
        // 2026-11-08 is a Sunday.
        let t = T - 20 * SECS_PER_DAY;
        assert_eq!(
            rfc2822_with_offset(t, 0, "UTC"),
            "Sun, 08 Nov 2026 18:21:57 +0000 (UTC)"
        );
    }

    #[test]
    fn asctime_and_syslog_pad_the_day_with_a_space() {
        let t = BrokenDownTime::utc(T - 20 * SECS_PER_DAY);
        assert_eq!(t.asctime().to_string(), "Sun Nov  8 18:21:57 2026");
        assert_eq!(t.asctime_no_year().to_string(), "Sun Nov  8 18:21:57");
        assert_eq!(t.syslog_stamp().to_string(), "Nov  8 18:21:57");
        let t = BrokenDownTime::utc(T);
        assert_eq!(t.asctime().to_string(), "Sat Nov 28 18:21:57 2026");
        assert_eq!(t.syslog_stamp().to_string(), "Nov 28 18:21:57");
    }

    #[test]
    fn gmt_compact_is_fourteen_digits() {
        assert_eq!(gmt_compact(T), "20261128182157");
        assert_eq!(gmt_compact(0), "19700101000000");
        assert_eq!(gmt_compact(951_782_400), "20000229000000"); // leap day
    }

    #[test]
    fn calendar_edges() {
        let table: &[(i64, &str)] = &[
            (0, "Thu Jan  1 00:00:00 1970"),
            (-1, "Wed Dec 31 23:59:59 1969"),
            (951_868_799, "Tue Feb 29 23:59:59 2000"),
            (4_107_542_400, "Mon Mar  1 00:00:00 2100"), // 2100 is not leap
            (2_147_483_647, "Tue Jan 19 03:14:07 2038"),
            (-2_208_988_800, "Mon Jan  1 00:00:00 1900"),
        ];
        for &(secs, want) in table {
            assert_eq!(BrokenDownTime::utc(secs).asctime().to_string(), want);
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        for secs in [i64::MIN, i64::MAX, i64::MIN / 2, i64::MAX / 2] {
            let _ = BrokenDownTime::utc(secs).rfc2822().to_string();
            let _ = rfc2822_local(secs);
            let _ = asctime_local(secs);
            let _ = syslog_stamp_local(secs);
            let _ = gmt_compact(secs);
        }
    }

    #[test]
    fn zone_names_are_cut_on_a_char_boundary() {
        let t = BrokenDownTime::from_unix(0, 0, "ABCDEFGHIJKLMNOPQRS");
        assert_eq!(t.zone(), "ABCDEFGHIJKLMNO");
        let t = BrokenDownTime::from_unix(0, 0, "ABCDEFGHIJKLMNé");
        assert_eq!(t.zone(), "ABCDEFGHIJKLMN");
    }

    /// The libc path agrees with the pure path for whatever zone this
    /// process runs in: same fields once the reported offset is applied.
    /// (No `TZ` is changed: tests run on parallel threads.)
    #[test]
    fn local_agrees_with_pure_arithmetic() {
        for secs in [0, T, T - 20 * SECS_PER_DAY, 1_700_000_000, 2_000_000_000] {
            let local = BrokenDownTime::local(secs);
            let pure = BrokenDownTime::from_unix(secs, local.utc_offset_s, local.zone());
            assert_eq!(local, pure, "at {secs}");
            assert_eq!(asctime_local(secs), pure.asctime().to_string());
            assert_eq!(syslog_stamp_local(secs), pure.syslog_stamp().to_string());
            assert_eq!(rfc2822_local(secs), pure.rfc2822().to_string());
        }
    }

    /// Set by [`local_zone_in_a_child_process`] for its child.
    const CHILD_ENV: &str = "SLUICE_DATETIME_TZ_CHILD";

    /// A real zone through the C library. `TZ` is process-wide and tests
    /// run on parallel threads, so this re-runs the test binary with `TZ`
    /// set (a POSIX rule, so no zone files are needed) and only
    /// [`zone_child`] doing work there.
    #[test]
    fn local_zone_in_a_child_process() {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let out = std::process::Command::new(exe)
            .args(["--exact", "datetime::tests::zone_child", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("TZ", "EST5EDT,M3.2.0,M11.1.0")
            .output();
        let Ok(out) = out else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}");
        assert!(stdout.contains("1 passed"), "child did not run: {stdout}");
    }

    #[test]
    fn zone_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        assert_eq!(rfc2822_local(T), "Sat, 28 Nov 2026 13:21:57 -0500 (EST)");
        assert_eq!(asctime_local(T), "Sat Nov 28 13:21:57 2026");
        assert_eq!(syslog_stamp_local(T), "Nov 28 13:21:57");
        // Summer time: 2026-07-04 12:00:00 UTC.
        assert_eq!(
            rfc2822_local(1_783_166_400),
            "Sat, 04 Jul 2026 08:00:00 -0400 (EDT)"
        );
        // GMT stays GMT.
        assert_eq!(gmt_compact(T), "20261128182157");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Pure arithmetic matches the C library's gmtime_r over +/- 10,000
        /// years.
        #[test]
        fn utc_matches_gmtime_r(secs in -315_000_000_000i64..315_000_000_000i64) {
            let t = secs as libc::time_t;
            // SAFETY: zeroed tm is valid; gmtime_r writes only into it.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::gmtime_r(&t, &mut tm) };
            prop_assume!(!ok.is_null());
            let bd = BrokenDownTime::utc(secs);
            prop_assert_eq!(bd.year, i64::from(tm.tm_year) + 1900);
            prop_assert_eq!(i32::from(bd.month), tm.tm_mon + 1);
            prop_assert_eq!(i32::from(bd.day), tm.tm_mday);
            prop_assert_eq!(i32::from(bd.hour), tm.tm_hour);
            prop_assert_eq!(i32::from(bd.minute), tm.tm_min);
            prop_assert_eq!(i32::from(bd.second), tm.tm_sec);
            prop_assert_eq!(i32::from(bd.weekday), tm.tm_wday);
        }

        #[test]
        fn rfc2822_shape(secs in 0i64..4_102_444_800, off in -86_399i32..86_399) {
            let s = rfc2822_with_offset(secs, off, "Z");
            // "Www, dd Mmm yyyy hh:mm:ss +hhmm (Z)"
            prop_assert_eq!(s.len(), 35);
            prop_assert_eq!(&s[3..5], ", ");
        }
    }
}
