//! The signatures carried by every outgoing delivery (`docs/RECEIVING.md` and
//! `docs/API.md` describe the wire format). Two schemes are sent side by side:
//!
//! - `X-AgentVista-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`,
//!   keyed with the secret string exactly as the user was given it (`whsec_...`, every byte
//!   of it, the "raw" key);
//! - Standard Webhooks: `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<t>.<body>")>`, keyed with the
//!   base64-decoded part of the secret after `whsec_`, so receivers can use the
//!   `standardwebhooks` libraries unchanged.
//!
//! The receiver's side of both is documented in `docs/RECEIVING.md`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::SigningSecret;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

/// Header names, as they go on the wire (HTTP header names are case-insensitive).
pub const AGENTVISTA_SIGNATURE_HEADER: &str = "x-agentvista-signature";
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

/// The signature header values of one attempt of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-AgentVista-Signature`: `t=<unix seconds>,v1=<hex>`.
    pub agentvista_signature: String,
    /// `webhook-id`: the delivery id.
    pub webhook_id: String,
    /// `webhook-timestamp`: unix seconds, the same `t` as in `agentvista_signature`.
    pub webhook_timestamp: String,
    /// `webhook-signature`: `v1,<base64>`.
    pub webhook_signature: String,
}

impl SignatureHeaders {
    /// `(header name, value)` pairs, ready to add to a request.
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (AGENTVISTA_SIGNATURE_HEADER, &self.agentvista_signature),
            (WEBHOOK_ID_HEADER, &self.webhook_id),
            (WEBHOOK_TIMESTAMP_HEADER, &self.webhook_timestamp),
            (WEBHOOK_SIGNATURE_HEADER, &self.webhook_signature),
        ]
    }
}

/// The secret cannot be used for the Standard Webhooks scheme. The messages never quote the
/// secret, nor any part of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("signing secret does not start with `whsec_`")]
    MissingPrefix,
    #[error("signing secret is not `whsec_` followed by standard, padded base64")]
    InvalidBase64,
    #[error("signing secret has nothing after `whsec_`")]
    EmptyKey,
}

/// Sign one attempt of a delivery: `body` is the exact bytes that will be POSTed, and
/// `timestamp` (unix seconds) the time of this attempt, so that receivers rejecting stale
/// timestamps still accept a retry sent hours later.
pub fn sign(
    secret: &SigningSecret,
    delivery_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<SignatureHeaders, SigningError> {
    let raw_key = secret.expose();
    let standard_key = standard_webhooks_key(raw_key)?;
    let t = timestamp.to_string();

    let agentvista = hmac_sha256(raw_key.as_bytes(), &[t.as_bytes(), b".", body]);
    let standard = hmac_sha256(
        &standard_key,
        &[delivery_id.as_bytes(), b".", t.as_bytes(), b".", body],
    );

    Ok(SignatureHeaders {
        agentvista_signature: format!("t={t},v1={}", hex::encode(agentvista)),
        webhook_id: delivery_id.to_owned(),
        webhook_timestamp: t,
        webhook_signature: format!("v1,{}", STANDARD.encode(standard)),
    })
}

/// The Standard Webhooks key: the bytes the base64 after `whsec_` stands for.
fn standard_webhooks_key(raw: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = raw
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MissingPrefix)?;
    // The decoder's own error names the offending byte and its offset: part of the
    // secret, so it is dropped here rather than carried as a source.
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| SigningError::InvalidBase64)?;
    if key.is_empty() {
        return Err(SigningError::EmptyKey);
    }
    Ok(key)
}

/// The signature headers of a received delivery, as they arrived (absent ones `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedSignatures<'a> {
    pub agentvista_signature: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
    pub webhook_timestamp: Option<&'a str>,
    pub webhook_signature: Option<&'a str>,
}

/// Which of the two schemes a received delivery's signatures pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub agentvista: bool,
    pub standard_webhooks: bool,
}

impl Verification {
    pub fn both(self) -> bool {
        self.agentvista && self.standard_webhooks
    }
}

/// How far a signed timestamp may be from `now` (the Standard Webhooks libraries' default).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

