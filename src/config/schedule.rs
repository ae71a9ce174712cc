//! `[[autoscaling.schedule]]`: scheduled changes of the autoscaling range (Application Auto
//! Scaling scheduled actions), e.g. 0 tasks at night and at weekends. AWS writes their recurrence
//! as `cron(Minutes Hours Day-of-month Month Day-of-week Year)` with days of the week 1-7 = SUN-SAT
//! (Quartz's numbering) and `?` in exactly one of the two day fields; croner evaluates it in the
//! entry's IANA time zone.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

use super::{load, AutoscalingConfig, ConfigError, MAX_SCALED_TASKS};

/// Most characters of an entry's name (the action is named `<stack>-schedule-<name>`).
pub const MAX_SCHEDULE_NAME: usize = 64;

/// One scheduled change of the range: from `cron` on (in `timezone`), the service scales between
/// `min_count` and `max_count`, until the next entry fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    pub name: String,
    /// Six fields, as AWS takes them: `0 20 ? * MON-FRI *` (or wrapped, `cron(0 20 ? * MON-FRI *)`).
    pub cron: String,
    pub min_count: u32,
    pub max_count: u32,
    /// An IANA time zone name; the cron's hours are in it (daylight saving included).
    #[serde(default = "utc")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".into()
}

impl ScheduleEntry {
    /// The six fields, without `cron(...)` and with single spaces.
    pub fn fields(&self) -> String {
        unwrap_cron(&self.cron).split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// What Application Auto Scaling's `Schedule` is: `cron(<fields>)`.
    pub fn expression(&self) -> String {
        format!("cron({})", self.fields())
    }

    /// Its recurrence and time zone, once validated.
    pub fn recurrence(&self) -> Result<Recurrence, String> {
        Recurrence::new(&self.cron, &self.timezone)
    }
}

fn unwrap_cron(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix("cron(").and_then(|t| t.strip_suffix(')')).unwrap_or(text)
}

/// An AWS cron expression in its time zone.
#[derive(Debug, Clone)]
pub struct Recurrence {
    cron: Cron,
    zone: Tz,
}

impl Recurrence {
    /// `expression`: AWS's six fields (optionally as `cron(...)`); `zone`: an IANA name.
    pub fn new(expression: &str, zone: &str) -> Result<Recurrence, String> {
        let zone = Tz::from_str(zone).map_err(|_| format!("{zone:?} is not an IANA time zone name"))?;
        Ok(Recurrence { cron: parse_aws_cron(expression)?, zone })
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }
}

/// AWS's `Minutes Hours Day-of-month Month Day-of-week Year` as croner's seven fields (seconds
/// first), with Quartz's days of the week (1 = SUN .. 7 = SAT, as AWS numbers them, where croner's
/// own default is 0/7 = SUN).
fn parse_aws_cron(expression: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = unwrap_cron(expression).split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "has {} fields; AWS takes six: Minutes Hours Day-of-month Month Day-of-week Year (e.g. \"0 20 ? * MON-FRI *\")",
            fields.len()
        ));
    }
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err("exactly one of Day-of-month (3rd field) and Day-of-week (5th) must be `?`, as AWS requires".into());
    }
    if fields[..2].iter().chain(&fields[3..4]).chain(&fields[5..]).any(|f| f.contains('?')) {
        return Err("`?` is allowed only in Day-of-month or Day-of-week".into());
    }
    let parser =
        CronParser::builder().seconds(Seconds::Required).year(Year::Required).alternative_weekdays(true).build();
    parser.parse(&format!("0 {}", fields.join(" "))).map_err(|e| format!("is not a valid cron expression ({e})"))
}

/// The first bad key of the schedule, its value and why (`index` counts from 1).
type Bad = (String, String, String);

