//! The narrow traits the domain talks to storage through, one file per port. Each entry
//! point depends only on the ports it uses; every adapter passes the same contract tests
//! (`tests/`).

mod deliveries;
mod endpoints;
mod error;
mod events;
mod health;
mod keys;
mod queue;
mod recoveries;
mod schedule;
mod stats;
mod transport;

pub use deliveries::{DeliveryStore, RetryOf};
pub use endpoints::EndpointStore;
pub use error::{StoreError, StoreResult};
pub use events::EventStore;
pub use health::EndpointHealth;
pub use keys::KeyStore;
pub use queue::{Admission, JobQueue, QueueError, QueueFull};
pub use recoveries::RecoveryStore;
pub use schedule::Schedule;
pub use stats::AttemptStats;
pub use transport::WebhookTransport;

/// `Store`: every storage port at once, named once for both the trait and its blanket
/// implementation.
macro_rules! every_storage_port {
    ($($port:ident),+) => {
        /// Every storage port; both adapters implement all of them.
        pub trait Store: $($port +)+ 'static {}
        impl<T: $($port +)+ 'static> Store for T {}
    };
}

every_storage_port!(
    EndpointStore,
    KeyStore,
    EventStore,
    DeliveryStore,
    EndpointHealth,
    Schedule,
    AttemptStats,
    RecoveryStore
);
