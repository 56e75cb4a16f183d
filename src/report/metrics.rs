//! The arithmetic of the report, with nothing else in it: percentiles, the time-to-revocation
//! buckets, durations for a person, and the parsing of `--since` and `--sla`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// How percentiles are computed, as the report states it.
pub const PERCENTILE_METHOD: &str = "nearest rank: the p-th percentile of n sorted values is \
     the value at rank ceil(p/100 × n) (1-based), so it is always one of the measured values";

/// The p-th percentile (0 < p ≤ 100) of `values` by nearest rank; `None` when there are none.
pub fn percentile(values: &[i64], p: u32) -> Option<i64> {
    if values.is_empty() || p == 0 || p > 100 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    // ceil(p × n / 100), in integers.
    let rank = (p as usize * sorted.len()).div_ceil(100);
    Some(sorted[rank.max(1) - 1])
}

/// p50, p90, max and how many are within the SLA, over a set of durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Revoked in full: the durations the figures are computed over.
    pub count: usize,
    pub p50_seconds: Option<i64>,
    pub p90_seconds: Option<i64>,
    pub max_seconds: Option<i64>,
    /// Of `count`, how many took at most the SLA.
    pub within_sla: usize,
    /// Cut steps not (yet) all confirmed revoked: no duration, not in the figures.
    pub not_revoked: usize,
}

impl Stats {
    pub fn of(durations: &[i64], not_revoked: usize, sla_seconds: i64) -> Stats {
        Stats {
            count: durations.len(),
            p50_seconds: percentile(durations, 50),
            p90_seconds: percentile(durations, 90),
            max_seconds: durations.iter().copied().max(),
            within_sla: durations.iter().filter(|d| **d <= sla_seconds).count(),
            not_revoked,
        }
    }
}

/// The edges (seconds) of the time-to-revocation histogram: bucket i holds values in
/// `[EDGES[i], EDGES[i+1])`, the last one everything from its edge on.
pub const EDGES: [i64; 10] = [
    0, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400, 259_200,
];

/// The label of each bucket, in order.
pub const BUCKET_LABELS: [&str; 10] = [
    "< 5 min",
    "5–15 min",
    "15–30 min",
    "30 min–1 h",
    "1–2 h",
    "2–4 h",
    "4–8 h",
    "8–24 h",
    "1–3 d",
    "≥ 3 d",
];

/// The bucket a duration falls in (a negative one, which the report never makes, in the first).
pub fn bucket(seconds: i64) -> usize {
    EDGES.iter().rposition(|e| seconds >= *e).unwrap_or(0)
}

/// One bar of the histogram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub label: &'static str,
    pub from_seconds: i64,
    /// `None` for the last, open-ended bucket.
    pub to_seconds: Option<i64>,
    pub count: usize,
}

pub fn histogram(durations: &[i64]) -> Vec<Bucket> {
    let mut counts = [0usize; EDGES.len()];
    for d in durations {
        counts[bucket(*d)] += 1;
    }
    (0..EDGES.len())
        .map(|i| Bucket {
            label: BUCKET_LABELS[i],
            from_seconds: EDGES[i],
            to_seconds: EDGES.get(i + 1).copied(),
            count: counts[i],
        })
        .collect()
}

/// `n / of`, or `None` when `of` is 0 (a rate of nothing is not 0 %).
pub fn rate(n: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// A rate for a person: `50%`, `66.7%`, or `—`.
pub fn show_rate(r: Option<f64>) -> String {
    match r {
        Some(r) => {
            let pct = r * 100.0;
            if (pct - pct.round()).abs() < 1e-9 {
                format!("{}%", pct.round() as i64)
            } else {
                format!("{pct:.1}%")
            }
        }
        None => "—".into(),
    }
}

/// A duration for a person, two units at most: `45 s`, `20 min`, `3 h 10 min`, `2 d 4 h`.
pub fn show_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let two = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a} {ua}")
        } else {
            format!("{a} {ua} {b} {ub}")
        }
    };
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        two(s / 60, "min", s % 60, "s")
    } else if s < 86_400 {
        two(s / 3600, "h", (s % 3600) / 60, "min")
    } else {
        two(s / 86_400, "d", (s % 86_400) / 3600, "h")
    }
}

