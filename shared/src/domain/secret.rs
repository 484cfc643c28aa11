//! Endpoint signing secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

const PREFIX: &str = "whsec_";

/// An endpoint's signing secret: `whsec_` + base64 of 32 random bytes, so that the
/// Standard Webhooks libraries accept it as-is.
///
/// `Debug` and `Display` never print it, so it cannot leak into a log line or an error.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub fn generate() -> Self {
        Self(format!(
            "{PREFIX}{}",
            STANDARD.encode(super::random::random_bytes::<32>())
        ))
    }

    /// Wrap a secret read back from storage.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The secret exactly as returned to the user (the "raw" key of `X-AgentVista-Signature`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_standard_webhooks_shape_and_differ() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a, b);
        let encoded = a.expose().strip_prefix(PREFIX).expect("prefix");
        assert_eq!(STANDARD.decode(encoded).expect("base64").len(), 32);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = SigningSecret::generate();
        let printed = format!("{s:?}");
        assert!(!printed.contains(s.expose()));
        assert!(printed.contains("redacted"));
    }
}
