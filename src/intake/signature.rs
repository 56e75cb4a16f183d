//! Webhook authentication, exactly as each vendor does it (providers.md §11):
//!
//! - BambooHR: `X-BambooHR-Signature` = lowercase hex of HMAC-SHA256(private key, raw body bytes
//!   followed by the `X-BambooHR-Timestamp` value as ASCII, no separator). The timestamp is
//!   epoch seconds; one older than the replay window (default 300 s), or more than the window
//!   ahead, is refused.
//! - HiBob: `Bob-Signature` = Base64 of HMAC-SHA512(webhook secret, raw body). No timestamp, so
//!   replays are stopped by the event index, not here.
//! - Personio and Rippling sign nothing: the delivery carries a static token in `Authorization`
//!   (Personio verbatim as configured, Rippling as `Bearer <token>`), compared in constant time.
//!   That proves only that the sender knows the token.
//! - Workday: no webhook authentication exists.
//!
//! Every comparison is constant-time. Errors never include the secret or the expected value.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::Source;

/// The request headers a delivery came with (names compared case-insensitively).
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: String) {
        self.0.push((name.to_string(), value));
    }

    /// `Name: value` lines (a request line first, a blank line and a body after, are ignored).
    pub fn parse(text: &str) -> Result<Headers, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                if out.is_empty() {
                    continue;
                }
                break;
            }
            if i == 0 && line.contains(" HTTP/") {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("line {}: not `Name: value`", i + 1));
            };
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(Headers(out))
    }
}

pub const BAMBOOHR_SIGNATURE: &str = "X-BambooHR-Signature";
pub const BAMBOOHR_TIMESTAMP: &str = "X-BambooHR-Timestamp";
pub const HIBOB_SIGNATURE: &str = "Bob-Signature";
pub const AUTHORIZATION: &str = "Authorization";

/// How a body was authenticated, as journaled.
pub fn scheme(source: Source) -> &'static str {
    match source {
        Source::Bamboohr => "hmac-sha256",
        Source::Hibob => "hmac-sha512",
        Source::Personio | Source::Rippling => "token",
        Source::Workday => "none",
    }
}