impl AutoscalingConfig {
    /// Every entry of `[[autoscaling.schedule]]`: a unique name, a valid cron and time zone, and
    /// `min_count <= max_count <= MAX_SCALED_TASKS`. The counts may lie outside `[autoscaling]`'s
    /// range (0 at night is the point): a scheduled action sets the target's range itself, and
    /// AWS takes any range a target can have.
    pub(super) fn validate_schedule(&self) -> Result<(), Bad> {
        let mut names = HashSet::new();
        for (i, entry) in self.schedule.iter().enumerate() {
            let key = |field: &str| format!("autoscaling.schedule[{}].{field}", i + 1);
            let bad = |field: &str, value: String, reason: String| Err((key(field), value, reason));
            let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if entry.name.is_empty() || entry.name.len() > MAX_SCHEDULE_NAME || !entry.name.chars().all(name_ok) {
                let why = format!("must be 1 to {MAX_SCHEDULE_NAME} letters, digits, `-` or `_`");
                return bad("name", format!("{:?}", entry.name), why);
            }
            if !names.insert(entry.name.as_str()) {
                return bad("name", format!("{:?}", entry.name), "is the name of an earlier entry".into());
            }
            if let Err(why) = parse_aws_cron(&entry.cron) {
                return bad("cron", format!("{:?}", entry.cron), why);
            }
            if Tz::from_str(&entry.timezone).is_err() {
                let why = "is not an IANA time zone name (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")";
                return bad("timezone", format!("{:?}", entry.timezone), why.into());
            }
            if entry.max_count > MAX_SCALED_TASKS {
                let why = format!(
                    "must be between 0 and {MAX_SCALED_TASKS} (the most tasks fargate-stack scales a service to)"
                );
                return bad("max_count", entry.max_count.to_string(), why);
            }
            if entry.min_count > entry.max_count {
                let why = format!("must be at most this entry's max_count ({})", entry.max_count);
                return bad("min_count", entry.min_count.to_string(), why);
            }
        }
        Ok(())
    }

    /// The widest range the service's desired count may be in: `[autoscaling]`'s, widened by every
    /// scheduled entry's (whichever fired last sets the target's range).
    pub fn bounds(&self) -> (u32, u32) {
        self.schedule
            .iter()
            .fold((self.min_count, self.max_count), |(lo, hi), e| (lo.min(e.min_count), hi.max(e.max_count)))
    }

    /// Whether `(min, max)` is a range the config puts the target in: `[autoscaling]`'s or a
    /// scheduled entry's.
    pub fn is_configured_range(&self, min: u32, max: u32) -> bool {
        (min, max) == (self.min_count, self.max_count)
            || self.schedule.iter().any(|e| (e.min_count, e.max_count) == (min, max))
    }

    /// The average min and max task count under the schedule over a representative year (2027,
    /// so that weekly, monthly and yearly schedules all average out), time-weighted: each range
    /// counts for the hours from when its entry fires until the next entry fires. `None` without
    /// a schedule. An estimate: AWS runs the autoscaler's count between them.
    pub fn weighted_counts(&self) -> Option<(f64, f64)> {
        if self.schedule.is_empty() {
            return None;
        }
        let year = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).single().expect("a valid date");
        let (from, to) = (year(2027), year(2028));
        // A month before: the range in force on January 1st is the one the last entry set.
        let warm_up = from - chrono::Duration::days(31);
        let mut events = vec![];
        for (i, entry) in self.schedule.iter().enumerate() {
            let Ok(recurrence) = entry.recurrence() else { continue };
            let mut at = warm_up;
            // Bounded: a schedule firing more often than every ten minutes is counted that far.
            for _ in 0..MAX_EVENTS_PER_ENTRY {
                match recurrence.next_after(at) {
                    Some(next) if next < to => {
                        events.push((next, i));
                        at = next;
                    }
                    _ => break,
                }
            }
        }
        events.sort();
        let (mut lo, mut hi) = (self.min_count as f64, self.max_count as f64);
        let (mut sum_lo, mut sum_hi, mut since) = (0.0, 0.0, from);
        for (at, i) in events {
            if at > from {
                let seconds = (at - since).num_seconds() as f64;
                (sum_lo, sum_hi, since) = (sum_lo + lo * seconds, sum_hi + hi * seconds, at);
            }
            (lo, hi) = (self.schedule[i].min_count as f64, self.schedule[i].max_count as f64);
        }
        let rest = (to - since).num_seconds() as f64;
        let total = (to - from).num_seconds() as f64;
        Some(((sum_lo + lo * rest) / total, (sum_hi + hi * rest) / total))
    }
}

/// `[[autoscaling.schedule]]` without `[autoscaling]`'s range (TOML makes the table from the
/// entries' header alone): said as such, rather than as a missing `min_count`.
pub(super) fn check_range_given(origin: &str, text: &str) -> Result<(), ConfigError> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else { return Ok(()) };
    let Some(scaling) = table.get("autoscaling").and_then(toml::Value::as_table) else { return Ok(()) };
    if scaling.contains_key("schedule") && !(scaling.contains_key("min_count") && scaling.contains_key("max_count")) {
        return Err(ConfigError::At {
            origin: origin.to_string(),
            line: Some(load::line_of(text, "autoscaling.schedule[1]")),
            key: "autoscaling.schedule".into(),
            message: "needs [autoscaling] with min_count and max_count: the scheduled actions change the range of \
                      its scalable target"
                .into(),
        });
    }
    Ok(())
}

