//! Parsing Chronos's ISO 8601 repeating intervals `R[n]/[start]/P...` (spec §3.1) into an
//! immutable anchor, a period and a repetition count, rejecting what Chronos wrongly accepted.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use thiserror::Error;

use super::zone::{parse_zone, Zone, ZoneError};

/// Why an ISO 8601 schedule was refused; each variant names the part of the input at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Iso8601Error {
    #[error("schedule '{text}' is not of the form R[n]/[start]/P<period>: {reason}")]
    Shape { text: String, reason: &'static str },
    #[error("repetitions '{part}' are invalid: {reason}")]
    Repetitions { part: String, reason: &'static str },
    #[error("start '{part}' is invalid: {reason}")]
    Start { part: String, reason: String },
    #[error("period '{part}' is invalid: {reason}")]
    Period { part: String, reason: String },
    #[error("period '{part}' has a negative {component} part; periods must move forward")]
    NegativePeriod {
        part: String,
        component: &'static str,
    },
    #[error("period '{part}' is zero, which only makes sense for R0 or R1 (got '{repetitions}')")]
    ZeroPeriod { part: String, repetitions: String },
    #[error("start '{part}' is before 1970-01-01T00:00:01Z")]
    StartBefore1970 { part: String },
    #[error("scheduleTimeZone: {0}")]
    Zone(#[from] ZoneError),
}

/// How many scheduled runs a schedule allows (`R` = unbounded, `Rn` = n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repetitions {
    Infinite,
    Count(u64),
}

/// An ISO 8601 period as written (`PnYnMnWnDTnHnMnS`), all parts non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
    pub millis: u32,
}

impl Period {
    /// Calendar months per step (years and months), applied to the wall-clock date.
    pub fn calendar_months(&self) -> i64 {
        i64::from(self.years) * 12 + i64::from(self.months)
    }
    /// Calendar days per step (weeks and days), applied to the wall-clock date.
    pub fn calendar_days(&self) -> i64 {
        i64::from(self.weeks) * 7 + i64::from(self.days)
    }
    /// Absolute milliseconds per step (hours, minutes, seconds), added to the instant.
    pub fn absolute_millis(&self) -> i64 {
        ((i64::from(self.hours) * 60 + i64::from(self.minutes)) * 60 + i64::from(self.seconds))
            * 1000
            + i64::from(self.millis)
    }
    pub fn is_zero(&self) -> bool {
        self.calendar_months() == 0 && self.calendar_days() == 0 && self.absolute_millis() == 0
    }
}

impl fmt::Display for Period {
    /// Joda's printing: the parts as written, unnormalised (`PT60M` stays `PT60M`), zero = `PT0S`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        for (v, u) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if v != 0 {
                write!(f, "{v}{u}")?;
            }
        }
        if self.hours != 0 || self.minutes != 0 || self.seconds != 0 || self.millis != 0 {
            f.write_str("T")?;
            if self.hours != 0 {
                write!(f, "{}H", self.hours)?;
            }
            if self.minutes != 0 {
                write!(f, "{}M", self.minutes)?;
            }
            if self.millis != 0 {
                write!(f, "{}.{:03}S", self.seconds, self.millis)?;
            } else if self.seconds != 0 {
                write!(f, "{}S", self.seconds)?;
            }
        } else if self.is_zero() {
            f.write_str("T0S")?;
        }
        Ok(())
    }
}

/// A parsed ISO 8601 repeating schedule with its immutable anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iso8601Schedule {
    pub(crate) text: String,
    pub(crate) repetitions: Repetitions,
    /// Wall-clock start in `zone` (Joda `withZoneRetainFields` semantics when a zone is given).
    pub(crate) anchor_wall: NaiveDateTime,
    pub(crate) anchor: DateTime<Utc>,
    pub(crate) zone: Zone,
    pub(crate) period: Period,
}

