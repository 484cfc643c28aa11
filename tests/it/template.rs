//! What `template.yaml` must hold for operations (cfn-lint and `sam validate --lint`
//! check that it is valid; this checks that it says what the docs promise): every
//! function logs to a log group of its own with the retention parameter, the alarms
//! exist and notify the optional topic, metrics are configured.

use crate::common::{events_dir, fixture_json};
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::sqs::SqsEvent;

fn template() -> String {
    std::fs::read_to_string(events_dir().join("../template.yaml")).expect("template.yaml")
}

/// The resource blocks: (logical id, its lines), from the two-space-indented names under
/// `Resources:`.
fn resources(template: &str) -> Vec<(String, String)> {
    let body = template
        .split("\nResources:\n")
        .nth(1)
        .and_then(|rest| rest.split("\nOutputs:\n").next())
        .expect("a Resources section");
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        let is_name = line.starts_with("  ")
            && !line.starts_with("   ")
            && !line.trim_start().starts_with('#')
            && line.trim_end().ends_with(':');
        if is_name {
            blocks.push((line.trim().trim_end_matches(':').to_owned(), String::new()));
        } else if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    blocks
}

#[test]
fn every_function_logs_to_its_own_log_group_with_the_retention_parameter() {
    let template = template();
    let blocks = resources(&template);
    let functions: Vec<&(String, String)> = blocks
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .collect();
    assert_eq!(
        functions.len(),
        6,
        "{:?}",
        blocks.iter().map(|b| &b.0).collect::<Vec<_>>()
    );
    for (name, block) in functions {
        let group = format!("{}LogGroup", name.trim_end_matches("Function"));
        assert!(
            block.contains(&format!("LoggingConfig:\n        LogGroup: !Ref {group}\n")),
            "{name} logs to {group}"
        );
        let (_, log_group) = blocks
            .iter()
            .find(|(n, _)| *n == group)
            .unwrap_or_else(|| panic!("{group} is declared"));
        assert!(log_group.contains("Type: AWS::Logs::LogGroup"));
        assert!(log_group.contains("RetentionInDays: !Ref LogRetentionDays"));
    }
    assert!(template.contains("Tracing: Active"), "X-Ray stays on");
    assert!(template.contains(
        "METRICS_NAMESPACE: !If [MetricsOn, !Sub \"AgentVistaWebhooks/${AWS::StackName}\", \"\"]"
    ));
}

#[test]
fn the_alarms_watch_what_pages_and_notify_the_optional_topic() {
    let template = template();
    let blocks = resources(&template);
    for (alarm, watches, threshold) in [
        (
            "DeadLetterQueueAlarm",
            "ApproximateNumberOfMessagesVisible",
            "DeadLetterQueueAlarmThreshold",
        ),
        (
            "SenderErrorsAlarm",
            "MetricName: Errors",
            "SenderErrorsAlarmThreshold",
        ),
        (
            "SenderThrottlesAlarm",
            "MetricName: Throttles",
            "SenderThrottlesAlarmThreshold",
        ),
        (
            "QueueAgeAlarm",
            "ApproximateAgeOfOldestMessage",
            "QueueAgeAlarmSeconds",
        ),
        (
            "TableThrottlesAlarm",
            "WriteThrottleEvents",
            "TableThrottlesAlarmThreshold",
        ),
        ("Api5xxAlarm", "MetricName: 5xx", "Api5xxAlarmPercent"),
    ] {
        let (_, block) = blocks
            .iter()
            .find(|(n, _)| n == alarm)
            .unwrap_or_else(|| panic!("{alarm} is declared"));
        assert!(block.contains("Type: AWS::CloudWatch::Alarm"), "{alarm}");
        assert!(block.contains(watches), "{alarm} watches {watches}");
        assert!(
            block.contains(&format!("Threshold: !Ref {threshold}")),
            "{alarm}"
        );
        assert!(
            block.contains(
                "AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]"
            ),
            "{alarm} notifies the topic"
        );
        assert!(
            template.contains(&format!("\n  {threshold}:\n    Type: Number")),
            "{threshold} is a parameter"
        );
    }
    let (_, dashboard) = blocks
        .iter()
        .find(|(n, _)| n == "Dashboard")
        .expect("a dashboard");
    for shown in [
        "AttemptsSucceeded",
        "AttemptDuration",
        "ApproximateNumberOfMessagesVisible",
        "EndpointsPaused",
    ] {
        assert!(dashboard.contains(shown), "the dashboard shows {shown}");
    }
}

/// The binary `cargo lambda` builds for a function block (`Binary:` under its
/// `BuildProperties`).
fn binary(block: &str) -> Option<&str> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix("Binary: "))
}

