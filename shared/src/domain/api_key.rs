//! Organisation API keys and their roles.

use super::org::OrgSlug;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// What a key may do. Reads need `Admin` or `Member`, publishing `Admin` or `Publisher`,
/// every other write `Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
    Publisher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Publisher => "publisher",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "publisher" => Ok(Role::Publisher),
            other => Err(format!(
                "unknown role {other:?} (expected admin, member or publisher)"
            )),
        }
    }
}

/// SHA-256 of an API key, hex-encoded: the only form in which a key is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self(hex::encode(Sha256::digest(key.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compare in constant time, so a lookup never leaks how much of a hash matched.
    pub fn matches(&self, other: &KeyHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// A stored API key: everything but the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public identifier shown by `keys list`.
    pub id: Uuid,
    pub hash: KeyHash,
    pub org: OrgSlug,
    pub role: Role,
    /// The key's last four characters, so an operator can tell keys apart.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// When a request last passed with it, to within [`LAST_USED_PRECISION`]; `None`
    /// if never.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working (a portal session's token); `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The key that created it (a portal session's), so revoking that key revokes it
    /// too; `None` for keys the operator minted, and for sessions made before sessions
    /// recorded it.
    pub parent_id: Option<Uuid>,
}

/// How long a portal session lasts: `ttl_seconds` bounds and default.
pub const SESSION_TTL_SECONDS: std::ops::RangeInclusive<u32> = 60..=86_400;
pub const DEFAULT_SESSION_TTL_SECONDS: u32 = 3_600;

/// How fresh `last_used_at` is kept: recording every use would cost a write per
/// request; this costs one per key and hour at most.
pub const LAST_USED_PRECISION: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Shortest key the operator may choose for the local server; generated keys are much
/// longer.
pub const MIN_KEY_LEN: usize = 12;
const MAX_KEY_LEN: usize = 256;
/// What every key starts with.
pub const KEY_PREFIX: &str = "avk_";
/// Fewest characters after [`KEY_PREFIX`] in a key the operator chooses for a deployed
/// table: 32 characters of base64url are 192 bits if chosen at random (generated keys
/// carry 43, 256 bits).
pub const MIN_DEPLOYED_KEY_BODY: usize = 32;

/// How strong a key the operator chooses must be: a deployed table's keys are
/// reachable from the internet, the local server's from this machine only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStrength {
    /// The local server's `--key`: short, memorable keys such as `avk_local_admin`.
    Development,
    /// `webhooks-admin keys create --key`: `avk_` and at least
    /// [`MIN_DEPLOYED_KEY_BODY`] characters after it.
    Deployed,
}

impl ApiKey {
    /// A new random key: `avk_` + base64url of 32 random bytes.
    pub fn generate_secret() -> String {
        format!(
            "{KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(super::random::random_bytes::<32>())
        )
    }

    /// Check an operator-chosen key: printable ASCII without spaces, of a sane length,
    /// and as long as `strength` asks.
    pub fn check_chosen(key: &str, strength: KeyStrength) -> Result<(), String> {
        if strength == KeyStrength::Deployed
            && key
                .strip_prefix(KEY_PREFIX)
                .is_none_or(|body| body.len() < MIN_DEPLOYED_KEY_BODY)
        {
            return Err(format!(
                "a key for a deployed table must be {KEY_PREFIX} followed by at least \
                 {MIN_DEPLOYED_KEY_BODY} characters (leave out --key to generate a 256-bit one)"
            ));
        }
        if key.len() < MIN_KEY_LEN || key.len() > MAX_KEY_LEN {
            return Err(format!(
                "a key must be {MIN_KEY_LEN} to {MAX_KEY_LEN} characters long"
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a key may only hold printable ASCII characters, no spaces".into());
        }
        Ok(())
    }

    pub fn new(key: &str, org: &OrgSlug, role: Role, now: DateTime<Utc>) -> Self {
        let hint: String = key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Self {
            id: Uuid::now_v7(),
            hash: KeyHash::of(key),
            org: org.to_owned(),
            role,
            hint,
            created_at: now,
            last_used_at: None,
            expires_at: None,
            parent_id: None,
        }
    }

    /// Whether it may create keys (portal sessions): only a key without an end. A
    /// session that could mint could outlive itself, and the key that made it, for ever.
    pub fn may_mint(&self) -> bool {
        self.expires_at.is_none()
    }

    /// Whether it still works at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }

    /// Whether a use at `now` should be recorded: never recorded, or not within
    /// [`LAST_USED_PRECISION`].
    pub fn use_worth_recording(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at
            .is_none_or(|last| now - last >= LAST_USED_PRECISION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex_known_answer() {
        assert_eq!(
            KeyHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn matches_is_exact() {
        let a = KeyHash::of("avk_one_key_here");
        assert!(a.matches(&KeyHash::of("avk_one_key_here")));
        assert!(!a.matches(&KeyHash::of("avk_one_key_herf")));
    }

    #[test]
    fn generated_keys_are_long_random_and_valid() {
        let a = ApiKey::generate_secret();
        assert!(a.starts_with("avk_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, ApiKey::generate_secret());
        for strength in [KeyStrength::Development, KeyStrength::Deployed] {
            assert!(ApiKey::check_chosen(&a, strength).is_ok());
        }
    }

    #[test]
    fn chosen_keys_are_checked() {
        use KeyStrength::{Deployed, Development};
        assert!(ApiKey::check_chosen("avk_local_admin", Development).is_ok());
        assert!(ApiKey::check_chosen("short", Development).is_err());
        assert!(ApiKey::check_chosen("has a space in it", Development).is_err());

        // A deployed table's: `avk_` and 32 characters at least.
        let body31 = "a".repeat(31);
        assert!(ApiKey::check_chosen("avk_local_admin", Deployed).is_err());
        assert!(ApiKey::check_chosen(&format!("avk_{body31}"), Deployed).is_err());
        assert!(ApiKey::check_chosen(&format!("avk_{body31}b"), Deployed).is_ok());
        assert!(ApiKey::check_chosen(&format!("xyz_{body31}bc"), Deployed).is_err());
        assert!(ApiKey::check_chosen(&format!("avk_{body31} b"), Deployed).is_err());
        assert!(ApiKey::check_chosen(&format!("avk_{}", "a".repeat(300)), Deployed).is_err());
    }

    #[test]
    fn only_keys_without_an_end_may_mint() {
        let mut k = ApiKey::new(
            "avk_local_admin",
            &OrgSlug::parse("demo").expect("slug"),
            Role::Admin,
            Utc::now(),
        );
        assert!(k.may_mint());
        k.expires_at = Some(Utc::now() + chrono::TimeDelta::hours(1));
        assert!(!k.may_mint());
    }

    #[test]
    fn record_keeps_only_hash_and_hint() {
        let k = ApiKey::new(
            "avk_local_admin",
            &OrgSlug::parse("demo").expect("slug"),
            Role::Admin,
            Utc::now(),
        );
        assert_eq!(k.hint, "dmin");
        assert_eq!(k.hash, KeyHash::of("avk_local_admin"));
        assert!(!format!("{k:?}").contains("avk_local_admin"));
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Admin, Role::Member, Role::Publisher] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