impl Iso8601Schedule {
    /// Parse `text` with an optional `scheduleTimeZone` (`None` or `""` = not set).
    ///
    /// `now` is only used for an empty start (`R1//PT1H`), which Chronos reads as *now − 1 s*; pass
    /// the job's submission time so that re-parsing the stored text yields the same anchor.
    pub fn parse(
        text: &str,
        time_zone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Iso8601Schedule, Iso8601Error> {
        let shape = |reason| Iso8601Error::Shape {
            text: text.to_string(),
            reason,
        };
        let rest = text
            .strip_prefix('R')
            .ok_or_else(|| shape("must start with 'R'"))?;
        let (reps_part, rest) = rest.split_once('/').ok_or_else(|| shape("missing '/'"))?;
        let (start_part, period_part) = rest
            .rsplit_once('/')
            .ok_or_else(|| shape("missing '/<period>'"))?;
        if !period_part.starts_with('P') {
            return Err(shape("the period must start with 'P'"));
        }
        let repetitions = parse_repetitions(reps_part)?;
        let period = parse_period(period_part)?;
        let reps_text = format!("R{reps_part}");
        let single_shot = matches!(repetitions, Repetitions::Count(0 | 1));
        if period.is_zero() && !single_shot {
            return Err(Iso8601Error::ZeroPeriod {
                part: period_part.to_string(),
                repetitions: reps_text,
            });
        }
        let zone_override = match time_zone {
            Some(name) if !name.is_empty() => Some(parse_zone(name)?),
            _ => None,
        };
        let (anchor_wall, zone) = if start_part.is_empty() {
            let start = now.checked_sub_signed(Duration::seconds(1)).unwrap_or(now);
            let zone = zone_override.unwrap_or(Zone::UTC);
            (zone.wall_clock(start), zone)
        } else {
            let (wall, offset) = parse_start(start_part).map_err(|reason| Iso8601Error::Start {
                part: start_part.to_string(),
                reason,
            })?;
            let zone = match (zone_override, offset) {
                (Some(zone), _) => zone,
                (None, Some(off)) if off.local_minus_utc() == 0 => Zone::UTC,
                (None, Some(off)) => Zone::Fixed(off),
                // Chronos uses the JVM's default zone here; Gantry uses UTC (docs/jobs.md).
                (None, None) => Zone::UTC,
            };
            (wall, zone)
        };
        let anchor = zone
            .resolve(anchor_wall)
            .ok_or_else(|| Iso8601Error::Start {
                part: start_part.to_string(),
                reason: "out of the supported date range".to_string(),
            })?;
        Ok(Iso8601Schedule {
            text: text.to_string(),
            repetitions,
            anchor_wall,
            anchor,
            zone,
            period,
        })
    }

    /// Chronos's create-time rule (spec §3.4 row 22): the start must be ≥ 1970-01-01T00:00:01Z.
    pub fn check_create(&self) -> Result<(), Iso8601Error> {
        let min = DateTime::<Utc>::from_timestamp(1, 0);
        if min.is_some_and(|m| self.anchor < m) {
            return Err(Iso8601Error::StartBefore1970 {
                part: self.text.clone(),
            });
        }
        Ok(())
    }

    /// The text as submitted.
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn repetitions(&self) -> Repetitions {
        self.repetitions
    }
    /// The first occurrence (the anchor) as an instant.
    pub fn anchor(&self) -> DateTime<Utc> {
        self.anchor
    }
    pub fn zone(&self) -> Zone {
        self.zone
    }
    pub fn period(&self) -> Period {
        self.period
    }

    /// The string Chronos shows after a run: `R[n]/<next slot>/<period as Joda prints it>`, with the
    /// start as `yyyy-MM-ddTHH:mm:ss.SSS±hh:mm` (or `Z`) in the schedule's zone.
    pub fn chronos_display(&self, remaining: Repetitions, next: DateTime<Utc>) -> String {
        let reps = match remaining {
            Repetitions::Infinite => "R".to_string(),
            Repetitions::Count(n) => format!("R{n}"),
        };
        let offset = self.zone.offset_seconds(next);
        let local = self.zone.wall_clock(next);
        let off_text = if offset == 0 {
            "Z".to_string()
        } else {
            let sign = if offset < 0 { '-' } else { '+' };
            let a = offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        };
        format!(
            "{reps}/{}{off_text}/{}",
            local.format("%Y-%m-%dT%H:%M:%S%.3f"),
            self.period
        )
    }
}

fn parse_repetitions(part: &str) -> Result<Repetitions, Iso8601Error> {
    if part.is_empty() {
        return Ok(Repetitions::Infinite);
    }
    let err = |reason| Iso8601Error::Repetitions {
        part: format!("R{part}"),
        reason,
    };
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("only digits may follow 'R'"));
    }
    // Chronos stores the count in a signed 64-bit long.
    let n: i64 = part.parse().map_err(|_| err("too large"))?;
    Ok(Repetitions::Count(n.unsigned_abs()))
}