/// How many occurrences of one entry the bill's year counts at most (every ten minutes, and a month).
const MAX_EVENTS_PER_ENTRY: usize = 13 * 31 * 24 * 6;

/// The next change of the range among `entries`, after `now`: when, and which entry.
pub fn next_change(entries: &[ScheduleEntry], now: DateTime<Utc>) -> Option<(DateTime<Utc>, &ScheduleEntry)> {
    entries.iter().filter_map(|e| Some((e.recurrence().ok()?.next_after(now)?, e))).min_by_key(|(at, _)| *at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, cron: &str, min: u32, max: u32, zone: &str) -> ScheduleEntry {
        ScheduleEntry { name: name.into(), cron: cron.into(), min_count: min, max_count: max, timezone: zone.into() }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn scaling(schedule: Vec<ScheduleEntry>) -> AutoscalingConfig {
        let mut config: AutoscalingConfig = toml::from_str("min_count = 2\nmax_count = 4").unwrap();
        config.schedule = schedule;
        config
    }

    #[test]
    fn days_of_the_week_are_numbered_as_aws_numbers_them() {
        // 2026-12-03 is a Thursday. AWS: 1 = SUN, 2 = MON .. 7 = SAT.
        let thursday = at("2026-12-03T12:00:00Z");
        let monday = Recurrence::new("30 6 ? * 2 *", "UTC").unwrap();
        assert_eq!(monday.next_after(thursday), Some(at("2026-12-07T06:30:00Z")));
        let by_name = Recurrence::new("cron(30 6 ? * MON *)", "UTC").unwrap();
        assert_eq!(by_name.next_after(thursday), Some(at("2026-12-07T06:30:00Z")));
        let sunday = Recurrence::new("0 0 ? * 1 *", "UTC").unwrap();
        assert_eq!(sunday.next_after(thursday), Some(at("2026-12-06T00:00:00Z")));
        let saturday = Recurrence::new("0 0 ? * 7 *", "UTC").unwrap();
        assert_eq!(saturday.next_after(thursday), Some(at("2026-12-05T00:00:00Z")));
        // Weekday evenings: Friday is next, not the weekend.
        let friday = at("2026-12-04T21:00:00Z");
        let weekdays = Recurrence::new("0 20 ? * MON-FRI *", "UTC").unwrap();
        assert_eq!(weekdays.next_after(friday), Some(at("2026-12-07T20:00:00Z")));
        // Day of month with `?` as the day of week; the third Friday (6#3) of a month.
        let first = Recurrence::new("0 8 1 * ? *", "UTC").unwrap();
        assert_eq!(first.next_after(thursday), Some(at("2027-01-01T08:00:00Z")));
        let third_friday = Recurrence::new("0 8 ? * 6#3 *", "UTC").unwrap();
        assert_eq!(third_friday.next_after(thursday), Some(at("2026-12-18T08:00:00Z")));
    }

    #[test]
    fn hours_are_in_the_entrys_time_zone() {
        // Berlin is UTC+1 in December and UTC+2 in July.
        let evening = Recurrence::new("0 20 ? * * *", "Europe/Berlin").unwrap();
        assert_eq!(evening.next_after(at("2026-12-03T12:00:00Z")), Some(at("2026-12-03T19:00:00Z")));
        assert_eq!(evening.next_after(at("2027-07-01T12:00:00Z")), Some(at("2027-07-01T18:00:00Z")));
        // A year field: none after it.
        let once = Recurrence::new("0 0 1 1 ? 2027", "UTC").unwrap();
        assert_eq!(once.next_after(at("2026-12-03T00:00:00Z")), Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(once.next_after(at("2027-01-02T00:00:00Z")), None);
    }

    #[test]
    fn aws_cron_rules_are_checked() {
        let err = |cron: &str| parse_aws_cron(cron).unwrap_err();
        assert!(err("0 20 * * *").contains("has 5 fields"), "{}", err("0 20 * * *"));
        assert!(err("0 20 * * MON *").contains("exactly one"));
        assert!(err("0 20 ? * ? *").contains("exactly one"));
        assert!(err("? 20 1 * ? *").contains("only in Day-of-month"));
        assert!(err("0 25 ? * MON *").contains("not a valid cron"));
        assert!(err("0 20 ? * MOX *").contains("not a valid cron"));
        assert!(Recurrence::new("0 20 ? * MON *", "Mars/Olympus").unwrap_err().contains("IANA"));
    }

    #[test]
    fn validation_names_the_entry_and_its_key() {
        let key = |schedule: Vec<ScheduleEntry>| scaling(schedule).validate_schedule().unwrap_err().0;
        let night = entry("night", "0 20 ? * * *", 0, 0, "UTC");
        assert!(scaling(vec![night.clone()]).validate_schedule().is_ok());
        assert_eq!(key(vec![night.clone(), night.clone()]), "autoscaling.schedule[2].name");
        assert_eq!(key(vec![entry("a b", "0 20 ? * * *", 0, 0, "UTC")]), "autoscaling.schedule[1].name");
        assert_eq!(key(vec![night.clone(), entry("x", "0 20 * * *", 0, 0, "UTC")]), "autoscaling.schedule[2].cron");
        assert_eq!(key(vec![entry("x", "0 20 ? * * *", 0, 0, "Berlin")]), "autoscaling.schedule[1].timezone");
        assert_eq!(key(vec![entry("x", "0 20 ? * * *", 3, 2, "UTC")]), "autoscaling.schedule[1].min_count");
        assert_eq!(key(vec![entry("x", "0 20 ? * * *", 0, 101, "UTC")]), "autoscaling.schedule[1].max_count");
    }

    #[test]
    fn the_next_change_is_the_earliest_entry_to_fire() {
        let schedule =
            [entry("night", "0 20 ? * MON-FRI *", 0, 0, "UTC"), entry("morning", "0 7 ? * MON-FRI *", 2, 4, "UTC")];
        let (when, which) = next_change(&schedule, at("2026-12-03T12:00:00Z")).unwrap();
        assert_eq!((when, which.name.as_str()), (at("2026-12-03T20:00:00Z"), "night"));
        let (when, which) = next_change(&schedule, at("2026-12-04T21:00:00Z")).unwrap();
        assert_eq!((when, which.name.as_str()), (at("2026-12-07T07:00:00Z"), "morning"));
        assert!(next_change(&[], at("2026-12-04T21:00:00Z")).is_none());
    }

    #[test]
    fn the_bill_weighs_each_range_by_the_hours_it_is_in_force() {
        assert_eq!(scaling(vec![]).weighted_counts(), None);
        // Weekdays 07:00-20:00 at 2..=4, nights and weekends at 0: 13 h x 5 days of 168 h a week.
        let office = scaling(vec![
            entry("night", "0 20 ? * MON-FRI *", 0, 0, "UTC"),
            entry("morning", "0 7 ? * MON-FRI *", 2, 4, "UTC"),
        ]);
        let (min, max) = office.weighted_counts().unwrap();
        let share = 65.0 / 168.0;
        assert!((min - 2.0 * share).abs() < 0.01, "{min} vs {}", 2.0 * share);
        assert!((max - 4.0 * share).abs() < 0.01, "{max} vs {}", 4.0 * share);
        // Only at night (20:00 to 07:00 every day): 13 of 24 hours at the config's range.
        let nightly =
            scaling(vec![entry("night", "0 20 ? * * *", 0, 0, "UTC"), entry("morning", "0 7 ? * * *", 2, 4, "UTC")]);
        let (min, max) = nightly.weighted_counts().unwrap();
        assert!((min - 2.0 * 13.0 / 24.0).abs() < 0.001 && (max - 4.0 * 13.0 / 24.0).abs() < 0.001);
        // An entry that never fires in the year leaves the config's range in force.
        let never = scaling(vec![entry("old", "0 0 1 1 ? 2020", 0, 0, "UTC")]);
        assert_eq!(never.weighted_counts(), Some((2.0, 4.0)));
    }

    #[test]
    fn bounds_cover_every_scheduled_range() {
        let s = scaling(vec![entry("night", "0 20 ? * * *", 0, 0, "UTC"), entry("peak", "0 9 ? * * *", 3, 8, "UTC")]);
        assert_eq!(s.bounds(), (0, 8));
        assert!(s.is_configured_range(2, 4) && s.is_configured_range(0, 0) && s.is_configured_range(3, 8));
        assert!(!s.is_configured_range(0, 4));
    }
}