/// Every `events/` fixture parses as the event of the function that receives it in the
/// stack, so `cargo lambda invoke <binary> --data-file events/<fixture>` works: an API
/// fixture as an HTTP API (v2) request routed to the function that serves its route, an
/// SQS fixture as the sender's batch.
#[test]
fn every_fixture_parses_as_its_functions_event() {
    let template = template();
    let blocks = resources(&template);
    let functions: Vec<(&str, &str)> = blocks
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .map(|(_, b)| (binary(b).expect("a Binary"), b.as_str()))
        .collect();
    let serving = |route: &str| -> &str {
        if route == "$default" {
            return default_route_function(&blocks);
        }
        let (method, path) = route.split_once(' ').expect("METHOD /path");
        let wanted = format!("Method: {method}\n            Path: {path}\n");
        functions
            .iter()
            .find(|(_, b)| b.contains(&wanted))
            .map(|(name, _)| *name)
            .unwrap_or_else(|| panic!("no function serves {route}"))
    };
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(events_dir()).expect("events/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let fixture = fixture_json(&name);
        let function = if let Some(route) = fixture["routeKey"].as_str() {
            serde_json::from_value::<ApiGatewayV2httpRequest>(fixture.clone())
                .unwrap_or_else(|e| panic!("{name}: not an HTTP API request: {e}"));
            serving(route)
        } else {
            serde_json::from_value::<SqsEvent>(fixture.clone())
                .unwrap_or_else(|e| panic!("{name}: not an SQS event: {e}"));
            "sender"
        };
        seen.push((name, function));
    }
    seen.sort();
    assert!(seen.len() >= 15, "{seen:?}");
    for (fixture, function) in &seen {
        assert!(
            [
                "endpoints-api",
                "deliveries-api",
                "publish-api",
                "sender",
                "fallback-api"
            ]
            .contains(function),
            "{fixture} goes to {function}"
        );
    }
}

/// The binary behind the HTTP API's `$default` route: the one function with an HttpApi
/// event that names no `Method` and no `Path` (SAM's way to declare it).
fn default_route_function(blocks: &[(String, String)]) -> &str {
    let serving: Vec<&str> = blocks
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .filter(|(_, b)| {
            b.split("          Type: HttpApi\n").skip(1).any(|event| {
                let properties: String = event
                    .lines()
                    .take_while(|l| l.starts_with("          "))
                    .collect();
                !properties.contains("Method:") && !properties.contains("Path:")
            })
        })
        .filter_map(|(_, b)| binary(b))
        .collect();
    assert_eq!(serving.len(), 1, "one $default route: {serving:?}");
    serving[0]
}

fn block<'a>(blocks: &'a [(String, String)], name: &str) -> &'a str {
    blocks
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_str())
        .unwrap_or_else(|| panic!("{name} is declared"))
}

/// Unrouted requests reach `fallback-api`, which needs and gets no access to the table
/// or the queue.
#[test]
fn the_default_route_reaches_the_fallback_function_without_permissions() {
    let template = template();
    let blocks = resources(&template);
    assert_eq!(default_route_function(&blocks), "fallback-api");
    let fallback = block(&blocks, "FallbackApiFunction");
    assert!(fallback.contains("ApiId: !Ref WebhooksHttpApi"));
    for absent in ["Policies:", "dynamodb:", "sqs:"] {
        assert!(!fallback.contains(absent), "{absent}");
    }
}

/// The stage writes one JSON line per request to a log group kept as long as the
/// functions' logs: the fields operations need, and never a request header.
#[test]
fn the_api_stage_writes_json_access_logs_with_the_stacks_retention() {
    let template = template();
    let blocks = resources(&template);
    let api = block(&blocks, "WebhooksHttpApi");
    assert!(api.contains("DestinationArn: !GetAtt HttpApiAccessLogGroup.Arn"));
    let format = api
        .split("Format: >-\n")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a Format")
        .trim();
    let fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(format).expect("the format is a JSON object");
    for (field, variable) in [
        ("requestId", "$context.requestId"),
        ("routeKey", "$context.routeKey"),
        ("status", "$context.status"),
        ("responseLatency", "$context.responseLatency"),
        ("integrationLatency", "$context.integrationLatency"),
        ("integrationError", "$context.integrationErrorMessage"),
        ("method", "$context.httpMethod"),
        ("path", "$context.path"),
        ("ip", "$context.identity.sourceIp"),
    ] {
        assert_eq!(
            fields.get(field).and_then(|v| v.as_str()),
            Some(variable),
            "{field}"
        );
    }
    for (field, value) in &fields {
        let value = value.as_str().expect("a string");
        assert!(value.starts_with("$context."), "{field}");
        // No header is logged: the Authorization header carries the API key.
        let lower = value.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization") && !lower.contains("header"),
            "{field}"
        );
    }
    let group = block(&blocks, "HttpApiAccessLogGroup");
    assert!(group.contains("Type: AWS::Logs::LogGroup"));
    assert!(group.contains("RetentionInDays: !Ref LogRetentionDays"));
}

/// Both queues keep a message 14 days, SQS's maximum, so nothing is dropped before an
/// operator redrives it; the API's base URL has no trailing slash.
#[test]
fn queues_keep_messages_14_days_and_the_api_url_has_no_trailing_slash() {
    let template = template();
    let blocks = resources(&template);
    for queue in ["DeliveryQueue", "DeliveryDeadLetterQueue"] {
        assert!(
            block(&blocks, queue).contains("MessageRetentionPeriod: 1209600\n"),
            "{queue}"
        );
    }
    let outputs = template.split("\nOutputs:\n").nth(1).expect("Outputs");
    let url = outputs
        .split("  ApiUrl:\n")
        .nth(1)
        .and_then(|o| o.lines().find_map(|l| l.trim().strip_prefix("Value: ")))
        .expect("an ApiUrl value");
    assert_eq!(
        url,
        "!Sub \"https://${WebhooksHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}\""
    );
}
