//! A budget's days and months: where each begins and ends, in its time zone and at its reset
//! time, across daylight-saving changes.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use switchboard_api::budget::Budget;

#[derive(Clone, Debug)]
pub struct Clock {
    tz: TimeZone,
    /// Minutes after local midnight.
    reset: u32,
}

impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        self.reset == other.reset && self.tz.iana_name() == other.tz.iana_name()
    }
}

impl Clock {
    pub fn new(b: &Budget) -> Result<Self, String> {
        let tz = match b.tz.as_deref() {
            None | Some("UTC") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                format!("tz {name:?} is no time zone (an IANA name: Europe/Berlin)")
            })?,
        };
        Ok(Self {
            tz,
            reset: b.reset_minutes()?,
        })
    }

    /// When the day (or month) that begins on `d` begins, unix milliseconds. A reset time that
    /// does not exist that day (skipped by a clock change) is the first moment after it.
    fn start_on(&self, d: Date) -> i64 {
        let hour = i8::try_from(self.reset / 60).unwrap_or(0);
        let minute = i8::try_from(self.reset % 60).unwrap_or(0);
        d.at(hour, minute, 0, 0)
            .to_zoned(self.tz.clone())
            .map_or(i64::MAX, |z| z.timestamp().as_millisecond())
    }

    /// The period (a day, or a month) that holds `now_ms`: its start and its end.
    pub fn period(&self, monthly: bool, now_ms: i64) -> (i64, i64) {
        let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let today = now.to_zoned(self.tz.clone()).date();
        let (step, mut first) = if monthly {
            (1.month(), today.first_of_month())
        } else {
            (1.day(), today)
        };
        if self.start_on(first) > now_ms {
            first = first.checked_sub(step).unwrap_or(first);
        }
        let next = first.checked_add(step).unwrap_or(first);
        (self.start_on(first), self.start_on(next))
    }

    /// `ms` in RFC 3339 with this zone's offset then: `2026-12-07T00:00:00+01:00`.
    pub fn rfc3339(&self, ms: i64) -> String {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        format!("{:.0}", ts.display_with_offset(self.tz.to_offset(ts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(tz: &str, reset: &str) -> Clock {
        Clock::new(&Budget {
            tz: Some(tz.into()),
            reset: Some(reset.into()),
            ..Default::default()
        })
        .expect("a valid clock")
    }

    fn ms(rfc: &str) -> i64 {
        rfc.parse::<Timestamp>()
            .expect("a timestamp")
            .as_millisecond()
    }

    #[test]
    fn days_and_months_begin_at_the_reset_time_in_their_zone() {
        let c = clock("Europe/Berlin", "00:00");
        let (start, end) = c.period(false, ms("2026-12-06T22:30:00Z"));
        assert_eq!(c.rfc3339(start), "2026-12-06T00:00:00+01:00");
        assert_eq!(c.rfc3339(end), "2026-12-07T00:00:00+01:00");
        // 23:30 UTC is already the 7th in Berlin.
        let (start, _) = c.period(false, ms("2026-12-06T23:30:00Z"));
        assert_eq!(c.rfc3339(start), "2026-12-07T00:00:00+01:00");
        let (start, end) = c.period(true, ms("2026-12-06T22:30:00Z"));
        assert_eq!(
            (c.rfc3339(start).as_str(), c.rfc3339(end).as_str()),
            ("2026-12-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00")
        );
        // A reset at 07:30: before it, the day is yesterday's.
        let c = clock("UTC", "07:30");
        let (start, end) = c.period(false, ms("2026-12-06T07:00:00Z"));
        assert_eq!(c.rfc3339(start), "2026-12-05T07:30:00+00:00");
        assert_eq!(c.rfc3339(end), "2026-12-06T07:30:00+00:00");
        let (start, _) = c.period(true, ms("2026-12-01T07:00:00Z"));
        assert_eq!(c.rfc3339(start), "2026-11-01T07:30:00+00:00");
    }

    #[test]
    fn a_day_with_a_clock_change_is_23_or_25_hours_and_a_bad_zone_is_refused() {
        let c = clock("America/Los_Angeles", "00:00");
        let (start, end) = c.period(false, ms("2026-03-08T12:00:00Z"));
        assert_eq!(end - start, 23 * 3_600_000, "spring forward");
        let (start, end) = c.period(false, ms("2026-11-01T12:00:00Z"));
        assert_eq!(end - start, 25 * 3_600_000, "fall back");
        let bad = Clock::new(&Budget {
            tz: Some("Mars/Olympus".into()),
            ..Default::default()
        });
        assert!(bad.unwrap_err().contains("no time zone"));
    }
}
