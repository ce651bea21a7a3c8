//! Times as the tools show them: local time the way the Python tools print
//! `start_time`, and ISO-8601 UTC for `--json`.
//!
//! Calendar and time-zone arithmetic is jiff's, which reads `TZ` and the
//! system's zone files as the C library does (an unknown zone is UTC, as
//! there). What is ours is the rounding: Python's, so that both tools agree
//! on every second.

use std::fmt::Write as _;
use std::sync::OnceLock;

use jiff::civil::{DateTime, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The whole second that Python shows for a Unix time.
///
/// Python's `datetime.fromtimestamp` first rounds the fraction to whole
/// microseconds, half to even, and then drops it; so `1.9999996` is shown
/// as second 2, not 1. We round the same way so both tools agree on every
/// second. `None` for NaN, infinities and times too far away to matter.
fn whole_seconds(unix_secs: f64) -> Option<i64> {
    // Comfortably past year 9999 either way, and far inside i64.
    const LIMIT: f64 = 1e13;
    if !unix_secs.is_finite() || unix_secs.abs() > LIMIT {
        return None;
    }
    let int = unix_secs.trunc();
    let micros = ((unix_secs - int) * 1e6).round_ties_even();
    let secs = if micros >= 1e6 {
        int + 1.0
    } else if micros < 0.0 {
        int - 1.0
    } else {
        int
    };
    // In range and integral, so the conversion is exact.
    Some(secs as i64)
}

/// The wall-clock time `secs` seconds after 1970-01-01T00:00:00, or `None`
/// outside the years jiff's calendar spans (-9999 to 9999).
fn civil(secs: i64) -> Option<DateTime> {
    date(1970, 1, 1)
        .at(0, 0, 0, 0)
        .checked_add(SignedDuration::from_secs(secs))
        .ok()
}

/// Formats a Unix time as an ISO-8601 UTC timestamp in whole seconds, such
/// as `2026-11-23T20:21:56Z`, for the JSON output (§12).
///
/// The fraction is dropped the same way as in [`format_local_time`], so the
/// two never disagree about the second. `None` when the time is not finite
/// or falls outside the years 0000–9999 that the format can spell.
pub fn iso8601_utc(unix_secs: f64) -> Option<String> {
    let t = civil(whole_seconds(unix_secs)?)?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The local time zone: `TZ` if set, else the system's; UTC if neither
/// can be read, as the C library does for a zone it does not know.
fn local_zone() -> &'static TimeZone {
    static ZONE: OnceLock<TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| TimeZone::try_system().unwrap_or(TimeZone::UTC))
}

/// Formats a Unix time in local time as `%d/%m/%Y %H:%M:%S`, such as
/// `23/11/2026 20:21:56`, the way the Python tools print `start_time`.
///
/// The year is not zero-padded, as glibc prints it for Python. `None` when
/// the time is not finite or lies outside the years 1–9999, where Python's
/// `datetime` gives up too.
pub fn format_local_time(unix_secs: f64) -> Option<String> {
    let secs = whole_seconds(unix_secs)?;
    // jiff's instants stop a day short of the calendar's ends, so that any
    // offset stays in range; the offset a day before the end is the one at
    // the end.
    let instant = secs.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    let offset = local_zone()
        .to_offset(Timestamp::from_second(instant).ok()?)
        .seconds();
    let t = civil(secs.checked_add(i64::from(offset))?)?;
    if !(1..=9999).contains(&t.year()) {
        return None;
    }
    // By hand rather than with `format!`: `spalloc ps` formats one time per
    // job, and the formatting machinery cost more than the conversion.
    let mut out = String::with_capacity(19);
    let two = |out: &mut String, n: i8| {
        let n = u8::try_from(n.clamp(0, 99)).unwrap_or(0);
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    };
    two(&mut out, t.day());
    out.push('/');
    two(&mut out, t.month());
    out.push('/');
    let _ = write!(out, "{}", t.year());
    out.push(' ');
    two(&mut out, t.hour());
    out.push(':');
    two(&mut out, t.minute());
    out.push(':');
    two(&mut out, t.second());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_in_utc() {
        let cases: &[(f64, &str)] = &[
            (0.0, "1970-01-01T00:00:00Z"),
            (1_795_458_116.0, "2026-11-23T18:21:56Z"),
            (1_795_458_116.75, "2026-11-23T18:21:56Z"),
            (951_782_400.0, "2000-02-29T00:00:00Z"),
            (951_868_799.0, "2000-02-29T23:59:59Z"),
            (951_868_800.0, "2000-03-01T00:00:00Z"),
            (4_107_542_400.0, "2100-03-01T00:00:00Z"),
            (1_709_164_800.0, "2024-02-29T00:00:00Z"),
            (-1.0, "1969-12-31T23:59:59Z"),
            (-0.5, "1969-12-31T23:59:59Z"),
            (-86_400.0, "1969-12-31T00:00:00Z"),
            (-2_208_988_800.25, "1899-12-31T23:59:59Z"),
            (-11_670_912_000.0, "1600-03-01T00:00:00Z"),
            (-11_670_912_001.0, "1600-02-29T23:59:59Z"),
            (1.999_999_6, "1970-01-01T00:00:02Z"),
            (1.999_999_4, "1970-01-01T00:00:01Z"),
            (253_402_300_799.0, "9999-12-31T23:59:59Z"),
            (-62_167_219_200.0, "0000-01-01T00:00:00Z"),
        ];
        for &(t, want) in cases {
            assert_eq!(Some(want.to_owned()), iso8601_utc(t), "time {t}");
        }
        assert_eq!(None, iso8601_utc(253_402_300_800.0));
        assert_eq!(None, iso8601_utc(-62_167_219_201.0));
        assert_eq!(None, iso8601_utc(f64::NAN));
        assert_eq!(None, iso8601_utc(f64::INFINITY));
        assert_eq!(None, iso8601_utc(-1e300));
    }

    #[test]
    fn civil_dates_round_trip_every_day_for_centuries() {
        // Walk day by day from 1600 to 2400 and check the calendar advances
        // exactly as the Gregorian rules say.
        let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: u32| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let start = -135_140; // 1600-01-01
        let (mut y, mut m, mut d) = (1600i64, 1u32, 1u32);
        for days in start..start + 800 * 366 {
            let t = civil(days * 86_400).expect("in range");
            assert_eq!(
                (y, m, d),
                (i64::from(t.year()), t.month() as u32, t.day() as u32),
                "day {days}"
            );
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    /// Which zone a time is shown in depends on `TZ`, which a process reads
    /// once; `tests/cli_views/ps.rs` checks that end to end, running the
    /// binary under several zones. What does not depend on the zone is
    /// checked here.
    #[test]
    fn local_time_of_unshowable_times_is_none() {
        assert_eq!(None, format_local_time(f64::NAN));
        assert_eq!(None, format_local_time(f64::INFINITY));
        assert_eq!(None, format_local_time(f64::NEG_INFINITY));
        assert_eq!(None, format_local_time(1e18));
        assert_eq!(None, format_local_time(-1e18));
    }
}
