//! Assembling the service from adapters: used by every Lambda `main`, the local server
//! and the tests, so each entry point stays a few lines and none repeats another.

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::http_client::{OutboundClient, OutboundConfig};
use crate::adapters::sqs::SqsQueue;
use crate::api::deliveries::DeliveriesState;
use crate::api::endpoints::EndpointsState;
use crate::api::publish::PublishState;
use crate::api::{self, deliveries, endpoints, key, openapi, portal, publish};
use crate::config::{self, ConfigError, Env};
use crate::metrics::{EmfStdout, MetricsSink, NoMetrics};
use crate::pipeline::{Publisher, Sender, SenderSettings};
use crate::ports::{JobQueue, Store, WebhookTransport};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;

/// The routers' states over one store and one queue.
#[derive(Clone)]
pub struct Services {
    pub endpoints: EndpointsState,
    pub deliveries: DeliveriesState,
    pub publish: PublishState,
}

impl Services {
    pub fn new(store: Arc<impl Store>, queue: Arc<dyn JobQueue>) -> Self {
        let publisher = Arc::new(Publisher {
            endpoints: store.clone(),
            deliveries: store.clone(),
            events: store.clone(),
            queue: queue.clone(),
        });
        Self {
            endpoints: EndpointsState {
                endpoints: store.clone(),
                keys: store.clone(),
                queue: queue.clone(),
                publisher: publisher.clone(),
            },
            deliveries: DeliveriesState {
                keys: store.clone(),
                endpoints: store.clone(),
                deliveries: store.clone(),
                events: store.clone(),
                queue,
                stats: store.clone(),
                recoveries: store.clone(),
            },
            publish: PublishState {
                keys: store,
                publisher,
            },
        }
    }

    /// Every route family on one router, with the OpenAPI document (tests).
    pub fn router(&self) -> Router {
        api::finish(self.routes())
    }

    /// Every route family, not yet [`api::finish`]ed: the local server adds the console.
    pub fn routes(&self) -> Router {
        endpoints::routes(self.endpoints.clone())
            .merge(deliveries::routes(self.deliveries.clone()))
            .merge(publish::routes(self.publish.clone()))
            .merge(key::routes(self.endpoints.keys.clone()))
            .merge(portal::routes(self.endpoints.keys.clone()))
            .merge(openapi::routes())
    }
}

/// The sender over one store, queue and transport.
pub fn sender(
    store: Arc<impl Store>,
    queue: Arc<dyn JobQueue>,
    transport: Arc<dyn WebhookTransport>,
    settings: SenderSettings,
) -> Sender {
    Sender {
        endpoints: store.clone(),
        health: store.clone(),
        deliveries: store.clone(),
        events: store.clone(),
        schedule: store.clone(),
        stats: store.clone(),
        recoveries: store,
        queue,
        transport,
        settings,
        metrics: Arc::new(NoMetrics),
    }
}

pub fn user_agent() -> String {
    format!("AgentVista-Webhooks/{}", env!("CARGO_PKG_VERSION"))
}

/// `RETRY_SCHEDULE`, `CIRCUIT_BREAKER_THRESHOLD` and `DELIVERY_TIMEOUT_MS`.
pub fn sender_settings(env: &impl Env) -> Result<SenderSettings, ConfigError> {
    Ok(SenderSettings {
        retry: config::retry_policy(env)?,
        breaker_threshold: config::circuit_breaker_threshold(env)?,
        user_agent: user_agent(),
    })
}

/// The outbound client's settings: the allowed ranges and extra roots are passed in
/// (the local server's flags win over the environment), the timeout comes from
/// `DELIVERY_TIMEOUT_MS`.
pub fn outbound_config(
    env: &impl Env,
    allowed: Vec<ipnet::IpNet>,
    extra_root_certs: Vec<std::path::PathBuf>,
) -> Result<OutboundConfig, ConfigError> {
    let total = config::delivery_timeout(env)?;
    Ok(OutboundConfig {
        allowed,
        extra_root_certs,
        constrained_roots: Vec::new(),
        total_timeout: total,
        connect_timeout: total.min(Duration::from_secs(5)),
        user_agent: user_agent(),
    })
}

/// The AWS adapters every Lambda builds once per cold start.
pub struct Aws {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
}

impl Aws {
    /// `TABLE_NAME`, `DELIVERY_QUEUE_URL`, `RETENTION_DAYS`; endpoints and credentials
    /// from the SDK's standard chain.
    pub async fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let table = config::table_name(env)?;
        let queue_url = config::delivery_queue_url(env)?;
        let retention = config::retention_days(env)?;
        let sdk = aws_config::load_from_env().await;
        Ok(Self {
            store: Arc::new(
                DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)
                    .with_retention_days(retention),
            ),
            queue: Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url)),
        })
    }

    pub fn services(&self) -> Services {
        Services::new(self.store.clone(), self.queue.clone())
    }

    /// The sender with the SSRF-guarded client (`ALLOWED_TARGET_CIDRS`,
    /// `EXTRA_ROOT_CERTS`, `DELIVERY_TIMEOUT_MS`).
    pub fn sender(&self, env: &impl Env) -> Result<Sender, StartError> {
        let outbound = outbound_config(
            env,
            config::allowed_target_cidrs(env)?,
            config::extra_root_certs(env)?,
        )?;
        let client = OutboundClient::new(outbound).map_err(StartError::Client)?;
        let mut sender = sender(
            self.store.clone(),
            self.queue.clone(),
            Arc::new(client),
            sender_settings(env)?,
        );
        sender.metrics = metrics_sink(env);
        Ok(sender)
    }
}

/// EMF on stdout under `METRICS_NAMESPACE`; no metrics when it is unset or empty.
pub fn metrics_sink(env: &impl Env) -> Arc<dyn MetricsSink> {
    match env.get("METRICS_NAMESPACE") {
        Some(namespace) => Arc::new(EmfStdout { namespace }),
        None => Arc::new(NoMetrics),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(crate::adapters::http_client::OutboundBuildError),
}