/// The receiver's side of [`sign`]: checks both schemes with the endpoint's secret, as
/// `docs/RECEIVING.md` tells receivers to. A scheme passes when one of its `v1`
/// signatures matches (compared in constant time) and its timestamp is within
/// [`TIMESTAMP_TOLERANCE_SECS`] of `now` (unix seconds).
pub fn verify(
    secret: &SigningSecret,
    received: &ReceivedSignatures<'_>,
    body: &[u8],
    now: i64,
) -> Verification {
    let fresh = |t: &str| {
        t.parse::<i64>()
            .is_ok_and(|t| now.abs_diff(t) <= TIMESTAMP_TOLERANCE_SECS.unsigned_abs())
    };
    let agentvista = received.agentvista_signature.is_some_and(|header| {
        let mut t = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => t = Some(value),
                Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
                _ => {}
            }
        }
        t.is_some_and(|t| {
            fresh(t)
                && signatures.iter().any(|s| {
                    mac(secret.expose().as_bytes(), &[t.as_bytes(), b".", body])
                        .verify_slice(s)
                        .is_ok()
                })
        })
    });
    let standard_webhooks = match (
        received.webhook_id,
        received.webhook_timestamp,
        received.webhook_signature,
        standard_webhooks_key(secret.expose()),
    ) {
        (Some(id), Some(t), Some(header), Ok(key)) => {
            fresh(t)
                && header
                    .split_whitespace()
                    .filter_map(|s| s.strip_prefix("v1,"))
                    .filter_map(|s| STANDARD.decode(s).ok())
                    .any(|s| {
                        mac(&key, &[id.as_bytes(), b".", t.as_bytes(), b".", body])
                            .verify_slice(&s)
                            .is_ok()
                    })
        }
        _ => false,
    };
    Verification {
        agentvista,
        standard_webhooks,
    }
}

fn mac(key: &[u8], message: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in message {
        mac.update(part);
    }
    mac
}

fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    mac(key, message).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    fn secret(raw: &str) -> SigningSecret {
        SigningSecret::from_stored(raw.to_owned())
    }

    /// Published by Standard Webhooks: `test_sign_function` in
    /// `libraries/python/tests/test_webhooks.py` (the same vector is in the JavaScript, Go,
    /// PHP, Java and C# suites of github.com/standard-webhooks/standard-webhooks).
    #[test]
    fn standard_webhooks_reference_vector() {
        let headers = sign(
            &secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .expect("valid secret");
        assert_eq!(
            headers.webhook_signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(headers.webhook_id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(headers.webhook_timestamp, "1614265330");
    }

    /// Standard Webhooks' Rust library, `test_sign` in `libraries/rust/src/lib.rs`.
    #[test]
    fn standard_webhooks_rust_library_vector() {
        let headers = sign(
            &secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        )
        .expect("valid secret");
        assert_eq!(
            headers.webhook_signature,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    /// Computed independently with Python's `hmac`/`hashlib`/`base64` modules:
    /// `hmac.new(secret.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()` and
    /// `base64.b64encode(hmac.new(bytes(range(32)), f"{id}.1767225600.".encode() + body,
    /// hashlib.sha256).digest())`. The same vector is in docs/RECEIVING.md.
    const AV_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const AV_DELIVERY: &str = "0194f1a2-5b3c-7d4e-8f60-718293a4b5c6";
    const AV_TIMESTAMP: i64 = 1_767_225_600;
    const AV_BODY: &[u8] = br#"{"id":"0194f1a2-5b3c-7d4e-8f60-0123456789ab","type":"alert.fired","created_at":"2026-01-01T00:00:00.000Z","org":"demo","data":{"severity":"high"}}"#;

    #[test]
    fn agentvista_vector() {
        let headers =
            sign(&secret(AV_SECRET), AV_DELIVERY, AV_TIMESTAMP, AV_BODY).expect("valid secret");
        assert_eq!(
            headers,
            SignatureHeaders {
                agentvista_signature: "t=1767225600,v1=79717ce55b0581997cdefb3c161411c6e06a445bf3152333399406db4279b1f4".to_owned(),
                webhook_id: AV_DELIVERY.to_owned(),
                webhook_timestamp: "1767225600".to_owned(),
                webhook_signature: "v1,pK9W5yZYxMlZp567iDSyIstVR/eXS+s2M4Od2lxx9sU=".to_owned(),
            }
        );
        let pairs = headers.pairs();
        assert_eq!(pairs[0].0, "x-agentvista-signature");
        assert_eq!(
            pairs[3],
            ("webhook-signature", headers.webhook_signature.as_str())
        );
    }

    #[test]
    fn every_input_changes_the_signatures_it_covers() {
        let base = sign(&secret(AV_SECRET), AV_DELIVERY, AV_TIMESTAMP, AV_BODY).expect("base");
        let body = sign(&secret(AV_SECRET), AV_DELIVERY, AV_TIMESTAMP, b"{}").expect("body");
        let time = sign(&secret(AV_SECRET), AV_DELIVERY, AV_TIMESTAMP + 1, AV_BODY).expect("t");
        let other = SigningSecret::generate();
        let key = sign(&other, AV_DELIVERY, AV_TIMESTAMP, AV_BODY).expect("secret");
        for changed in [&body, &time, &key] {
            assert_ne!(changed.agentvista_signature, base.agentvista_signature);
            assert_ne!(changed.webhook_signature, base.webhook_signature);
        }
        assert_eq!(time.webhook_timestamp, "1767225601");
        assert!(time.agentvista_signature.starts_with("t=1767225601,v1="));

        // The delivery id is covered by the Standard Webhooks signature only.
        let id = sign(&secret(AV_SECRET), "other-id", AV_TIMESTAMP, AV_BODY).expect("id");
        assert_eq!(id.agentvista_signature, base.agentvista_signature);
        assert_ne!(id.webhook_signature, base.webhook_signature);
        assert_eq!(id.webhook_id, "other-id");
    }

    #[test]
    fn the_agentvista_key_is_the_whole_secret_string() {
        // Not the decoded key, not the part after `whsec_`: every byte of the string.
        let headers = sign(&secret(AV_SECRET), AV_DELIVERY, AV_TIMESTAMP, AV_BODY).expect("ok");
        let mut mac = HmacSha256::new_from_slice(AV_SECRET.as_bytes()).expect("key");
        mac.update(b"1767225600.");
        mac.update(AV_BODY);
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            headers.agentvista_signature,
            format!("t=1767225600,v1={expected}")
        );
    }

    #[test]
    fn malformed_secrets_are_errors_that_do_not_quote_them() {
        let cases = [
            ("", SigningError::MissingPrefix),
            ("sk_live_c2VjcmV0LXN0dWZm", SigningError::MissingPrefix),
            (
                "WHSEC_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                SigningError::MissingPrefix,
            ),
            ("whsec_", SigningError::EmptyKey),
            ("whsec_not base64 at all!", SigningError::InvalidBase64),
            (
                "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                SigningError::InvalidBase64,
            ),
            (
                "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
                SigningError::InvalidBase64,
            ),
            ("whsec_-_-_", SigningError::InvalidBase64),
        ];
        for (raw, expected) in cases {
            let err = sign(&secret(raw), AV_DELIVERY, AV_TIMESTAMP, AV_BODY)
                .expect_err("malformed secret must be refused");
            assert_eq!(err, expected, "{raw:?}");
            let shown = format!("{err} {err:?}");
            if let Some(material) = raw.strip_prefix("whsec_").filter(|m| !m.is_empty()) {
                assert!(!shown.contains(material.trim()), "{shown}");
            }
            assert!(!shown.contains("sk_live"), "{shown}");
        }
    }

    fn received(h: &SignatureHeaders) -> ReceivedSignatures<'_> {
        ReceivedSignatures {
            agentvista_signature: Some(&h.agentvista_signature),
            webhook_id: Some(&h.webhook_id),
            webhook_timestamp: Some(&h.webhook_timestamp),
            webhook_signature: Some(&h.webhook_signature),
        }
    }

    #[test]
    fn verify_accepts_what_sign_makes_and_nothing_else() {
        let s = SigningSecret::generate();
        let h = sign(&s, "dlv_1", 1_700_000_000, b"{}").expect("sign");
        let ok = verify(&s, &received(&h), b"{}", 1_700_000_100);
        assert!(ok.both(), "{ok:?}");

        let other = SigningSecret::generate();
        assert_eq!(
            verify(&other, &received(&h), b"{}", 1_700_000_100),
            Verification {
                agentvista: false,
                standard_webhooks: false
            }
        );
        let tampered = verify(&s, &received(&h), b"{ }", 1_700_000_100);
        assert!(!tampered.agentvista && !tampered.standard_webhooks);
        let stale = verify(&s, &received(&h), b"{}", 1_700_000_000 + 301);
        assert!(!stale.agentvista && !stale.standard_webhooks);

        // One scheme's header missing or wrong leaves the other's verdict alone.
        let mut only_standard = received(&h);
        only_standard.agentvista_signature = Some("t=1700000000,v1=00");
        assert_eq!(
            verify(&s, &only_standard, b"{}", 1_700_000_000),
            Verification {
                agentvista: false,
                standard_webhooks: true
            }
        );
        let mut other_id = received(&h);
        other_id.webhook_id = Some("dlv_2");
        assert_eq!(
            verify(&s, &other_id, b"{}", 1_700_000_000),
            Verification {
                agentvista: true,
                standard_webhooks: false
            }
        );
        // Several signatures (as during a key rotation): any one matching passes.
        let both = format!("v1,AAAA {}", h.webhook_signature);
        let mut rotated = received(&h);
        rotated.webhook_signature = Some(&both);
        assert!(verify(&s, &rotated, b"{}", 1_700_000_000).standard_webhooks);
        assert!(!verify(&s, &ReceivedSignatures::default(), b"{}", 1_700_000_000).agentvista);
        // A timestamp at the ends of the range is refused, never an overflow.
        let mut extreme = received(&h);
        let min = format!("t={},v1=00", i64::MIN);
        extreme.agentvista_signature = Some(&min);
        extreme.webhook_timestamp = Some("-9223372036854775808");
        assert!(!verify(&s, &extreme, b"{}", i64::MAX).both());
    }

    #[test]
    fn generated_secrets_sign() {
        let headers = sign(&SigningSecret::generate(), AV_DELIVERY, 0, b"").expect("generated");
        assert!(headers.agentvista_signature.starts_with("t=0,v1="));
        assert_eq!(headers.agentvista_signature.len(), "t=0,v1=".len() + 64);
        assert_eq!(headers.webhook_signature.len(), "v1,".len() + 44);
    }

    // ---- The receiver guide ----

    fn repo_file(relative: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative)
    }

    const PY_VERIFIER: &str = "docs/receiving/verify_agentvista.py";
    const GUIDE: &str = "docs/RECEIVING.md";

    fn run_python_verifier(secret: &str, signature: &str, body: &str) -> i32 {
        let input = serde_json::json!({
            "secret": secret,
            "headers": { "x-agentvista-signature": signature },
            "body": body,
        });
        let mut child = Command::new("python3")
            .arg(repo_file(PY_VERIFIER))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.to_string().as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("python3 finishes");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "one line expected: {stdout:?}");
        out.status.code().expect("exit code")
    }

    #[test]
    fn python_snippet_accepts_our_signature() {
        let secret = SigningSecret::generate();
        let body = r#"{"id":"0194f1a2-5b3c-7d4e-8f60-0123456789ab","type":"alert.fired","created_at":"2026-01-01T00:00:00.000Z","org":"demo","data":{"note":"caf\u00e9 ☕"}}"#;
        let now = chrono::Utc::now().timestamp();
        let headers = sign(&secret, AV_DELIVERY, now, body.as_bytes()).expect("sign");

        assert_eq!(
            run_python_verifier(secret.expose(), &headers.agentvista_signature, body),
            0,
            "a fresh signature must verify"
        );
        let tampered = body.replace("alert.fired", "alert.fixed");
        assert_eq!(
            run_python_verifier(secret.expose(), &headers.agentvista_signature, &tampered),
            1,
            "a tampered body must not verify"
        );
        let stale = sign(&secret, AV_DELIVERY, now - 3600, body.as_bytes()).expect("sign");
        assert_eq!(
            run_python_verifier(secret.expose(), &stale.agentvista_signature, body),
            1,
            "an hour-old timestamp must not verify"
        );
    }

    /// The text between two marker lines, without them.
    fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
        let from = text.find(start).expect("start marker") + start.len();
        let to = from + text[from..].find(end).expect("end marker");
        let inner = &text[from..to];
        // Drop the rest of the start marker's line and the end marker's indentation.
        let inner = inner.split_once('\n').map_or("", |(_, rest)| rest);
        inner.rsplit_once('\n').map_or(inner, |(body, _)| body)
    }

    #[test]
    fn guide_contains_the_snippet_verbatim() {
        let script = std::fs::read_to_string(repo_file(PY_VERIFIER)).expect("read script");
        let guide = std::fs::read_to_string(repo_file(GUIDE)).expect("read guide");
        let snippet = between(&script, "# --- snippet start ---", "# --- snippet end ---").trim();
        assert!(
            snippet.starts_with("def verify_agentvista(") && snippet.contains("return "),
            "markers must enclose the function: {snippet:?}"
        );
        assert!(
            guide.contains(snippet),
            "docs/RECEIVING.md must contain the function of {PY_VERIFIER} verbatim"
        );
    }

    // --- rust snippet start ---
    /// Verify an `X-AgentVista-Signature` header against the raw request body.
    ///
    /// `now` is the current unix time in seconds; use 300 (five minutes) for `tolerance_seconds`.
    fn verify_agentvista(
        secret: &str,
        signature_header: &str,
        body: &[u8],
        tolerance_seconds: u64,
        now: i64,
    ) -> bool {
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in signature_header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) if timestamp.is_none() => timestamp = Some(value),
                Some(("t", _)) => return false, // more than one timestamp
                Some(("v1", value)) => candidates.push(value),
                _ => {} // other schemes: ignore
            }
        }
        let Some(timestamp) = timestamp else {
            return false;
        };
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(t) = timestamp.parse::<i64>() else {
            return false;
        };
        if now.abs_diff(t) > tolerance_seconds {
            return false; // too old (a replay?) or too far in the future
        }

        let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        let mac = mac
            .chain_update(timestamp.as_bytes())
            .chain_update(b".")
            .chain_update(body);
        candidates
            .iter()
            .any(|candidate| match hex::decode(candidate) {
                // verify_slice compares in constant time.
                Ok(tag) => mac.clone().verify_slice(&tag).is_ok(),
                Err(_) => false,
            })
    }
    // --- rust snippet end ---

    #[test]
    fn rust_snippet_verifies_and_is_in_the_guide() {
        let s = SigningSecret::generate();
        let now = 1_767_225_600;
        let h = sign(&s, AV_DELIVERY, now, AV_BODY).expect("sign");
        let header = h.agentvista_signature.as_str();
        let check = |header: &str, body: &[u8], at: i64| {
            verify_agentvista(s.expose(), header, body, 300, at)
        };
        assert!(check(header, AV_BODY, now));
        assert!(check(header, AV_BODY, now + 300));
        assert!(check(header, AV_BODY, now - 300));
        assert!(!check(header, AV_BODY, now + 301), "stale");
        assert!(!check(header, AV_BODY, now - 301), "from the future");
        assert!(!check(header, b"{}", now), "tampered body");
        assert!(!verify_agentvista(AV_SECRET, header, AV_BODY, 300, now));
        // Several v1 values (secret rotation): any one matching is enough.
        let v1 = header.split_once(",v1=").expect("v1").1;
        let zeros = "00".repeat(32);
        assert!(check(&format!("t={now},v1={zeros},v1={v1}"), AV_BODY, now));
        assert!(check(
            &format!("t={now}, v1={zeros}, v1={v1}"),
            AV_BODY,
            now
        ));
        assert!(!check(&format!("t={now},v1={zeros},v0={v1}"), AV_BODY, now));
        assert!(!check(&format!("t={now}"), AV_BODY, now));
        assert!(!check(&format!("{header},t={now}"), AV_BODY, now));
        assert!(!check(&format!("t=+{now},v1={v1}"), AV_BODY, now));
        assert!(!check("", AV_BODY, now));

        let snippet: String = between(
            include_str!("signing.rs"),
            "// --- rust snippet start ---",
            "// --- rust snippet end ---",
        )
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .map(|line| format!("{line}\n"))
        .collect();
        let guide = std::fs::read_to_string(repo_file(GUIDE)).expect("read guide");
        assert!(
            guide.contains(snippet.trim()),
            "docs/RECEIVING.md must contain the Rust verifier of signing.rs verbatim"
        );
    }
}
