//! The SQS adapter and the sender Lambda's batch handler against moto: jobs really go
//! through a queue, come back as an `SqsEvent`, and poison messages reach the DLQ.

use crate::common::*;
use crate::pipeline::{Options, outbound_client, settings};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::json;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::domain::job::JOB_VERSION;
use shared::domain::{DeliveryJob, DeliveryKey, DeliveryStatus, EndpointNumber, EventRef, Job};
use shared::pipeline::Sender;
use shared::ports::{DeliveryStore, JobQueue};
use shared::wiring::sqs_batch::handle_sqs_batch;
use shared::wiring::{self, Services};
use std::sync::Arc;
use std::time::Duration;
use testkit::{Behaviour, HttpsReceiver, Reply};

async fn sqs() -> aws_sdk_sqs::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "run through scripts/test.sh (moto)"
    );
    aws_sdk_sqs::Client::new(&aws_config::load_from_env().await)
}

/// A queue with a dead-letter queue after `max_receives`; returns (queue url, dlq url).
async fn queue_with_dlq(client: &aws_sdk_sqs::Client, max_receives: u32) -> (String, String) {
    let name = format!("it-{}", uuid::Uuid::now_v7());
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("dlq");
    let dlq_url = dlq.queue_url.expect("url");
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("arn");
    let redrive = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()});
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("queue");
    (queue.queue_url.expect("url"), dlq_url)
}

/// Receive up to ten messages as the Lambda service would hand them over, with their
/// system attributes (the sender reads `ApproximateReceiveCount`).
async fn receive(client: &aws_sdk_sqs::Client, url: &str) -> (SqsEvent, Vec<String>) {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive");
    let mut event = SqsEvent::default();
    let mut handles = Vec::new();
    for m in out.messages.unwrap_or_default() {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.body = m.body.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.attributes = m
            .attributes
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (name.as_str().to_owned(), value))
            .collect();
        handles.push(m.receipt_handle.unwrap_or_default());
        event.records.push(record);
    }
    (event, handles)
}

/// A queue with its dead-letter queue on moto, a DynamoDB store with the fixtures' keys,
/// and the sender over both, posting to an HTTPS receiver that always answers `reply`.
struct Rig {
    client: aws_sdk_sqs::Client,
    url: String,
    dlq_url: String,
    store: Arc<DynamoStore>,
    queue: Arc<SqsQueue>,
    receiver: HttpsReceiver,
    sender: Sender,
    _certs: testkit::TempDir,
}

async fn rig(reply: Reply, max_receives: u32) -> Rig {
    let client = sqs().await;
    let (url, dlq_url) = queue_with_dlq(&client, max_receives).await;
    let store = dynamo().await;
    seed_keys(store.as_ref()).await;
    let queue = Arc::new(SqsQueue::new(client.clone(), url.clone()));
    let receiver = HttpsReceiver::start(Behaviour::always(reply)).await;
    let certs = testkit::TempDir::new("it-sqs");
    let sender = wiring::sender(
        store.clone(),
        queue.clone(),
        Arc::new(outbound_client(receiver.write_ca_pem(certs.path()), true)),
        settings(&Options::default()),
    );
    Rig {
        client,
        url,
        dlq_url,
        store,
        queue,
        receiver,
        sender,
        _certs: certs,
    }
}

