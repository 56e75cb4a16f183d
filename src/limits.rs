//! Per-system limits shared by the whole process: how many requests may be in flight to a
//! system at once (`max_concurrency`) and how many may start per period (`rate_limit`).
//!
//! Every step of every departure this process drives, and every request the shared HTTP path
//! makes, takes its permits from the same [`SystemLimits`], found by the system's name and
//! limits. So a bulk run of many departures stays inside a provider's published rate limit as
//! one departure does.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

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
    /// The runbook's `rate_limit`, for progress lines.
    pub configured: Option<RateLimit>,
    /// What the system itself says about its budget, shared by every departure on it.
    backoff: Mutex<Backoff>,
    sent: AtomicU64,
    throttled: AtomicU64,
}

/// Adaptive pacing from the system's own answers: a pause until a time it names (Retry-After, a
/// used-up budget until its reset) and a gap between request starts that grows by half on every
/// throttled answer and shrinks slowly (by 1/32) with each answer that was not.
#[derive(Debug)]
struct Backoff {
    not_before: Instant,
    gap: Duration,
    next_slot: Instant,
}

/// The longest pause a system's headers may impose on everyone before the next request; a
/// longer one is left to the request's own retry policy (which fails the call as transient).
pub const MAX_SHARED_PAUSE: Duration = Duration::from_secs(60);
/// The gap between request starts after a first throttled answer, and the most it grows to.
const FIRST_GAP: Duration = Duration::from_millis(100);
const MAX_GAP: Duration = Duration::from_secs(10);

impl SystemLimits {
    fn new(max_concurrency: usize, rate: Option<RateLimit>) -> SystemLimits {
        let now = Instant::now();
        SystemLimits {
            concurrency: Arc::new(Semaphore::new(max_concurrency.max(1))),
            rate: rate.map(|r| governor::RateLimiter::direct(r.quota())),
            configured: rate,
            backoff: Mutex::new(Backoff {
                not_before: now,
                gap: Duration::ZERO,
                next_slot: now,
            }),
            sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Wait until one more request may start: the runbook's rate limit, then any pause or gap
    /// the system's own answers asked for (at once when neither applies). Counts the request.
    pub async fn pace(&self) {
        if let Some(r) = &self.rate {
            r.until_ready().await;
        }
        let slot = {
            let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            let mut slot = Instant::now().max(b.not_before);
            if !b.gap.is_zero() {
                slot = slot.max(b.next_slot);
                b.next_slot = slot + b.gap;
            }
            slot
        };
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The system answered "too many requests" (or a throttle like it): everyone on it waits
    /// `wait` (what it asked for; a second without a hint), and requests start further apart.
    pub fn throttled(&self, wait: Option<Duration>) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        // The first throttled answer after calm pauses everyone for what the system asked;
        // while requests are already spaced out, each further one widens the gap (its own
        // request still waits what it was told, in the retry loop).
        let calm = b.gap.is_zero();
        b.gap = (b.gap * 3 / 2).clamp(FIRST_GAP, MAX_GAP);
        let wait = wait.unwrap_or(Duration::from_secs(1));
        if calm && wait <= MAX_SHARED_PAUSE {
            b.not_before = b.not_before.max(Instant::now() + wait);
        }
    }

    /// The system answered; `budget` is what its headers say is left: requests remaining and
    /// the time until the budget resets. A used-up budget pauses everyone until the reset; a
    /// low one spreads the remaining requests over the time left.
    pub fn answered(&self, budget: Option<(u64, Duration)>) {
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        b.gap = b.gap * 31 / 32;
        if b.gap < Duration::from_millis(5) {
            b.gap = Duration::ZERO;
        }
        if let Some((remaining, reset)) = budget
            && reset <= MAX_SHARED_PAUSE
        {
            if remaining == 0 {
                b.not_before = b.not_before.max(Instant::now() + reset);
            } else if remaining <= LOW_BUDGET {
                b.gap = b.gap.max(reset / (remaining as u32 + 1)).min(MAX_GAP);
            }
        }
    }

    /// Requests started so far, and throttled answers seen.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.throttled.load(Ordering::Relaxed),
        )
    }
}

/// Below this many remaining requests, the rest are spread over the time to the reset.
const LOW_BUDGET: u64 = 10;

type Key = (String, usize, Option<RateLimit>);

/// The process-wide limits of system `name` with these settings (created on first use).
pub fn for_system(
    name: &str,
    max_concurrency: usize,
    rate: Option<RateLimit>,
) -> Arc<SystemLimits> {
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    all.entry((name.to_string(), max_concurrency, rate))
        .or_insert_with(|| Arc::new(SystemLimits::new(max_concurrency, rate)))
        .clone()
}

/// The limits of every system this process has talked to: (name, limits), sorted by name.
pub fn all_systems() -> Vec<(String, Arc<SystemLimits>)> {
    let mut out: Vec<(String, Arc<SystemLimits>)> = registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((name, ..), l)| (name.clone(), l.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn registry() -> &'static Mutex<HashMap<Key, Arc<SystemLimits>>> {
    static ALL: OnceLock<Mutex<HashMap<Key, Arc<SystemLimits>>>> = OnceLock::new();
    ALL.get_or_init(Default::default)
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

    #[tokio::test]
    async fn a_throttled_answer_pauses_everyone_and_spreads_the_next_requests() {
        let limits = for_system("limits-test-adaptive", 4, None);
        let t0 = Instant::now();
        limits.pace().await;
        assert!(
            t0.elapsed() < Duration::from_millis(50),
            "no pause before anything was said"
        );
        limits.throttled(Some(Duration::from_millis(300)));
        limits.pace().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        let t1 = Instant::now();
        limits.pace().await;
        // Its slot was counted from the end of the pause, which the previous one overshot.
        assert!(
            t1.elapsed() >= FIRST_GAP - Duration::from_millis(20),
            "the next request waits its gap: {:?}",
            t1.elapsed()
        );
        // Throttled again while spaced out: the gap widens; no second pause for everyone.
        limits.throttled(Some(Duration::from_secs(5)));
        let t3 = Instant::now();
        limits.pace().await;
        assert!(t3.elapsed() < Duration::from_secs(1), "{:?}", t3.elapsed());
        assert_eq!(limits.counts(), (4, 2));
        // Answers that are not throttled close the gap again.
        for _ in 0..150 {
            limits.answered(None);
        }
        let t2 = Instant::now();
        limits.pace().await;
        limits.pace().await;
        assert!(
            t2.elapsed() < Duration::from_millis(50),
            "{:?}",
            t2.elapsed()
        );
    }

    #[tokio::test]
    async fn a_used_up_budget_waits_for_its_reset_a_far_one_does_not() {
        let limits = for_system("limits-test-budget", 4, None);
        limits.answered(Some((0, Duration::from_millis(300))));
        let t0 = Instant::now();
        limits.pace().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        let other = for_system("limits-test-budget-far", 4, None);
        other.answered(Some((0, Duration::from_secs(3600))));
        let t1 = Instant::now();
        other.pace().await;
        assert!(
            t1.elapsed() < Duration::from_millis(50),
            "{:?}",
            t1.elapsed()
        );
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
