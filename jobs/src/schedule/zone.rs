//! Time zones for schedules: strict IANA lookup (no silent UTC fallback, no three-letter traps) and
//! the one DST rule every schedule uses to turn a wall-clock time into an instant.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use thiserror::Error;

/// Why a `scheduleTimeZone` was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZoneError {
    /// Not an IANA time zone name (Chronos silently used UTC here).
    #[error("unknown time zone '{name}': use an IANA name such as 'Europe/Berlin'{hint}")]
    Unknown { name: String, hint: String },
    /// A legacy three-letter abbreviation whose meaning differs between Java and IANA or between
    /// countries (`BST` is Bangladesh in Java, `PST` has DST in Java).
    #[error("ambiguous time zone abbreviation '{name}': use an IANA name such as '{suggestion}'")]
    Ambiguous { name: String, suggestion: String },
}

/// The zone a schedule is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// An IANA zone with its DST rules.
    Iana(Tz),
    /// A fixed offset written in the schedule's start and no `scheduleTimeZone` (never DST).
    Fixed(FixedOffset),
}

impl Zone {
    /// UTC, the zone of a start written without offset and without `scheduleTimeZone`.
    pub const UTC: Zone = Zone::Iana(Tz::UTC);

    /// The wall-clock time in this zone at instant `t`.
    pub fn wall_clock(&self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Iana(tz) => tz.from_utc_datetime(&t.naive_utc()).naive_local(),
            Zone::Fixed(off) => off.from_utc_datetime(&t.naive_utc()).naive_local(),
        }
    }

    /// UTC offset in seconds at instant `t`.
    pub fn offset_seconds(&self, t: DateTime<Utc>) -> i32 {
        match self {
            Zone::Iana(tz) => tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
            Zone::Fixed(off) => off.local_minus_utc(),
        }
    }

    /// The instant for wall-clock time `wall`, by Gantry's DST rule:
    /// a time that exists once maps to that instant; a time in a fall-back overlap maps to its
    /// *first* (earlier) instant, so it runs once, not twice; a time in a spring-forward gap maps to
    /// the first valid instant after the gap (the transition itself: 02:30 on the day Los Angeles
    /// springs forward runs at 03:00 PDT). Returns `None` only outside chrono's date range.
    pub fn resolve(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let local = match self {
            Zone::Iana(tz) => map_local(tz.from_local_datetime(&wall)),
            Zone::Fixed(off) => map_local(off.from_local_datetime(&wall)),
        };
        match local {
            Some(t) => Some(t),
            None => self.gap_end(wall),
        }
    }

    /// First instant whose wall clock is later than `wall` (which lies in a gap).
    fn gap_end(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Offsets lie within -12h..+14h, so the transition is inside wall±15h read as UTC.
        let as_ms = wall.and_utc().timestamp_millis();
        let mut lo = as_ms.checked_sub(15 * 3_600_000)?;
        let mut hi = as_ms.checked_add(15 * 3_600_000)?;
        // Invariant: wall_clock(lo) <= wall < wall_clock(hi), on whole milliseconds.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let later = DateTime::from_timestamp_millis(mid).map(|t| self.wall_clock(t) > wall)?;
            if later {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let hi = DateTime::from_timestamp_millis(hi)?;
        Some(hi)
    }

    /// The zone's name for display (`UTC`, `Europe/Berlin`, `+05:30`).
    pub fn name(&self) -> String {
        match self {
            Zone::Iana(tz) => tz.name().to_string(),
            Zone::Fixed(off) => off.to_string(),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

fn map_local<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<Utc>> {
    match r {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc))),
        LocalResult::None => None,
    }
}