/// The message group SQS received a record with (a system attribute).
fn group(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

/// Every kind of job goes to the queue in its organisation's message group, in batches
/// of ten and more: automatic attempts (publish, retries, the scheduler's hand-offs, the
/// `/test` route), manual retries, resumes, recoveries and purges.
#[tokio::test]
async fn every_job_carries_its_organisation_as_message_group() {
    let client = sqs().await;
    let (url, _) = queue_with_dlq(&client, 3).await;
    let queue = SqsQueue::new(client.clone(), url.clone());
    let id = || uuid::Uuid::now_v7();
    let event = EventRef {
        id: "evt_1".into(),
        event_type: "alert.fired".into(),
        created_at: shared::domain::now(),
    };
    let mut jobs = Vec::new();
    for slug in ["acme", "globex", "initech", "umbrella-corp"] {
        let o = org(slug);
        let delivery = DeliveryJob::new(&o, id(), id(), event.clone(), Some("{}"));
        jobs.extend([
            delivery.clone().automatic(1),
            delivery.manual(id()),
            Job::ResumeEndpoint {
                v: JOB_VERSION,
                org: o.clone(),
                endpoint_id: id(),
            },
            Job::RecoverEndpoint {
                v: JOB_VERSION,
                org: o.clone(),
                recovery_id: id(),
            },
            Job::PurgeEndpoint {
                v: JOB_VERSION,
                org: o,
                endpoint_id: id(),
                endpoint_number: EndpointNumber(3),
            },
        ]);
    }
    queue
        .enqueue(jobs.iter().map(|j| (j.clone(), Duration::ZERO)).collect())
        .await
        .expect("enqueue");

    let mut received = Vec::new();
    while received.len() < jobs.len() {
        let (event, _) = receive(&client, &url).await;
        assert!(!event.records.is_empty(), "all {} jobs arrive", jobs.len());
        received.extend(event.records);
    }
    for record in &received {
        let job: Job = serde_json::from_str(record.body.as_deref().expect("body")).expect("a job");
        assert_eq!(group(record), Some(job.org().as_str()), "{job:?}");
    }
    let mut sent: Vec<String> = jobs.iter().map(Job::to_json).collect();
    let mut got: Vec<String> = received.iter().filter_map(|r| r.body.clone()).collect();
    sent.sort();
    got.sort();
    assert_eq!(sent, got);
}

/// The jobs the sender Lambda queues itself (a retry after a failed attempt) keep the
/// organisation's group, as the API's do.
#[tokio::test]
async fn the_senders_retries_stay_in_the_organisations_group() {
    let rig = rig(Reply::status(500), 3).await;
    let (client, url) = (&rig.client, rig.url.as_str());
    let router = Services::new(rig.store.clone(), rig.queue.clone()).router();
    let body =
        json!({"url": rig.receiver.url("/hook"), "event_types": ["alert.fired"]}).to_string();
    let created = send(&router, "endpoints-create.json", |e| set_body(e, &body)).await;
    assert_eq!(created.status, 201);
    assert_eq!(
        send(&router, "events-publish.json", |_| {}).await.json["deliveries"],
        1
    );

    let (first, handles) = receive(client, url).await;
    assert_eq!(first.records.len(), 1);
    assert_eq!(group(&first.records[0]), Some("acme"), "publish");
    let response = handle_sqs_batch(&rig.sender, first).await;
    assert!(response.batch_item_failures.is_empty());
    client
        .delete_message()
        .queue_url(url)
        .receipt_handle(&handles[0])
        .send()
        .await
        .expect("delete");
    assert_eq!(rig.receiver.requests().len(), 1);

    // The retry is due a second later (the harness's schedule).
    let mut retry = SqsEvent::default();
    for _ in 0..3 {
        if retry.records.is_empty() {
            retry = receive(client, url).await.0;
        }
    }
    assert_eq!(retry.records.len(), 1);
    let job: Job =
        serde_json::from_str(retry.records[0].body.as_deref().expect("body")).expect("a job");
    assert!(
        matches!(job, Job::Deliver { attempt: 2, .. }),
        "the second attempt: {job:?}"
    );
    assert_eq!(group(&retry.records[0]), Some("acme"), "retry");
}

#[tokio::test]
async fn jobs_flow_through_sqs_to_the_sender_and_dynamodb() {
    let Rig {
        client,
        url,
        store,
        queue,
        receiver,
        sender,
        ..
    } = rig(Reply::ok(), 3).await;
    let router = Services::new(store.clone(), queue.clone()).router();

    let body = json!({"url": receiver.url("/hook"), "event_types": ["alert.fired"]}).to_string();
    assert_eq!(
        send(&router, "endpoints-create.json", |e| set_body(e, &body))
            .await
            .status,
        201
    );
    for _ in 0..2 {
        let body =
            json!({"url": receiver.url("/other"), "event_types": ["alert.fired"]}).to_string();
        assert_eq!(
            send(&router, "endpoints-create.json", |e| set_body(e, &body))
                .await
                .status,
            201
        );
    }
    let published = send(&router, "events-publish.json", |_| {}).await;
    assert_eq!(published.json["deliveries"], 3);

    let (event, handles) = receive(&client, &url).await;
    assert_eq!(
        event.records.len(),
        3,
        "one job per delivery, sent with SendMessageBatch"
    );
    assert!(
        event.records.iter().all(|r| r
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str)
            == Some("1")),
        "handed out for the first time"
    );
    let response = handle_sqs_batch(&sender, event).await;
    assert!(response.batch_item_failures.is_empty());
    // All but one deleted, as the Lambda poller does after a successful batch; the last
    // one is left, as if its invocation had died after recording its attempt.
    let (_, delete) = handles.split_last().expect("three handles");
    for h in delete {
        client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(h)
            .send()
            .await
            .expect("delete");
    }
    assert_eq!(receiver.requests().len(), 3);

    // After the visibility timeout SQS hands it out again, and says so: the sender reads
    // the delivery, finds its attempt recorded, and posts nothing.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (again, handles) = receive(&client, &url).await;
    assert_eq!(again.records.len(), 1);
    assert_eq!(
        again.records[0]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(handles.len(), 1);
    let response = handle_sqs_batch(&sender, again).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(receiver.requests().len(), 3, "not posted again");

    for r in receiver.requests() {
        let id = r.header("webhook-id").expect("id").parse().expect("uuid");
        let key = DeliveryKey::from_id(id).expect("a delivery id");
        let d = store.get_delivery(key).await.expect("get").expect("stored");
        assert_eq!(d.status, DeliveryStatus::Succeeded);
        assert_eq!(d.attempt_count(), 1);
    }
}

#[tokio::test]
async fn poison_messages_end_in_the_dead_letter_queue() {
    let Rig {
        client,
        url,
        dlq_url,
        sender,
        ..
    } = rig(Reply::ok(), 1).await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("{\"job\":\"explode\"}")
        .send()
        .await
        .expect("send");

    let (event, _) = receive(&client, &url).await;
    assert_eq!(event.records.len(), 1);
    let id = event.records[0].message_id.clone().expect("id");
    let response = handle_sqs_batch(&sender, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(
        failed,
        [id],
        "reported, so SQS hands it back instead of deleting it"
    );

    // Not deleted: after the visibility timeout it is received again, over maxReceiveCount,
    // and the redrive policy moves it to the dead-letter queue.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (again, _) = receive(&client, &url).await;
    assert!(again.records.is_empty(), "moved out of the delivery queue");
    let (dead, _) = receive(&client, &dlq_url).await;
    assert_eq!(dead.records.len(), 1);
    assert_eq!(
        dead.records[0].body.as_deref(),
        Some("{\"job\":\"explode\"}")
    );
}
