//! Pure domain types and rules: no I/O here.

pub mod api_key;
pub mod attempt;
pub mod delivery;
pub mod endpoint;
pub mod job;
pub mod numbers;
pub mod org;
mod random;
pub mod recovery;
pub mod retention;
pub mod retry;
pub mod secret;
pub mod stats;
pub mod time;
pub mod validation;

pub use api_key::{ApiKey, KeyHash, KeyStrength, Role};
pub use attempt::{AttemptError, AttemptErrorKind, PostOutcome};
pub use delivery::{
    Attempt, AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, Event, Expect, Target, Trigger,
};
pub use endpoint::{Endpoint, EndpointChanges, NewEndpoint, Pause, PausedBy};
pub use job::{DeliveryJob, EventRef, Job, ScheduledAttempt};
pub use numbers::{DeliverySeq, EndpointNumber};
pub use org::OrgSlug;
pub use retention::{Clock, Retention};
pub use retry::RetryPolicy;
pub use secret::SigningSecret;
pub use time::now;
pub use validation::ValidationError;