/// An optional duration for a person, `—` when absent.
pub fn show_opt(seconds: Option<i64>) -> String {
    seconds.map(show_duration).unwrap_or_else(|| "—".into())
}

/// `--sla`: `1h`, `30m`, `90s`, `2d`, or a combination such as `1h30m`; more than zero.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let text = s.trim();
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "{s:?} is not a duration: use e.g. 1h, 30m, 90s, 2d or 1h30m"
                ));
            }
        };
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a duration: a number must come before each unit"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?} is too long"))?;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(format!(
            "{s:?} is not a duration: give a unit (s, m, h, d, w), e.g. 1h or 30m"
        ));
    }
    if total == 0 {
        return Err("the SLA must be longer than zero".into());
    }
    Ok(total)
}

/// `--since`: a date (`2026-11-01`, midnight UTC), an RFC 3339 time, or a span back from now
/// (`90d`, `12w`, `36h`).
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if text.ends_with(|c: char| c.is_ascii_alphabetic())
        && let Ok(secs) = parse_duration(text)
    {
        return Ok(now - chrono::Duration::seconds(secs));
    }
    Err(format!(
        "{s:?} is not a date: use YYYY-MM-DD (midnight UTC), an RFC 3339 time, or a span back \
         from now such as 90d"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        // n = 4: p50 is rank ceil(2) = 2, p90 is rank ceil(3.6) = 4 (order does not matter).
        assert_eq!(percentile(&[2700, 300, 11_400, 1200], 50), Some(1200));
        assert_eq!(percentile(&[2700, 300, 11_400, 1200], 90), Some(11_400));
        // n = 10: p90 is rank 9, p50 rank 5.
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 100), Some(10));
        // n = 2: p50 is rank 1.
        assert_eq!(percentile(&[300, 2700], 50), Some(300));
        assert_eq!(percentile(&[300, 2700], 90), Some(2700));
    }

    #[test]
    fn stats_count_within_the_sla_inclusive() {
        let s = Stats::of(&[3600, 3601, 10], 2, 3600);
        assert_eq!(s.count, 3);
        assert_eq!(s.within_sla, 2);
        assert_eq!(s.max_seconds, Some(3601));
        assert_eq!(s.not_revoked, 2);
        let empty = Stats::of(&[], 1, 3600);
        assert_eq!((empty.p50_seconds, empty.max_seconds), (None, None));
    }

    #[test]
    fn buckets_are_half_open() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(299), 0);
        assert_eq!(bucket(300), 1);
        assert_eq!(bucket(3599), 3);
        assert_eq!(bucket(3600), 4);
        assert_eq!(bucket(11_400), 5);
        assert_eq!(bucket(259_200), 9);
        assert_eq!(bucket(10_000_000), 9);
        assert_eq!(bucket(-5), 0);
        let h = histogram(&[0, 300, 1200, 2700, 11_400, 1_000_000]);
        let counts: Vec<usize> = h.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 1, 1, 1, 0, 1, 0, 0, 0, 1]);
        assert_eq!(h[9].to_seconds, None);
        assert_eq!(h[3].to_seconds, Some(3600));
    }

    #[test]
    fn durations_and_rates_for_a_person() {
        assert_eq!(show_duration(45), "45 s");
        assert_eq!(show_duration(1200), "20 min");
        assert_eq!(show_duration(1205), "20 min 5 s");
        assert_eq!(show_duration(11_400), "3 h 10 min");
        assert_eq!(show_duration(3600), "1 h");
        assert_eq!(show_duration(187_200), "2 d 4 h");
        assert_eq!(show_rate(rate(1, 2)), "50%");
        assert_eq!(show_rate(rate(2, 3)), "66.7%");
        assert_eq!(show_rate(rate(0, 0)), "—");
    }

    #[test]
    fn sla_and_since_parse() {
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in ["", "1", "h", "1x", "0m", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2026-11-01", now).unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("30d", now).unwrap().to_rfc3339(),
            "2026-11-01T09:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-11-01T12:00:00+02:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-01T10:00:00+00:00"
        );
        assert!(parse_since("last tuesday", now).is_err());
        assert!(parse_since("2026-13-01", now).is_err());
    }
}
