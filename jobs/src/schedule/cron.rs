//! Cron schedules in Metronome's dialect (5 fields plus an optional year, day-of-week 0–7 with
//! Sunday = 0 or 7, day-of-month AND day-of-week), evaluated on wall clocks in an IANA zone.

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use thiserror::Error;

use super::iso8601::last_day_of_month;
use super::zone::{parse_zone, Zone, ZoneError};

/// Why a cron expression was refused; names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CronError {
    #[error("cron '{expr}' must have 5 fields (minute hour day-of-month month day-of-week) and an optional year; it has {count}")]
    FieldCount { expr: String, count: usize },
    #[error("cron field {field} '{value}' is invalid: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cron '{expr}' can never fire: no month in it has day {day}")]
    ImpossibleDate { expr: String, day: u32 },
    #[error("timezone: {0}")]
    Zone(#[from] ZoneError),
}

const FIELD_NAMES: [&str; 6] = [
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];

/// A parsed cron schedule and its zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    inner: cron::Schedule,
    zone: Zone,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.zone == other.zone
    }
}

/// Give up looking for a slot after this many candidate wall-clock times (DST skips only a few).
const MAX_CANDIDATES: usize = 10_000;

impl CronSchedule {
    /// Parse `expr` in `time_zone` (`None` or `""` = UTC, Metronome's default).
    pub fn parse(expr: &str, time_zone: Option<&str>) -> Result<CronSchedule, CronError> {
        let zone = match time_zone {
            Some(name) if !name.is_empty() => parse_zone(name)?,
            _ => Zone::UTC,
        };
        let expanded = match expr.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if !(5..=6).contains(&fields.len()) {
            return Err(CronError::FieldCount {
                expr: expr.to_string(),
                count: fields.len(),
            });
        }
        for (i, f) in fields.iter().enumerate() {
            if i != 4 && f.chars().any(|c| matches!(c, 'L' | 'W' | '#')) {
                return Err(field_error(i, f, "L, W and # are not supported"));
            }
        }
        let dow = translate_day_of_week(fields[4])?;
        let mut crate_fields = vec!["0".to_string()];
        crate_fields.extend(fields[..4].iter().map(|s| s.to_string()));
        crate_fields.push(dow);
        if let Some(year) = fields.get(5) {
            crate_fields.push(year.to_string());
        }
        let inner = cron::Schedule::from_str(&crate_fields.join(" ")).map_err(|e| {
            // Find the field at fault by parsing each one alone in an otherwise `*` expression.
            for i in 0..crate_fields.len() - 1 {
                let mut probe = vec!["0", "*", "*", "*", "*", "*"];
                if crate_fields.len() == 7 {
                    probe.push("*");
                }
                probe[i + 1] = &crate_fields[i + 1];
                if cron::Schedule::from_str(&probe.join(" ")).is_err() {
                    return field_error(i, fields[i], &e.to_string());
                }
            }
            field_error(0, expr, &e.to_string())
        })?;
        check_possible(expr, &inner)?;
        Ok(CronSchedule {
            expr: expr.to_string(),
            inner,
            zone,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// Candidate wall-clock times strictly after `wall`, in order.
    fn walls_after(&self, wall: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        self.inner
            .after(&wall.and_utc())
            .map(|t| t.naive_utc())
            .take(MAX_CANDIDATES)
    }

    /// The first slot strictly after `t`. Wall-clock candidates are resolved by the zone's DST
    /// rule (gap: first instant after the gap; overlap: first pass only), so the mapping is
    /// monotone and a candidate that resolves to ≤ t is simply passed over.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let wall = self.zone.wall_clock(t);
        self.walls_after(wall)
            .filter_map(|w| self.zone.resolve(w))
            .find(|i| *i > t)
    }

    /// The last slot at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // In the second pass of a fall-back overlap, later wall times can resolve to earlier
        // instants, so start a little later when the offset dropped in the last three hours.
        let wall = self.zone.wall_clock(t);
        let earlier = t.checked_sub_signed(Duration::hours(3))?;
        let margin = if self.zone.offset_seconds(earlier) > self.zone.offset_seconds(t) {
            Duration::hours(3)
        } else {
            Duration::seconds(1)
        };
        let from = wall.checked_add_signed(margin)?.and_utc();
        self.inner
            .after(&from)
            .rev()
            .take(MAX_CANDIDATES)
            .filter_map(|w| self.zone.resolve(w.naive_utc()))
            .find(|i| *i <= t)
    }
}

fn field_error(index: usize, value: &str, reason: &str) -> CronError {
    CronError::Field {
        field: FIELD_NAMES.get(index).copied().unwrap_or("expression"),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Metronome day-of-week (0–7, Sunday = 0 and 7, names SUN–SAT, ranges, steps, `*`, `?`) into
/// the `cron` crate's numbering (1–7, Sunday = 1).
fn translate_day_of_week(field: &str) -> Result<String, CronError> {
    let bad = |reason: &str| field_error(4, field, reason);
    if field.chars().any(|c| matches!(c, 'L' | '#')) {
        return Err(bad("L and # are not supported"));
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| bad("step must be a number"))?;
                if step == 0 {
                    return Err(bad("step must be at least 1"));
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                day_number(a).ok_or_else(|| bad("unknown day"))?,
                day_number(b).ok_or_else(|| bad("unknown day"))?,
            )
        } else {
            let d = day_number(range).ok_or_else(|| bad("unknown day"))?;
            (d, if item.contains('/') { 6 } else { d })
        };
        if lo > hi {
            return Err(bad("range must go from low to high"));
        }
        let mut d = lo;
        while d <= hi {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".to_string());
    }
    let list: Vec<String> = (0..7)
        .filter(|d| days[*d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

fn day_number(s: &str) -> Option<u32> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if let Ok(n) = s.parse::<u32>() {
        return (n <= 7).then_some(n);
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|p| p as u32)
}

/// Metronome's CronDaysInMonthValidation: refuse `0 0 31 2 *` and friends.
fn check_possible(expr: &str, s: &cron::Schedule) -> Result<(), CronError> {
    use cron::TimeUnitSpec;
    let min_day = s.days_of_month().iter().next().unwrap_or(1);
    let possible = s
        .months()
        .iter()
        .any(|m| last_day_of_month(2024, m).is_some_and(|last| min_day <= last));
    if possible {
        Ok(())
    } else {
        Err(CronError::ImpossibleDate {
            expr: expr.to_string(),
            day: min_day,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn day_of_week_translation() {
        assert_eq!(translate_day_of_week("1-5").unwrap(), "2,3,4,5,6");
        assert_eq!(translate_day_of_week("0").unwrap(), "1");
        assert_eq!(translate_day_of_week("7").unwrap(), "1");
        assert_eq!(translate_day_of_week("5-7").unwrap(), "1,6,7");
        assert_eq!(translate_day_of_week("*/2").unwrap(), "1,3,5,7");
        assert_eq!(translate_day_of_week("mon,FRI").unwrap(), "2,6");
        assert_eq!(translate_day_of_week("0-7").unwrap(), "*");
        assert!(translate_day_of_week("8").is_err());
        assert!(translate_day_of_week("5-1").is_err());
    }

    #[test]
    fn metronome_first_monday_rule_ands_day_fields() {
        // Metronome's own test: `0 9 1-7 * 1` after 2017-10-02 10:00 is 2017-11-06 09:00.
        let s = CronSchedule::parse("0 9 1-7 * 1", None).unwrap();
        assert_eq!(
            s.next_after(t("2017-10-02T10:00:00Z")),
            Some(t("2017-11-06T09:00:00Z"))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = CronSchedule::parse("0 25 * * *", None).unwrap_err();
        assert!(
            matches!(err, CronError::Field { field: "hour", .. }),
            "{err}"
        );
        let err = CronSchedule::parse("0 0 * * 9", None).unwrap_err();
        assert!(
            matches!(
                err,
                CronError::Field {
                    field: "day-of-week",
                    ..
                }
            ),
            "{err}"
        );
        let err = CronSchedule::parse("0 0 L * *", None).unwrap_err();
        assert!(
            matches!(
                err,
                CronError::Field {
                    field: "day-of-month",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            CronSchedule::parse("0 0 31 2 *", None),
            Err(CronError::ImpossibleDate { day: 31, .. })
        ));
        assert!(matches!(
            CronSchedule::parse("* * * *", None),
            Err(CronError::FieldCount { count: 4, .. })
        ));
        assert!(CronSchedule::parse("0 0 29 2 *", None).is_ok());
        assert!(CronSchedule::parse("@daily", Some("Europe/Berlin")).is_ok());
        assert!(matches!(
            CronSchedule::parse("@daily", Some("PST")),
            Err(CronError::Zone(_))
        ));
    }
}
