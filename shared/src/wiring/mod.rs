//! Assembling the service from adapters: used by every Lambda `main`, the local server
//! and the tests, so each entry point stays a few lines and none repeats another.

pub mod sqs_batch;

use crate::adapters::dynamo::DynamoStore;
use crate::adapters::http_client::{OutboundBuildError, OutboundClient, OutboundConfig};
use crate::adapters::memory::MemoryStore;
use crate::adapters::memory::queue::MemoryQueue;
use crate::adapters::sqs::SqsQueue;
use crate::api::state::{DeliveriesState, EndpointsState, PublishState};
use crate::api::{
    self, caller_key, deliveries, endpoints, openapi, portal, publish, request_metrics,
};
use crate::metrics::{EmfStdout, MetricsSink, NoMetrics};
use crate::pipeline::in_flight::EndpointSlots;
use crate::pipeline::lifecycle;
use crate::pipeline::{
    EndpointLifecycle, History, ManualRetries, Publisher, Recoveries, Sender, SenderSettings,
};
use crate::ports::{JobQueue, Store, WebhookTransport};
use crate::settings::{ApiSettings, AwsSettings, DeliverySettings, SenderLambdaSettings};
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
                keys: store.clone(),
                endpoints: store.clone(),
                lifecycle: Arc::new(EndpointLifecycle {
                    endpoints: store.clone(),
                    queue: queue.clone(),
                    resume_recheck: lifecycle::RESUME_RECHECK,
                }),
                publisher: publisher.clone(),
            },
            deliveries: DeliveriesState {
                keys: store.clone(),
                endpoints: store.clone(),
                history: Arc::new(History {
                    endpoints: store.clone(),
                    deliveries: store.clone(),
                    events: store.clone(),
                }),
                retries: Arc::new(ManualRetries {
                    endpoints: store.clone(),
                    deliveries: store.clone(),
                    events: store.clone(),
                    queue: queue.clone(),
                }),
                recoveries: Arc::new(Recoveries {
                    endpoints: store.clone(),
                    deliveries: store.clone(),
                    recoveries: store.clone(),
                    queue,
                }),
                stats: store.clone(),
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
            .merge(caller_key::routes(self.endpoints.keys.clone()))
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
        in_flight: EndpointSlots::new(settings.endpoint_max_in_flight),
        settings,
        metrics: Arc::new(NoMetrics),
    }
}

pub fn user_agent() -> String {
    format!("AgentVista-Webhooks/{}", env!("CARGO_PKG_VERSION"))
}

/// The sender's settings: how it makes attempts, and how it names itself.
pub fn sender_settings(delivery: &DeliverySettings) -> SenderSettings {
    SenderSettings {
        retry: delivery.retry.clone(),
        breaker_threshold: delivery.breaker_threshold,
        user_agent: user_agent(),
        endpoint_max_in_flight: delivery.endpoint_max_in_flight,
    }
}

/// The outbound client's settings: the allowed ranges and extra roots are passed in
/// (the local server's flags win over the environment), `timeout` bounds a whole POST.
pub fn outbound_config(
    timeout: Duration,
    allowed: Vec<ipnet::IpNet>,
    extra_root_certs: Vec<std::path::PathBuf>,
) -> OutboundConfig {
    OutboundConfig {
        allowed,
        extra_root_certs,
        constrained_roots: Vec::new(),
        total_timeout: timeout,
        connect_timeout: timeout.min(Duration::from_secs(5)),
        user_agent: user_agent(),
    }
}

