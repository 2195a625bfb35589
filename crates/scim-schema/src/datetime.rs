//! `dateTime` values (RFC 7643 section 2.3.5): an `xsd:dateTime`, e.g. `2008-01-23T04:56:22Z`.
//!
//! Parsed to an instant so that filters compare chronologically (RFC 7644 section 3.4.2.2:
//! "For dateTime, chronological ordering") whatever the offset or the fraction digits:
//! `2011-05-13T04:42:34Z` and `2011-05-13T06:42:34.000+02:00` are the same instant.
//! A value with no time-zone is taken as UTC (xsd leaves it "local"; a server has no other
//! sensible local time), and `24:00:00` is the first instant of the next day, as xsd says.

use std::fmt;

/// An instant: whole seconds since 1970-01-01T00:00:00Z and nanoseconds within that second.
/// Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Seconds since the Unix epoch (negative before 1970).
    pub unix_seconds: i64,
    /// Nanoseconds, 0 to 999,999,999.
    pub nanos: u32,
}

impl DateTime {
    /// Parses an `xsd:dateTime`; `None` if `s` is not one.
    pub fn parse(s: &str) -> Option<DateTime> {
        let b = s.as_bytes();
        let mut i = 0;
        let negative = b.first() == Some(&b'-');
        if negative {
            i += 1;
        }
        // Year: at least four digits.
        let year_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - year_start < 4 || i - year_start > 9 {
            return None;
        }
        let mut year: i64 = s[year_start..i].parse().ok()?;
        if negative {
            year = -year;
        }
        let month = two_digits(b, i + 1).filter(|_| b.get(i) == Some(&b'-'))?;
        let day = two_digits(b, i + 4).filter(|_| b.get(i + 3) == Some(&b'-'))?;
        i += 6;
        if !matches!(b.get(i), Some(b'T' | b't')) {
            return None;
        }
        let hour = two_digits(b, i + 1)?;
        let minute = two_digits(b, i + 4).filter(|_| b.get(i + 3) == Some(&b':'))?;
        let second = two_digits(b, i + 7).filter(|_| b.get(i + 6) == Some(&b':'))?;
        i += 9;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - frac_start < 9 {
                    nanos = nanos * 10 + u32::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - frac_start;
            if digits == 0 {
                return None;
            }
            for _ in digits..9 {
                nanos *= 10;
            }
        }
        let offset_seconds: i64 = match b.get(i) {
            None => 0,
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let oh = two_digits(b, i + 1)?;
                let om = two_digits(b, i + 4)?;
                if oh > 14 || om > 59 {
                    return None;
                }
                let off = i64::from(oh * 3600 + om * 60);
                if sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let end_of_day = hour == 24 && minute == 0 && second == 0 && nanos == 0;
        if (hour > 23 && !end_of_day) || minute > 59 || second > 60 {
            return None;
        }
        // A leap second (…:60) is the last instant of its minute's 59th second.
        let (second, nanos) = if second == 60 {
            (59, 999_999_999)
        } else {
            (second, nanos)
        };
        let days = days_from_civil(year, month, day);
        let unix_seconds =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
                - offset_seconds;
        Some(DateTime {
            unix_seconds,
            nanos,
        })
    }
}

fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    match (b.get(at), b.get(at + 1)) {
        (Some(h @ b'0'..=b'9'), Some(l @ b'0'..=b'9')) => {
            Some(u32::from(h - b'0') * 10 + u32::from(l - b'0'))
        }
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats as RFC 3339 UTC with millisecond precision when there is a fraction
/// (e.g. `2011-05-13T04:42:34Z`, `2011-05-13T04:42:34.250Z`), the form servers emit in `meta`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_seconds.div_euclid(86_400);
        let secs = self.unix_seconds.rem_euclid(86_400);
        // Inverse of days_from_civil.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )?;
        if self.nanos != 0 {
            write!(f, ".{:03}", self.nanos / 1_000_000)?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_instants_and_compares_chronologically() {
        let a = DateTime::parse("2011-05-13T04:42:34Z").unwrap();
        let b = DateTime::parse("2011-05-13T06:42:34.000+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.unix_seconds, 1_305_261_754);
        assert!(DateTime::parse("2011-05-13T04:42:34.5Z").unwrap() > a);
        assert_eq!(
            DateTime::parse("1970-01-01T00:00:00").unwrap().unix_seconds,
            0
        );
        assert_eq!(
            DateTime::parse("1999-12-31T24:00:00Z").unwrap(),
            DateTime::parse("2000-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            DateTime::parse("1969-12-31T23:59:59Z")
                .unwrap()
                .unix_seconds,
            -1
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "2011-05-13",
            "2011-13-01T00:00:00Z",
            "2011-02-29T00:00:00Z",
            "2011-05-13T04:42Z",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+0200",
            "2011-05-13 04:42:34Z",
            "2011-05-13T04:42:34Zjunk",
            "2011-05-13T25:00:00Z",
        ] {
            assert_eq!(DateTime::parse(bad), None, "{bad}");
        }
        assert!(DateTime::parse("2012-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn displays_rfc3339_utc() {
        let d = DateTime::parse("2011-05-13T06:42:34.250+02:00").unwrap();
        assert_eq!(d.to_string(), "2011-05-13T04:42:34.250Z");
    }

    proptest! {
        #[test]
        fn display_parses_back(secs in -62_000_000_000i64..250_000_000_000i64, ms in 0u32..1000) {
            let d = DateTime { unix_seconds: secs, nanos: ms * 1_000_000 };
            prop_assert_eq!(DateTime::parse(&d.to_string()), Some(d));
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = DateTime::parse(&s);
        }
    }
}
