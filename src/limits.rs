//! Per-system limits shared by the whole process: how many requests may be in flight to a
//! system at once (`max_concurrency`) and how many may start per period (`rate_limit`).
//!
//! Every step of every departure this process drives, and every request the shared HTTP path
//! makes, takes its permits from the same [`SystemLimits`], found by the system's name and
//! limits. So a bulk run of many departures stays inside a provider's published rate limit as
//! one departure does.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::Semaphore;

/// `N/s`, `N/min` or `N/h`: at most N requests started per period, spread evenly (one every
/// period/N, no burst), so no window of the period ever holds more than N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    /// Parse `600/min`, `10/s`, `36000/h` (also `sec`, `second`, `minute`, `hour`).
    pub fn parse(s: &str) -> Result<RateLimit, String> {
        let (n, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not COUNT/PERIOD, e.g. \"600/min\""))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{}` in `{s}` is not a whole number", n.trim()))?;
        let count = NonZeroU32::new(count).ok_or_else(|| {
            format!("`{s}` allows no request at all; the count must be 1 or more")
        })?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => {
                return Err(format!(
                    "`{other}` in `{s}` is not a period: use s, min or h"
                ));
            }
        };
        Ok(RateLimit { count, period })
    }

    /// The time between two request starts.
    pub fn interval(&self) -> Duration {
        self.period / self.count.get()
    }

    fn quota(&self) -> Quota {
        Quota::with_period(self.interval().max(Duration::from_nanos(1)))
            .expect("a non-zero interval")
            .allow_burst(NonZeroU32::MIN)
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// The limits of one system, shared by everything in this process that talks to it.
pub struct SystemLimits {
    /// Requests (or steps) in flight.
    pub concurrency: Arc<Semaphore>,
    /// Request starts per period, when the runbook sets `rate_limit`.
    pub rate: Option<DefaultDirectRateLimiter>,
}

impl SystemLimits {
    /// Wait until the rate limit lets one more request start (at once without a limit).
    pub async fn pace(&self) {
        if let Some(r) = &self.rate {
            r.until_ready().await;
        }
    }
}

type Key = (String, usize, Option<RateLimit>);

/// The process-wide limits of system `name` with these settings (created on first use).
pub fn for_system(
    name: &str,
    max_concurrency: usize,
    rate: Option<RateLimit>,
) -> Arc<SystemLimits> {
    static ALL: OnceLock<Mutex<HashMap<Key, Arc<SystemLimits>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    all.entry((name.to_string(), max_concurrency, rate))
        .or_insert_with(|| {
            Arc::new(SystemLimits {
                concurrency: Arc::new(Semaphore::new(max_concurrency.max(1))),
                rate: rate.map(|r| governor::RateLimiter::direct(r.quota())),
            })
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_say_what_is_wrong() {
        let r = RateLimit::parse("600/min").unwrap();
        assert_eq!(r.interval(), Duration::from_millis(100));
        assert_eq!(r.to_string(), "600/min");
        assert_eq!(
            RateLimit::parse("10/s").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            RateLimit::parse(" 3600 / h ").unwrap().interval(),
            Duration::from_secs(1)
        );
        for (bad, says) in [
            ("600", "COUNT/PERIOD"),
            ("x/min", "whole number"),
            ("0/min", "1 or more"),
            ("5/day", "use s, min or h"),
            ("-1/s", "whole number"),
        ] {
            let e = RateLimit::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn one_system_shares_one_set_of_limits_across_the_process() {
        let r = RateLimit::parse("60/min").ok();
        let a = for_system("limits-test-idp", 3, r);
        let b = for_system("limits-test-idp", 3, r);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &for_system("limits-test-other", 3, r)));
        assert_eq!(a.concurrency.available_permits(), 3);
    }

    #[test]
    fn no_burst_beyond_one_request_per_interval() {
        let limits = for_system("limits-test-burst", 4, RateLimit::parse("1/h").ok());
        let rate = limits.rate.as_ref().unwrap();
        assert!(rate.check().is_ok(), "the first request starts at once");
        assert!(
            rate.check().is_err(),
            "a second one within the hour would exceed 1/h"
        );
    }
}
