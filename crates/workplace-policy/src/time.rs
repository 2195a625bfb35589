//! Time as this crate sees it: instants are plain Unix seconds ([`Timestamp`]), durations are
//! seconds, and calendar questions ("how many days ahead", "which ISO week") are answered in the
//! tenant's fixed UTC offset.
//!
//! Whole seconds, not [`scim_schema::DateTime`]: bookings are made by the minute, an `i64` is
//! `Copy`, orders and subtracts without ceremony, and serialises as a JSON number; a SCIM
//! `dateTime` (RFC 7643 section 2.3.5) converts with [`from_datetime`], dropping the fraction.
//! The crate never reads a clock: `now` is always a parameter, so every decision can be replayed.
//!
//! Every operation on timestamps saturates instead of overflowing, so that absurd input (a
//! booking in the year 292 billion) gives an absurd answer, never a panic.

use scim_schema::DateTime;
use std::fmt;

/// An instant: whole seconds since 1970-01-01T00:00:00Z (negative before).
pub type Timestamp = i64;

/// A duration in seconds.
pub type Seconds = i64;

/// Seconds in a day (no leap seconds, as in Unix time).
pub const SECONDS_PER_DAY: Seconds = 86_400;

/// The largest UTC offset accepted, ±18:00, the bound `java.time` and ISO 8601 profiles use (no
/// zone in use exceeds ±14:00).
pub const MAX_UTC_OFFSET: i32 = 18 * 3600;

/// A SCIM `dateTime` (RFC 7643 section 2.3.5) as a [`Timestamp`], truncating any fraction of a
/// second.
pub fn from_datetime(instant: DateTime) -> Timestamp {
    instant.unix_seconds
}

/// A [`Timestamp`] as a SCIM `dateTime` (RFC 7643 section 2.3.5), e.g. for display.
pub fn to_datetime(instant: Timestamp) -> DateTime {
    DateTime {
        unix_seconds: instant,
        nanos: 0,
    }
}

/// The local calendar day of `instant` at `utc_offset` seconds east of UTC, counted in days since
/// 1970-01-01.
pub fn local_day(instant: Timestamp, utc_offset: i32) -> i64 {
    instant
        .saturating_add(i64::from(utc_offset))
        .div_euclid(SECONDS_PER_DAY)
}

/// A number that is equal for two instants exactly when they fall in the same ISO 8601 week
/// (Monday to Sunday) at `utc_offset`. Cheaper than [`iso_week`] when only equality matters.
pub fn week_index(instant: Timestamp, utc_offset: i32) -> i64 {
    // 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
    local_day(instant, utc_offset)
        .saturating_add(3)
        .div_euclid(7)
}

/// An ISO 8601 week date's year and week number, e.g. `2025-W01` (which starts on 2024-12-30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    /// The ISO week-numbering year (the year of the week's Thursday).
    pub year: i64,
    /// The week number, 1 to 53.
    pub week: u32,
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// The ISO 8601 week `instant` falls in at `utc_offset` seconds east of UTC.
pub fn iso_week(instant: Timestamp, utc_offset: i32) -> IsoWeek {
    let day = local_day(instant, utc_offset);
    let monday_based = day.saturating_add(3).rem_euclid(7);
    // The ISO year of a week is the year of its Thursday.
    let thursday = day.saturating_sub(monday_based).saturating_add(3);
    let (year, _, _) = civil_from_days(thursday);
    let first_of_year = days_from_civil(year, 1, 1);
    let week = thursday.saturating_sub(first_of_year) / 7 + 1;
    IsoWeek {
        year,
        week: u32::try_from(week).unwrap_or(0),
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Clamp far outside any calendar a booking could use, so the arithmetic cannot overflow.
    let z = days.clamp(-100_000_000_000, 100_000_000_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> Timestamp {
        from_datetime(DateTime::parse(s).unwrap())
    }

    #[test]
    fn iso_weeks_follow_iso_8601() {
        // 2024-12-30 (Monday) starts 2025-W01; 2021-01-03 (Sunday) is in 2020-W53.
        assert_eq!(
            iso_week(at("2024-12-30T00:00:00Z"), 0).to_string(),
            "2025-W01"
        );
        assert_eq!(
            iso_week(at("2021-01-03T12:00:00Z"), 0).to_string(),
            "2020-W53"
        );
        assert_eq!(
            iso_week(at("2025-06-18T09:00:00Z"), 0).to_string(),
            "2025-W25"
        );
        // Sunday 23:30 UTC is already Monday in Paris (+01:00) but not in New York.
        let sunday_late = at("2025-01-05T23:30:00Z");
        assert_eq!(iso_week(sunday_late, 3600).to_string(), "2025-W02");
        assert_eq!(iso_week(sunday_late, -5 * 3600).to_string(), "2025-W01");
    }

    #[test]
    fn local_days_use_the_offset() {
        let t = at("2025-03-01T22:00:00Z");
        assert_eq!(local_day(t, 0) + 1, local_day(t, 3 * 3600));
        assert_eq!(local_day(t, -3 * 3600), local_day(t, 0));
    }

    proptest! {
        #[test]
        fn week_index_agrees_with_iso_week(a in -4_000_000_000i64..8_000_000_000, delta in 0i64..2_000_000, offset in -MAX_UTC_OFFSET..=MAX_UTC_OFFSET) {
            let b = a + delta;
            prop_assert_eq!(
                week_index(a, offset) == week_index(b, offset),
                iso_week(a, offset) == iso_week(b, offset)
            );
        }

        #[test]
        fn never_panics(t in any::<i64>(), offset in any::<i32>()) {
            let _ = iso_week(t, offset);
            let _ = week_index(t, offset);
        }
    }
}