/// The Lambda functions of `template.yaml`, each named after its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    EndpointsApi,
    DeliveriesApi,
    PublishApi,
    Sender,
    Scheduler,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Self::EndpointsApi,
        Self::DeliveriesApi,
        Self::PublishApi,
        Self::Sender,
        Self::Scheduler,
    ];

    /// The binary's name (`BuildProperties.Binary` in template.yaml).
    pub fn name(self) -> &'static str {
        match self {
            Self::EndpointsApi => "endpoints-api",
            Self::DeliveriesApi => "deliveries-api",
            Self::PublishApi => "publish-api",
            Self::Sender => "sender",
            Self::Scheduler => "scheduler",
        }
    }

    /// The SDK's configuration loader for this function's clients: their user agent
    /// carries `app/<name>`, so each DynamoDB or SQS request says which function sent it
    /// (in CloudTrail's user agent, and in the capacity meter's log, which the IAM test
    /// checks against that function's role).
    pub fn sdk_loader(self) -> aws_config::ConfigLoader {
        let app = aws_config::AppName::new(self.name())
            // The names above are letters and dashes, which an app name accepts (a
            // unit test builds every one).
            .unwrap_or_else(|_| unreachable!("{} is a valid app name", self.name()));
        aws_config::from_env().app_name(app)
    }
}

/// The AWS adapters every Lambda builds once per cold start.
pub struct Aws {
    pub store: Arc<DynamoStore>,
    pub queue: Arc<SqsQueue>,
}

impl Aws {
    /// `function`'s clients on the table and queue `settings` name; endpoints and
    /// credentials from the SDK's standard chain.
    pub async fn new(settings: &AwsSettings, function: Function) -> Self {
        let sdk = function.sdk_loader().load().await;
        Self {
            store: Arc::new(
                DynamoStore::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    settings.table_name.clone(),
                )
                .with_retention_days(settings.retention_days),
            ),
            queue: Arc::new(SqsQueue::new(
                aws_sdk_sqs::Client::new(&sdk),
                settings.delivery_queue_url.clone(),
            )),
        }
    }

    pub fn services(&self) -> Services {
        Services::new(self.store.clone(), self.queue.clone())
    }

    /// The sender with the SSRF-guarded client, emitting its metrics.
    pub fn sender(&self, settings: &SenderLambdaSettings) -> Result<Sender, OutboundBuildError> {
        let outbound = outbound_config(
            settings.delivery.timeout,
            settings
                .outbound
                .allowed_target_cidrs
                .clone()
                .unwrap_or_default(),
            settings.outbound.extra_root_certs.clone(),
        );
        let client = OutboundClient::new(outbound)?;
        let mut sender = sender(
            self.store.clone(),
            self.queue.clone(),
            Arc::new(client),
            sender_settings(&settings.delivery),
        );
        sender.metrics = metrics_sink(settings.metrics_namespace.as_deref());
        Ok(sender)
    }
}

/// An API Lambda's router: the AWS adapters built once per cold start (and shared by
/// every invocation), the route families `routes` picks from their services, the JSON
/// 404 and 405, and every request measured.
pub async fn api_lambda(
    settings: &ApiSettings,
    function: Function,
    routes: impl FnOnce(Services) -> Router,
) -> Router {
    let aws = Aws::new(&settings.aws, function).await;
    request_metrics::measured(
        api::finish(routes(aws.services())),
        metrics_sink(settings.metrics_namespace.as_deref()),
    )
}

/// The `$default` route's router ([`api::unrouted`]): the route families `routes` picks,
/// over an empty embedded store and a queue nobody reads, which no request reaches (the
/// matched routes' handlers never run), so the function needs no AWS access at all.
pub fn fallback_lambda(routes: impl FnOnce(Services) -> Router) -> Router {
    let (queue, _) = MemoryQueue::new();
    api::unrouted(routes(Services::new(
        Arc::new(MemoryStore::new()),
        Arc::new(queue),
    )))
}

/// EMF on stdout under `namespace` (`METRICS_NAMESPACE`); no metrics without one.
pub fn metrics_sink(namespace: Option<&str>) -> Arc<dyn MetricsSink> {
    match namespace {
        Some(namespace) => Arc::new(EmfStdout {
            namespace: namespace.to_owned(),
        }),
        None => Arc::new(NoMetrics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_names_its_sdk_clients() {
        for function in Function::ALL {
            // Panics if the name is not a valid app name.
            let _ = function.sdk_loader();
        }
    }
}