/// A tiny cursor over ASCII input.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            pos: 0,
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }
}

fn number(d: &[u8]) -> Option<u32> {
    std::str::from_utf8(d).ok()?.parse().ok()
}

fn fixed(c: &mut Cursor, n: usize, what: &str) -> Result<u32, String> {
    let start = c.pos;
    while c.pos - start < n && c.peek().is_some_and(|b| b.is_ascii_digit()) {
        c.pos += 1;
    }
    let d = &c.s[start..c.pos];
    if d.len() != n {
        return Err(format!("{what} must have {n} digits"));
    }
    number(d).ok_or_else(|| format!("bad {what}"))
}

/// Joda `DateTime.parse` (ISO, offset parsed): calendar, week and ordinal dates, optional time
/// with a fraction on its last field, optional offset. Returns the wall clock and the offset.
fn parse_start(s: &str) -> Result<(NaiveDateTime, Option<FixedOffset>), String> {
    let mut c = Cursor::new(s);
    c.eat(b'+');
    let year_digits = c.digits();
    if year_digits.len() != 4 {
        return Err(
            "the year must have four digits (basic format like 20080301 is not accepted)"
                .to_string(),
        );
    }
    let year = number(year_digits).ok_or("bad year")? as i32;
    let date = if c.eat(b'-') {
        if c.eat(b'W') {
            let week = fixed(&mut c, 2, "week")?;
            let day = if c.eat(b'-') {
                fixed(&mut c, 1, "weekday")?
            } else {
                1
            };
            let weekday = chrono::Weekday::try_from((day as u8).wrapping_sub(1))
                .map_err(|_| "weekday must be 1-7".to_string())?;
            NaiveDate::from_isoywd_opt(year, week, weekday).ok_or("no such week date")?
        } else {
            let d = c.digits();
            match d.len() {
                3 => {
                    let ordinal = number(d).ok_or("bad day of year")?;
                    NaiveDate::from_yo_opt(year, ordinal).ok_or("no such day of the year")?
                }
                2 => {
                    let month = number(d).ok_or("bad month")?;
                    let day = if c.eat(b'-') {
                        fixed(&mut c, 2, "day")?
                    } else {
                        1
                    };
                    NaiveDate::from_ymd_opt(year, month, day)
                        .ok_or_else(|| format!("no such date {year:04}-{month:02}-{day:02}"))?
                }
                _ => return Err("expected MM, MM-DD, DDD or Www after the year".to_string()),
            }
        }
    } else {
        NaiveDate::from_ymd_opt(year, 1, 1).ok_or("bad year")?
    };
    let mut time = NaiveTime::MIN;
    let mut offset = None;
    if c.eat(b'T') {
        let mut fields = vec![fixed(&mut c, 2, "hour")?];
        while fields.len() < 3 && c.eat(b':') {
            let what = if fields.len() == 1 {
                "minute"
            } else {
                "second"
            };
            fields.push(fixed(&mut c, 2, what)?);
        }
        let mut fraction_nanos: i64 = 0;
        if c.eat(b'.') || c.eat(b',') {
            let d = c.digits();
            if d.is_empty() {
                return Err("empty fraction".to_string());
            }
            let unit_nanos: i64 =
                [3_600_000_000_000, 60_000_000_000, 1_000_000_000][fields.len() - 1];
            // value = 0.d1d2d3... × unit; keep at most 18 digits to stay in range.
            let mut scale: i64 = 1;
            let mut value: i64 = 0;
            for &b in d.iter().take(15) {
                value = value * 10 + i64::from(b - b'0');
                scale *= 10;
            }
            fraction_nanos = (i128::from(value) * i128::from(unit_nanos) / i128::from(scale))
                .try_into()
                .map_err(|_| "bad fraction".to_string())?;
        }
        let (h, m, sec) = (
            fields[0],
            *fields.get(1).unwrap_or(&0),
            *fields.get(2).unwrap_or(&0),
        );
        if h > 23 || m > 59 || sec > 59 {
            return Err(format!("no such time {h:02}:{m:02}:{sec:02}"));
        }
        let base = NaiveTime::from_hms_opt(h, m, sec).ok_or("bad time")?;
        // Joda keeps milliseconds.
        let millis = fraction_nanos / 1_000_000;
        time = base + Duration::milliseconds(millis);
        if time < base {
            return Err("fraction overflows the day".to_string());
        }
        offset = parse_offset(&mut c)?;
    }
    if !c.at_end() {
        return Err(format!("unexpected text at character {}", c.pos + 1));
    }
    Ok((date.and_time(time), offset))
}

