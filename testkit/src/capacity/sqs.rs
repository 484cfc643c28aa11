//! Pricing SQS requests. Amazon SQS pricing: every API action is a request; "a single
//! request can have from 1 to 10 messages, up to a maximum total payload of 256 KB"; "each
//! 64 KB chunk of a payload is billed as 1 request (for example, an API action with a
//! 256 KB payload is billed as 4 requests)". The payload is the messages' bodies and
//! message attributes (sent for `SendMessage*`, received for `ReceiveMessage`).

use super::{Access, Charge, Forward, Service, Shared, Upstream, access};
use serde_json::Value;

/// One billable request per started 64 KB of payload.
pub const CHUNK_BYTES: u64 = 64 * 1024;

/// Billable requests for one API call carrying `payload` bytes of messages.
pub fn billable_requests(payload: u64) -> u64 {
    payload.div_ceil(CHUNK_BYTES).max(1)
}

fn queue_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or(url).to_owned()
}

/// Body plus message attributes (name, data type and value) of one message, JSON form.
fn message_size(message: &Value) -> u64 {
    let body = message
        .get("MessageBody")
        .or_else(|| message.get("Body"))
        .and_then(Value::as_str)
        .map_or(0, |b| b.len() as u64);
    let attributes: u64 = message
        .get("MessageAttributes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, attribute)| {
            let field = |f: &str| {
                attribute
                    .get(f)
                    .and_then(Value::as_str)
                    .map_or(0, |s| s.len() as u64)
            };
            let binary = (field("BinaryValue") * 3) / 4;
            name.len() as u64 + field("DataType") + field("StringValue") + binary
        })
        .sum();
    body + attributes
}

fn record(
    shared: &Shared,
    op: &str,
    queue: String,
    payload: u64,
    messages: usize,
    upstream: &Upstream,
    request: &Forward,
) {
    shared.record_access(Access {
        caller: access::caller(&request.headers),
        service: Service::Sqs,
        operation: op.to_owned(),
        resource: queue.clone(),
        items: Vec::new(),
        return_values: None,
        select: None,
    });
    let empty = op == "ReceiveMessage" && messages == 0;
    let operation = if empty {
        "ReceiveMessage(empty)".to_owned()
    } else {
        op.to_owned()
    };
    let requests = billable_requests(payload);
    let mut why = format!("{messages} message(s), {payload} B payload -> {requests} request(s)");
    if !upstream.status.is_success() {
        why.push_str(&format!(" (answered {})", upstream.status));
    }
    shared.record(Charge {
        service: Service::Sqs,
        shape: operation.clone(),
        operation,
        resource: queue,
        wru: 0.0,
        rru: 0.0,
        sqs_requests: requests,
        why,
    });
}

/// AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Op>`), what aws-sdk-sqs sends.
pub(super) async fn handle_json(
    shared: &Shared,
    op: &str,
    request: &Forward,
) -> Result<Upstream, String> {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let upstream = shared.forward(request).await?;
    let queue = queue_name(body.get("QueueUrl").and_then(Value::as_str).unwrap_or(""));
    let (payload, messages) = match op {
        "SendMessage" => (message_size(&body), 1),
        "SendMessageBatch" => {
            let entries = body.get("Entries").and_then(Value::as_array);
            (
                entries.into_iter().flatten().map(message_size).sum(),
                entries.map_or(0, Vec::len),
            )
        }
        "ReceiveMessage" => {
            let answer = upstream.json();
            let received = answer.get("Messages").and_then(Value::as_array);
            (
                received.into_iter().flatten().map(message_size).sum(),
                received.map_or(0, Vec::len),
            )
        }
        _ => (0, 0),
    };
    record(shared, op, queue, payload, messages, &upstream, request);
    Ok(upstream)
}

fn form(request: &Forward) -> Vec<(String, String)> {
    let query = request
        .path_and_query
        .split_once('?')
        .map_or("", |(_, q)| q);
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let is_form = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("x-www-form-urlencoded"));
    if is_form {
        pairs.extend(url::form_urlencoded::parse(&request.body).into_owned());
    }
    pairs
}

/// The `Action` of an SQS query-protocol request (form or query string), if it is one.
pub(super) fn query_action(request: &Forward) -> Option<String> {
    let pairs = form(request);
    let looks_like_sqs = pairs
        .iter()
        .any(|(k, _)| k == "QueueUrl" || k == "QueueName")
        || request.path_and_query.contains("/queue")
        || pairs
            .iter()
            .any(|(k, v)| k == "Action" && v.ends_with("Queues"));
    pairs
        .into_iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v)
        .filter(|_| looks_like_sqs)
}

/// The older query protocol: the same pricing, message bodies read from the form (and,
/// for `ReceiveMessage`, from the XML answer's `<Body>` elements).
pub(super) async fn handle_query(
    shared: &Shared,
    op: &str,
    request: &Forward,
) -> Result<Upstream, String> {
    let pairs = form(request);
    let upstream = shared.forward(request).await?;
    let queue = pairs
        .iter()
        .find(|(k, _)| k == "QueueUrl")
        .map_or_else(String::new, |(_, v)| queue_name(v));
    let (payload, messages) = if op == "ReceiveMessage" {
        let xml = String::from_utf8_lossy(&upstream.body);
        let bodies: Vec<usize> = xml
            .split("<Body>")
            .skip(1)
            .map(|rest| rest.split("</Body>").next().map_or(0, str::len))
            .collect();
        (bodies.iter().sum::<usize>() as u64, bodies.len())
    } else {
        let bodies: Vec<u64> = pairs
            .iter()
            .filter(|(k, _)| k == "MessageBody" || k.ends_with(".MessageBody"))
            .map(|(_, v)| v.len() as u64)
            .collect();
        (bodies.iter().sum(), bodies.len())
    };
    record(shared, op, queue, payload, messages, &upstream, request);
    Ok(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_started_64_kb_of_payload_is_a_request() {
        assert_eq!(billable_requests(0), 1);
        assert_eq!(billable_requests(65_536), 1);
        assert_eq!(billable_requests(65_537), 2);
        assert_eq!(billable_requests(256 * 1024), 4);
    }

    #[test]
    fn message_size_counts_body_and_attributes() {
        let m = json!({"MessageBody": "hello", "MessageAttributes": {
            "k": {"DataType": "String", "StringValue": "vv"}}});
        assert_eq!(message_size(&m), 5 + 1 + 6 + 2);
    }
}