/// Abbreviations users write and what they most likely meant (the suggestion in the error).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("MST", "America/Denver"),
    ("MDT", "America/Denver"),
    ("CST", "America/Chicago"),
    ("CDT", "America/Chicago"),
    ("EST", "America/New_York"),
    ("EDT", "America/New_York"),
    ("HST", "Pacific/Honolulu"),
    ("AKST", "America/Anchorage"),
    ("BST", "Europe/London"),
    ("IST", "Asia/Kolkata"),
    ("CET", "Europe/Berlin"),
    ("CEST", "Europe/Berlin"),
    ("EET", "Europe/Athens"),
    ("WET", "Europe/Lisbon"),
    ("MET", "Europe/Berlin"),
    ("JST", "Asia/Tokyo"),
    ("KST", "Asia/Seoul"),
    ("AEST", "Australia/Sydney"),
    ("NZST", "Pacific/Auckland"),
];

/// Look up a `scheduleTimeZone` value strictly.
///
/// Accepts IANA names exactly as spelled in the tz database (`America/Los_Angeles`, `UTC`,
/// `Etc/GMT+5`). Rejects unknown names (Chronos: silently UTC) and all-caps abbreviations of three
/// or four letters other than `UTC`/`GMT`/`UCT` (Chronos: `BST` = Bangladesh, `PST` has DST).
pub fn parse_zone(name: &str) -> Result<Zone, ZoneError> {
    const SAFE: &[&str] = &["UTC", "GMT", "UCT"];
    let looks_abbreviation =
        (3..=4).contains(&name.len()) && name.chars().all(|c| c.is_ascii_uppercase());
    if looks_abbreviation && !SAFE.contains(&name) {
        let suggestion = ABBREVIATIONS
            .iter()
            .find(|(abbr, _)| *abbr == name)
            .map(|(_, iana)| (*iana).to_string())
            .unwrap_or_else(|| "Europe/Berlin".to_string());
        return Err(ZoneError::Ambiguous {
            name: name.to_string(),
            suggestion,
        });
    }
    if let Ok(tz) = Tz::from_str(name) {
        return Ok(Zone::Iana(tz));
    }
    let hint = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
        .map(|tz| format!(" (did you mean '{}'?)", tz.name()))
        .unwrap_or_default();
    Err(ZoneError::Unknown {
        name: name.to_string(),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn wall(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn iana_names_are_accepted_and_abbreviations_refused() {
        assert_eq!(
            parse_zone("America/Los_Angeles"),
            Ok(Zone::Iana(Tz::America__Los_Angeles))
        );
        assert_eq!(parse_zone("UTC"), Ok(Zone::Iana(Tz::UTC)));
        assert!(matches!(
            parse_zone("BST"),
            Err(ZoneError::Ambiguous { .. })
        ));
        assert!(matches!(
            parse_zone("EST"),
            Err(ZoneError::Ambiguous { .. })
        ));
        let err = parse_zone("america/los_angeles").unwrap_err();
        assert!(
            err.to_string()
                .contains("did you mean 'America/Los_Angeles'"),
            "{err}"
        );
        assert!(matches!(
            parse_zone("Foo/Bar"),
            Err(ZoneError::Unknown { .. })
        ));
        assert!(matches!(
            parse_zone("+05:30"),
            Err(ZoneError::Unknown { .. })
        ));
    }

    #[test]
    fn gap_maps_to_transition_and_overlap_to_first_instant() {
        let la = Zone::Iana(Tz::America__Los_Angeles);
        // 2016-03-13 02:30 does not exist in LA; the gap ends at 10:00Z (03:00 PDT).
        let t = la.resolve(wall(2016, 3, 13, 2, 30)).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-03-13T10:00:00+00:00");
        // 2016-11-06 01:30 happens twice; the first is 01:30 PDT = 08:30Z.
        let t = la.resolve(wall(2016, 11, 6, 1, 30)).unwrap();
        assert_eq!(t.to_rfc3339(), "2016-11-06T08:30:00+00:00");
        let berlin = Zone::Iana(Tz::Europe__Berlin);
        let t = berlin.resolve(wall(2024, 3, 31, 2, 15)).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-31T01:00:00+00:00");
        let t = berlin.resolve(wall(2024, 10, 27, 2, 15)).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-10-27T00:15:00+00:00");
    }
}