/// Why a delivery was refused. The text names headers, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no {0} header")]
    Missing(&'static str),
    #[error("{0} is not well-formed")]
    Malformed(&'static str),
    #[error("the signature does not match the body (wrong key, or the body was changed)")]
    Mismatch,
    #[error("the token in Authorization is not the configured one")]
    WrongToken,
    #[error("the signed timestamp is {age} s old, outside the {window} s replay window")]
    Stale { age: i64, window: u64 },
    #[error("the signed timestamp is {ahead} s in the future, outside the {window} s window")]
    Future { ahead: i64, window: u64 },
    #[error("{0} deliveries carry no signature or token to check")]
    Unsupported(&'static str),
}

/// Check a delivery. `secret` is the configured key (BambooHR, HiBob) or token (Personio,
/// Rippling).
pub fn verify(
    source: Source,
    secret: &[u8],
    body: &[u8],
    headers: &Headers,
    now: DateTime<Utc>,
    window_secs: u64,
) -> Result<(), SignatureError> {
    match source {
        Source::Bamboohr => {
            let sig = headers
                .get(BAMBOOHR_SIGNATURE)
                .ok_or(SignatureError::Missing(BAMBOOHR_SIGNATURE))?;
            let ts = headers
                .get(BAMBOOHR_TIMESTAMP)
                .ok_or(SignatureError::Missing(BAMBOOHR_TIMESTAMP))?;
            bamboohr(secret, body, sig, ts, now, window_secs)
        }
        Source::Hibob => {
            let sig = headers
                .get(HIBOB_SIGNATURE)
                .ok_or(SignatureError::Missing(HIBOB_SIGNATURE))?;
            hibob(secret, body, sig)
        }
        Source::Personio | Source::Rippling => {
            let auth = headers
                .get(AUTHORIZATION)
                .ok_or(SignatureError::Missing(AUTHORIZATION))?;
            token(secret, auth)
        }
        Source::Workday => Err(SignatureError::Unsupported("Workday")),
    }
}

/// BambooHR: hex HMAC-SHA256 over `body || timestamp`, within the replay window.
pub fn bamboohr(
    key: &[u8],
    body: &[u8],
    signature_hex: &str,
    timestamp: &str,
    now: DateTime<Utc>,
    window_secs: u64,
) -> Result<(), SignatureError> {
    let ts = timestamp.trim();
    let at: i64 = ts
        .parse()
        .map_err(|_| SignatureError::Malformed(BAMBOOHR_TIMESTAMP))?;
    let given = hex::decode(signature_hex.trim())
        .map_err(|_| SignatureError::Malformed(BAMBOOHR_SIGNATURE))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    mac.update(ts.as_bytes());
    let expected = mac.finalize().into_bytes();
    if !bool::from(expected.as_slice().ct_eq(&given)) {
        return Err(SignatureError::Mismatch);
    }
    // Checked after the MAC, so an attacker learns nothing about the window from a forgery.
    let age = now.timestamp() - at;
    let window = window_secs as i64;
    if age > window {
        return Err(SignatureError::Stale {
            age,
            window: window_secs,
        });
    }
    if -age > window {
        return Err(SignatureError::Future {
            ahead: -age,
            window: window_secs,
        });
    }
    Ok(())
}

/// HiBob: Base64 HMAC-SHA512 over the body.
pub fn hibob(secret: &[u8], body: &[u8], signature_b64: &str) -> Result<(), SignatureError> {
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| SignatureError::Malformed(HIBOB_SIGNATURE))?;
    let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Personio / Rippling: the `Authorization` value is the configured token, or `Bearer ` and
/// the token.
pub fn token(expected: &[u8], authorization: &str) -> Result<(), SignatureError> {
    let presented = authorization.trim().as_bytes();
    let bare = authorization
        .trim()
        .strip_prefix("Bearer ")
        .map(|t| t.trim().as_bytes());
    let whole = presented.ct_eq(expected);
    let stripped = bare.map_or(subtle::Choice::from(0), |b| b.ct_eq(expected));
    if bool::from(whole | stripped) {
        Ok(())
    } else {
        Err(SignatureError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"bhr-private-key-0001";
    const BODY: &[u8] = br#"{"employees":[{"id":"4021","action":"Updated"}]}"#;

    fn t(epoch: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(epoch, 0).unwrap()
    }

    /// Computed here, independently of `bamboohr`, from the documented recipe.
    fn bamboo_sig(key: &[u8], body: &[u8], ts: &str) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(&[body, ts.as_bytes()].concat());
        hex::encode(m.finalize().into_bytes())
    }

    #[test]
    fn bamboohr_accepts_hmac_sha256_of_body_then_timestamp() {
        let sig = bamboo_sig(KEY, BODY, "1764576902");
        assert_eq!(sig.len(), 64);
        assert_eq!(
            bamboohr(KEY, BODY, &sig, "1764576902", t(1764576902 + 10), 300),
            Ok(())
        );
        // Upper-case hex is the same bytes.
        assert_eq!(
            bamboohr(
                KEY,
                BODY,
                &sig.to_uppercase(),
                "1764576902",
                t(1764576902),
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn bamboohr_refuses_a_tampered_body_another_order_a_wrong_key_and_a_stale_time() {
        let ts = "1764576902";
        let now = t(1764576902);
        let sig = bamboo_sig(KEY, BODY, ts);
        let tampered = BODY
            .to_vec()
            .into_iter()
            .map(|b| if b == b'4' { b'5' } else { b })
            .collect::<Vec<_>>();
        assert_eq!(
            bamboohr(KEY, &tampered, &sig, ts, now, 300),
            Err(SignatureError::Mismatch)
        );
        // The wrong recipe some guides give: timestamp first, with a dot.
        let mut m = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
        m.update(format!("{ts}.").as_bytes());
        m.update(BODY);
        let dotted = hex::encode(m.finalize().into_bytes());
        assert_eq!(
            bamboohr(KEY, BODY, &dotted, ts, now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            bamboohr(b"other-key", BODY, &sig, ts, now, 300),
            Err(SignatureError::Mismatch)
        );
        // A changed timestamp breaks the signature too (it is signed).
        assert_eq!(
            bamboohr(KEY, BODY, &sig, "1764576903", now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            bamboohr(KEY, BODY, &sig, ts, t(1764576902 + 301), 300),
            Err(SignatureError::Stale {
                age: 301,
                window: 300
            })
        );
        assert_eq!(
            bamboohr(KEY, BODY, &sig, ts, t(1764576902 - 301), 300),
            Err(SignatureError::Future {
                ahead: 301,
                window: 300
            })
        );
        assert_eq!(
            bamboohr(KEY, BODY, "zz", ts, now, 300),
            Err(SignatureError::Malformed(BAMBOOHR_SIGNATURE))
        );
        assert_eq!(
            bamboohr(KEY, BODY, &sig, "yesterday", now, 300),
            Err(SignatureError::Malformed(BAMBOOHR_TIMESTAMP))
        );
    }

    #[test]
    fn hibob_accepts_base64_hmac_sha512_of_the_body_only() {
        let secret = b"bob-webhook-secret";
        let body = br#"{"type":"employee.left","data":{"employeeId":"3320118"}}"#;
        let mut m = Hmac::<Sha512>::new_from_slice(secret).unwrap();
        m.update(body);
        let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        assert_eq!(sig.len(), 88);
        assert_eq!(hibob(secret, body, &sig), Ok(()));
        assert_eq!(
            hibob(secret, &body[1..], &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(hibob(b"other", body, &sig), Err(SignatureError::Mismatch));
        // A hex signature (the wrong encoding) is refused.
        let mut m = Hmac::<Sha512>::new_from_slice(secret).unwrap();
        m.update(body);
        let hexsig = hex::encode(m.finalize().into_bytes());
        assert!(hibob(secret, body, &hexsig).is_err());
    }

    #[test]
    fn tokens_match_verbatim_or_after_bearer_and_nothing_else() {
        assert_eq!(token(b"s3cret", "s3cret"), Ok(()));
        assert_eq!(token(b"s3cret", "Bearer s3cret"), Ok(()));
        assert_eq!(token(b"Bearer s3cret", "Bearer s3cret"), Ok(()));
        assert_eq!(
            token(b"s3cret", "Bearer s3cre"),
            Err(SignatureError::WrongToken)
        );
        assert_eq!(
            token(b"s3cret", "Basic s3cret"),
            Err(SignatureError::WrongToken)
        );
        assert_eq!(token(b"s3cret", ""), Err(SignatureError::WrongToken));
    }

    #[test]
    fn verify_reads_the_vendor_headers_and_says_which_is_missing() {
        let mut h = Headers::default();
        let now = t(1764576902);
        assert_eq!(
            verify(Source::Bamboohr, KEY, BODY, &h, now, 300),
            Err(SignatureError::Missing(BAMBOOHR_SIGNATURE))
        );
        h = Headers::parse(&format!(
            "POST /hooks/bamboohr HTTP/1.1\r\nx-bamboohr-signature: {}\r\nX-BAMBOOHR-TIMESTAMP: 1764576902\r\n\r\nbody",
            bamboo_sig(KEY, BODY, "1764576902")
        ))
        .unwrap();
        assert_eq!(verify(Source::Bamboohr, KEY, BODY, &h, now, 300), Ok(()));
        assert_eq!(
            verify(Source::Workday, KEY, BODY, &h, now, 300),
            Err(SignatureError::Unsupported("Workday"))
        );
        assert!(Headers::parse("no colon here").is_err());
        let e = SignatureError::Mismatch.to_string();
        assert!(!e.contains("bhr-private-key"), "{e}");
    }
}
