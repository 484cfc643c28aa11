//! Webhook endpoints and the rules for changing them.

use super::SigningSecret;
use super::numbers::{DeliverySeq, EndpointNumber};
use super::org::OrgSlug;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A registered receiver of one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub org: OrgSlug,
    /// UUID v7, so ids sort by creation.
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub is_active: bool,
    /// Why it is inactive; `None` while active.
    pub paused_by: Option<PausedBy>,
    pub consecutive_failures: u32,
    pub secret: SigningSecret,
    /// Its number, unique across the service: its delivery history is stored under it,
    /// and delivery ids carry it.
    pub number: EndpointNumber,
    /// How many deliveries the endpoint has had (the last one's `seq`).
    pub delivery_seq: DeliverySeq,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A pause for the store to apply to an active endpoint: why, when, and for the circuit
/// breaker the failure count it needs (so a success that reset the count meanwhile keeps
/// the endpoint active).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub by: PausedBy,
    pub at: DateTime<Utc>,
    /// Pause only if `consecutive_failures` reached this; `None`: whatever the count.
    pub min_failures: Option<u32>,
}

/// What paused an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausedBy {
    /// An admin (`PATCH {"is_active": false}`).
    Manual,
    /// The circuit breaker: its consecutive failures reached the threshold.
    CircuitBreaker,
    /// The receiver answered 410 Gone.
    Gone,
}

impl PausedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::CircuitBreaker => "circuit_breaker",
            Self::Gone => "gone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Manual, Self::CircuitBreaker, Self::Gone]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A validated create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

/// A validated PATCH: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

impl Endpoint {
    /// A fresh, active endpoint with a new id and signing secret, and the number the
    /// store allocated for it.
    pub fn create(
        org: &OrgSlug,
        new: NewEndpoint,
        number: EndpointNumber,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            org: org.to_owned(),
            id: Uuid::now_v7(),
            number,
            url: new.url,
            description: new.description,
            event_types: new.event_types,
            is_active: true,
            paused_by: None,
            consecutive_failures: 0,
            secret: SigningSecret::generate(),
            delivery_seq: DeliverySeq::NONE,
            created_at: now,
            updated_at: now,
        }
    }
}

impl EndpointChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Resuming (`is_active: true`) clears the circuit breaker: the failure count restarts.
    pub fn resets_failures(&self) -> bool {
        self.is_active == Some(true)
    }

    /// Apply to an endpoint in memory. The DynamoDB adapter expresses the same rules as
    /// one conditional `UpdateItem`; the shared contract tests keep the two in step.
    pub fn apply(&self, endpoint: &mut Endpoint, now: DateTime<Utc>) {
        if self.is_empty() {
            return;
        }
        if let Some(url) = &self.url {
            endpoint.url.clone_from(url);
        }
        if let Some(description) = &self.description {
            endpoint.description.clone_from(description);
        }
        if let Some(types) = &self.event_types {
            endpoint.event_types.clone_from(types);
        }
        if let Some(active) = self.is_active {
            endpoint.is_active = active;
            // Pausing a paused endpoint keeps what paused it first.
            endpoint.paused_by = if active {
                None
            } else {
                endpoint.paused_by.or(Some(PausedBy::Manual))
            };
        }
        if self.resets_failures() {
            endpoint.consecutive_failures = 0;
        }
        endpoint.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now;
    use crate::domain::org::acme;

    fn sample() -> Endpoint {
        let mut e = Endpoint::create(
            &acme(),
            NewEndpoint {
                url: "https://example.com/a".into(),
                description: "d".into(),
                event_types: vec!["a.b".into()],
            },
            EndpointNumber(1),
            now(),
        );
        e.is_active = false;
        e.paused_by = Some(PausedBy::CircuitBreaker);
        e.consecutive_failures = 20;
        e
    }

    #[test]
    fn resuming_resets_the_failure_count() {
        let mut e = sample();
        let later = e.created_at + chrono::Duration::seconds(5);
        EndpointChanges {
            is_active: Some(true),
            ..Default::default()
        }
        .apply(&mut e, later);
        assert!(e.is_active);
        assert_eq!(e.paused_by, None);
        assert_eq!(e.consecutive_failures, 0);
        assert_eq!(e.updated_at, later);
        EndpointChanges {
            is_active: Some(false),
            ..Default::default()
        }
        .apply(&mut e, later);
        assert_eq!(e.paused_by, Some(PausedBy::Manual));
        assert_eq!(
            PausedBy::parse("circuit_breaker"),
            Some(PausedBy::CircuitBreaker)
        );
        assert_eq!(PausedBy::parse("other"), None);
    }

    #[test]
    fn pausing_keeps_the_count_and_empty_changes_touch_nothing() {
        let mut e = sample();
        let before = e.clone();
        EndpointChanges::default().apply(&mut e, before.created_at + chrono::Duration::seconds(1));
        assert_eq!(e, before);
        EndpointChanges {
            is_active: Some(false),
            description: Some("new".into()),
            ..Default::default()
        }
        .apply(&mut e, before.created_at);
        assert_eq!(e.consecutive_failures, 20);
        assert_eq!(
            e.paused_by,
            Some(PausedBy::CircuitBreaker),
            "what paused it first"
        );
        assert_eq!(e.description, "new");
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = sample();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = sample();
        assert!(a.id < b.id);
        assert_eq!(a.id.get_version_num(), 7);
    }
}
