//! What each route family's handlers need, and nothing more. Every state gives the key
//! store to [`Caller`](super::extract::auth::Caller) through `FromRef`.

use crate::pipeline::{EndpointLifecycle, History, ManualRetries, Publisher, Recoveries};
use crate::ports::{AttemptStats, EndpointStore, KeyStore};
use axum::extract::FromRef;
use std::sync::Arc;

#[derive(Clone)]
pub struct EndpointsState {
    pub keys: Arc<dyn KeyStore>,
    pub endpoints: Arc<dyn EndpointStore>,
    /// PATCH (a resume re-queues held deliveries) and DELETE (the history is purged).
    pub lifecycle: Arc<EndpointLifecycle>,
    /// For `POST .../test`.
    pub publisher: Arc<Publisher>,
}

#[derive(Clone)]
pub struct DeliveriesState {
    pub keys: Arc<dyn KeyStore>,
    pub endpoints: Arc<dyn EndpointStore>,
    pub history: Arc<History>,
    pub retries: Arc<ManualRetries>,
    pub recoveries: Arc<Recoveries>,
    pub stats: Arc<dyn AttemptStats>,
}

#[derive(Clone)]
pub struct PublishState {
    pub keys: Arc<dyn KeyStore>,
    pub publisher: Arc<Publisher>,
}

macro_rules! keys_from {
    ($($state:ty),*) => {$(
        impl FromRef<$state> for Arc<dyn KeyStore> {
            fn from_ref(state: &$state) -> Self {
                state.keys.clone()
            }
        }
    )*};
}

keys_from!(EndpointsState, DeliveriesState, PublishState);