fn parse_offset(c: &mut Cursor) -> Result<Option<FixedOffset>, String> {
    if c.eat(b'Z') {
        return Ok(FixedOffset::east_opt(0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Ok(None);
    };
    let h = fixed(c, 2, "offset hour")?;
    let m = if c.eat(b':') || c.peek().is_some_and(|b| b.is_ascii_digit()) {
        fixed(c, 2, "offset minute")?
    } else {
        0
    };
    if h > 23 || m > 59 {
        return Err("offset out of range".to_string());
    }
    let secs = sign * (h as i32 * 3600 + m as i32 * 60);
    Ok(Some(
        FixedOffset::east_opt(secs).ok_or("offset out of range")?,
    ))
}

/// Joda `ISOPeriodFormat.standard()`: `PnYnMnWnDTnHnMnS`, parts optional and in order, a fraction
/// only on seconds, `T` only when a time part follows. Negative parts are parsed, then refused.
pub(crate) fn parse_period(s: &str) -> Result<Period, Iso8601Error> {
    let err = |reason: String| Iso8601Error::Period {
        part: s.to_string(),
        reason,
    };
    let negative = |component| Iso8601Error::NegativePeriod {
        part: s.to_string(),
        component,
    };
    let mut c = Cursor::new(s);
    if !c.eat(b'P') {
        return Err(err("must start with 'P'".to_string()));
    }
    let mut p = Period::default();
    let mut in_time = false;
    let mut seen_time_part = false;
    // Order of designators; each may appear at most once and only after the previous ones.
    let date_units = [b'Y', b'M', b'W', b'D'];
    let time_units = [b'H', b'M', b'S'];
    let mut next_unit = 0usize;
    while !c.at_end() {
        if c.eat(b'T') {
            if in_time {
                return Err(err("'T' appears twice".to_string()));
            }
            in_time = true;
            next_unit = 0;
            continue;
        }
        let neg = c.eat(b'-');
        let d = c.digits();
        if d.is_empty() {
            return Err(err(format!("expected a number at character {}", c.pos + 1)));
        }
        let value = number(d).filter(|v| *v <= i32::MAX as u32).ok_or_else(|| {
            err(format!(
                "number '{}' is too large",
                String::from_utf8_lossy(d)
            ))
        })?;
        let mut millis = 0;
        let has_fraction = c.eat(b'.') || c.eat(b',');
        if has_fraction {
            let f = c.digits();
            if f.is_empty() {
                return Err(err("empty fraction".to_string()));
            }
            let mut ms = 0;
            for i in 0..3 {
                ms = ms * 10 + f.get(i).map_or(0, |b| u32::from(b - b'0'));
            }
            millis = ms;
        }
        let unit = c
            .peek()
            .ok_or_else(|| err("number without a unit at the end".to_string()))?;
        c.pos += 1;
        let units: &[u8] = if in_time { &time_units } else { &date_units };
        let idx = units[next_unit..]
            .iter()
            .position(|u| *u == unit)
            .map(|i| i + next_unit)
            .ok_or_else(|| {
                let hint = if !in_time && matches!(unit, b'H' | b'S') {
                    " (time parts need a 'T' before them)".to_string()
                } else {
                    String::new()
                };
                err(format!("unexpected '{}' here{hint}", unit as char))
            })?;
        next_unit = idx + 1;
        if has_fraction && !(in_time && unit == b'S') {
            return Err(err("only seconds may have a fraction".to_string()));
        }
        let (name, slot): (&'static str, &mut u32) = match (in_time, unit) {
            (false, b'Y') => ("years", &mut p.years),
            (false, b'M') => ("months", &mut p.months),
            (false, b'W') => ("weeks", &mut p.weeks),
            (false, _) => ("days", &mut p.days),
            (true, b'H') => ("hours", &mut p.hours),
            (true, b'M') => ("minutes", &mut p.minutes),
            (true, _) => ("seconds", &mut p.seconds),
        };
        if neg && (value != 0 || millis != 0) {
            return Err(negative(name));
        }
        *slot = value;
        if in_time {
            seen_time_part = true;
            if unit == b'S' {
                p.millis = millis;
            }
        }
    }
    if in_time && !seen_time_part {
        return Err(err(
            "'T' must be followed by hours, minutes or seconds".to_string()
        ));
    }
    Ok(p)
}

/// Calendar helpers shared with occurrence arithmetic.
pub(crate) fn add_months_clamped(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let total = (i64::from(date.year()) * 12 + i64::from(date.month0())).checked_add(months)?;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month0 = total.rem_euclid(12) as u32;
    let last = last_day_of_month(year, month0 + 1)?;
    NaiveDate::from_ymd_opt(year, month0 + 1, date.day().min(last))
}

pub(crate) fn last_day_of_month(year: i32, month: u32) -> Option<u32> {
    let (ny, nm) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    Some(NaiveDate::from_ymd_opt(ny, nm, 1)?.pred_opt()?.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_forms_joda_accepts() {
        for s in [
            "2008-03-01",
            "2008-03-01T13",
            "2008-03-01T13:00",
            "2008-03-01T13:00:00",
            "2008-03-01T13:00:00.5",
            "2008-03-01T13:00:00Z",
            "2008-03-01T13:00:00+05:30",
            "2008-03-01T13:00:00+0100",
            "2008-W09-6T13:00Z",
            "2008-061T13:00Z",
            "+2008-03-01T13:00Z",
        ] {
            assert!(parse_start(s).is_ok(), "{s}");
        }
        assert_eq!(
            parse_start("2008-W09-6T13:00Z").unwrap().0,
            parse_start("2008-061T13:00Z").unwrap().0
        );
        let (wall, off) = parse_start("2008-03-01T13:00:00.5+05:30").unwrap();
        assert_eq!(wall.to_string(), "2008-03-01 13:00:00.500");
        assert_eq!(off.unwrap().local_minus_utc(), 5 * 3600 + 1800);
    }

    #[test]
    fn period_forms() {
        let p = parse_period("P1Y2M3W4DT5H6M7.25S").unwrap();
        assert_eq!((p.years, p.months, p.weeks, p.days), (1, 2, 3, 4));
        assert_eq!((p.hours, p.minutes, p.seconds, p.millis), (5, 6, 7, 250));
        assert!(parse_period("P2W3D").is_ok());
        assert!(parse_period("PT36H").is_ok());
        assert!(parse_period("P").unwrap().is_zero());
        assert!(parse_period("P0D").unwrap().is_zero());
        for bad in [
            "PT", "P1DT", "P1D2H", "P1.5D", "p1d", "P1D ", "P1M1Y", "PXD",
        ] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_period("P-1D"),
            Err(Iso8601Error::NegativePeriod {
                component: "days",
                ..
            })
        ));
    }

    #[test]
    fn months_clamp_to_the_last_day() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        assert_eq!(add_months_clamped(d, 1).unwrap().to_string(), "2024-02-29");
        assert_eq!(add_months_clamped(d, 2).unwrap().to_string(), "2024-03-31");
        assert_eq!(add_months_clamped(d, 13).unwrap().to_string(), "2025-02-28");
        assert_eq!(add_months_clamped(d, -2).unwrap().to_string(), "2023-11-30");
    }
}
