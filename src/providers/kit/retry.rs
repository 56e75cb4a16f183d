//! One retry policy for every provider: attempts, exponential backoff with full jitter, the
//! longest single wait (a server asking for longer fails the call as transient) and a total
//! budget. The HTTP request path and the LDAP session loop both follow it.

use std::time::Duration;

use rand::Rng;

/// How hard to retry transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt (full jitter: the wait is uniform in 0..=ceiling).
    pub base: Duration,
    /// Longest single wait. A server asking for longer makes the call fail as transient.
    pub max_wait: Duration,
    /// Longest total waiting across the retries of one call.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
            max_total: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Backoff ceiling before attempt `attempt + 1` (attempt is 1-based, the one that failed).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_wait)
    }

    /// The wait before retrying after failed attempt `attempt`: uniform in 0..=ceiling.
    pub fn backoff(&self, attempt: u32) -> Duration {
        jitter(self.ceiling(attempt))
    }

    /// Whether another try may follow failed attempt `attempt` after waiting `wait`, having
    /// waited `waited` already; `Err` says why not.
    pub fn allows(&self, attempt: u32, waited: Duration, wait: Duration) -> Result<(), String> {
        if attempt >= self.max_attempts {
            return Err(format!("gave up after {attempt} attempts"));
        }
        if waited + wait > self.max_total {
            return Err(format!(
                "retry budget of {} s used up after {attempt} attempts",
                secs(self.max_total)
            ));
        }
        Ok(())
    }
}

/// Uniform in 0..=ceiling, to the millisecond.
pub fn jitter(ceiling: Duration) -> Duration {
    let max = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=max))
}

/// Seconds for messages, to a tenth.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_longest_wait_and_the_budget_ends_it() {
        let p = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(100),
            max_wait: Duration::from_millis(300),
            max_total: Duration::from_secs(1),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(300));
        assert_eq!(p.ceiling(40), Duration::from_millis(300));
        for a in 1..5 {
            assert!(p.backoff(a) <= p.ceiling(a));
        }
        assert!(
            p.allows(1, Duration::ZERO, Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            p.allows(4, Duration::ZERO, Duration::ZERO)
                .unwrap_err()
                .contains("4 attempts")
        );
        let e = p
            .allows(2, Duration::from_millis(950), Duration::from_millis(100))
            .unwrap_err();
        assert!(e.contains("budget of 1 s"), "{e}");
    }
}
