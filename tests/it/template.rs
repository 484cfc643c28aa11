//! What `template.yaml` must hold for operations (cfn-lint and `sam validate --lint`
//! check that it is valid; this checks that it says what the docs promise): every
//! function logs to a log group of its own with the retention parameter, the alarms
//! exist and notify the optional topic, metrics are configured.

use crate::common::events_dir;

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
        5,
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
