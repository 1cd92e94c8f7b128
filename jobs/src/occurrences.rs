//! Occurrences of an ISO 8601 schedule: slot k = anchor + k × period, computed from the immutable
//! anchor with calendar arithmetic in the schedule's zone (no re-anchoring, so no month drift).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::schedule::iso8601::{add_months_clamped, Iso8601Schedule};

/// Average Gregorian month in milliseconds (365.2425 / 12 days), used only to guess k.
const MONTH_MS: i64 = 2_629_746_000;
const DAY_MS: i64 = 86_400_000;

impl Iso8601Schedule {
    /// True when the period is zero (only allowed for R0/R1): the schedule has a single slot.
    fn single_slot(&self) -> bool {
        self.period.is_zero()
    }

    /// Slot `k` (k ≥ 0): the calendar part (years, months, weeks, days) is added to the anchor's
    /// wall clock (months clamp to the month's last day, from the anchor each time), the result is
    /// resolved in the zone by the DST rule, then the absolute part (hours, minutes, seconds) is
    /// added. So `P1D` keeps 09:00 local across DST while `PT24H` keeps 24 real hours.
    pub fn occurrence(&self, k: u64) -> Option<DateTime<Utc>> {
        if k > 0 && self.single_slot() {
            return None;
        }
        let k = i64::try_from(k).ok()?;
        let months = self.period.calendar_months().checked_mul(k)?;
        let days = self.period.calendar_days().checked_mul(k)?;
        let abs = self.period.absolute_millis().checked_mul(k)?;
        let base = if months == 0 && days == 0 {
            self.anchor
        } else {
            let date = add_months_clamped(self.anchor_wall.date(), months)?
                .checked_add_signed(Duration::try_days(days)?)?;
            let wall = NaiveDateTime::new(date, self.anchor_wall.time());
            self.zone.resolve(wall)?
        };
        base.checked_add_signed(Duration::try_milliseconds(abs)?)
    }

    /// A guess of the slot index at instant `t` (exact for purely absolute periods).
    fn guess_index(&self, t: DateTime<Utc>) -> u64 {
        let elapsed = (t - self.anchor).num_milliseconds();
        if elapsed <= 0 || self.single_slot() {
            return 0;
        }
        let step = self
            .period
            .calendar_months()
            .saturating_mul(MONTH_MS)
            .saturating_add(self.period.calendar_days().saturating_mul(DAY_MS))
            .saturating_add(self.period.absolute_millis());
        u64::try_from(elapsed / step.max(1)).unwrap_or(0)
    }

    /// Smallest k with `occurrence(k) > t`, if any.
    pub fn index_after(&self, t: DateTime<Utc>) -> Option<u64> {
        let mut k = self.guess_index(t);
        // Step back while the previous slot is still after t, then forward past t.
        while k > 0 && self.occurrence(k - 1).is_none_or(|o| o > t) {
            k -= 1;
        }
        loop {
            let o = self.occurrence(k)?;
            if o > t {
                return Some(k);
            }
            k = k.checked_add(1)?;
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.index_after(t).and_then(|k| self.occurrence(k))
    }

    /// The last slot at or before `t`, with its index.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<(u64, DateTime<Utc>)> {
        if self.anchor > t {
            return None;
        }
        let k = match self.index_after(t) {
            Some(k) => k.checked_sub(1)?,
            // No slot after t (single slot, or the end of time): the last one that exists.
            None => {
                let mut k = self.guess_index(t);
                while self.occurrence(k).is_none_or(|o| o > t) {
                    k = k.checked_sub(1)?;
                }
                k
            }
        };
        Some((k, self.occurrence(k)?))
    }

    /// Number of slots in `(after, upto]` (`after = None`: from the first slot).
    pub fn count_between(&self, after: Option<DateTime<Utc>>, upto: DateTime<Utc>) -> u64 {
        let Some((last, _)) = self.last_at_or_before(upto) else {
            return 0;
        };
        let first = match after {
            None => 0,
            Some(a) => match self.index_after(a) {
                Some(k) => k,
                None => return 0,
            },
        };
        (last + 1).saturating_sub(first)
    }
}

#[cfg(test)]
mod tests {
    use crate::schedule::iso8601::Iso8601Schedule;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn parse(s: &str, tz: Option<&str>) -> Iso8601Schedule {
        Iso8601Schedule::parse(s, tz, t("2024-01-15T12:00:30Z")).unwrap()
    }

    #[test]
    fn month_end_returns_to_the_31st() {
        let s = parse("R/2024-01-31T00:00:00Z/P1M", None);
        let got: Vec<String> = (0..5)
            .map(|k| s.occurrence(k).unwrap().format("%Y-%m-%d").to_string())
            .collect();
        assert_eq!(
            got,
            [
                "2024-01-31",
                "2024-02-29",
                "2024-03-31",
                "2024-04-30",
                "2024-05-31"
            ]
        );
    }

    #[test]
    fn next_after_and_last_at_or_before_agree() {
        let s = parse("R/2024-01-15T10:00:00Z/PT1H", None);
        let now = t("2024-01-15T12:00:30Z");
        assert_eq!(s.next_after(now), Some(t("2024-01-15T13:00:00Z")));
        assert_eq!(
            s.last_at_or_before(now),
            Some((2, t("2024-01-15T12:00:00Z")))
        );
        assert_eq!(s.count_between(None, now), 3);
        assert_eq!(s.count_between(Some(t("2024-01-15T10:00:00Z")), now), 2);
        assert_eq!(
            s.next_after(t("2024-01-15T12:00:00Z")),
            Some(t("2024-01-15T13:00:00Z"))
        );
        assert_eq!(
            s.next_after(t("2000-01-01T00:00:00Z")),
            Some(t("2024-01-15T10:00:00Z"))
        );
    }

    #[test]
    fn single_slot_schedule_has_one_occurrence() {
        let s = parse("R1/2024-01-15T10:00:00Z/P", None);
        assert_eq!(s.occurrence(1), None);
        assert_eq!(
            s.next_after(t("2024-01-15T09:00:00Z")),
            Some(t("2024-01-15T10:00:00Z"))
        );
        assert_eq!(s.next_after(t("2024-01-15T10:00:00Z")), None);
        assert_eq!(
            s.last_at_or_before(t("2025-01-01T00:00:00Z")).map(|x| x.0),
            Some(0)
        );
    }
}
