//! The HTTP client every REST provider shares: auth, timeouts, retries with backoff and jitter,
//! `Retry-After` and rate-limit headers, readable provider errors.
