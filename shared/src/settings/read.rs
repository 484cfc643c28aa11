//! Each variable read and checked: the settings structs (`super`) are built from these.

use super::env::{ConfigError, Env};
use crate::domain::RetryPolicy;
use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `TABLE_NAME`: the DynamoDB table every adapter works on.
pub(super) fn table_name(env: &impl Env) -> Result<String, ConfigError> {
    env.get("TABLE_NAME").ok_or(ConfigError::Missing {
        name: "TABLE_NAME",
        hint: "set it to the DynamoDB table's name (the stack output TableName)",
    })
}

/// `ALLOWED_TARGET_CIDRS` (or `--allow-target`): address ranges the sender may reach
/// despite the SSRF rules. `none` (alone) allows nothing; an empty list too.
pub fn parse_cidrs<S: AsRef<str>>(
    name: &'static str,
    items: &[S],
) -> Result<Vec<IpNet>, ConfigError> {
    let items: Vec<&str> = items
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
        .collect();
    if items == ["none"] {
        return Ok(Vec::new());
    }
    items
        .into_iter()
        .map(|raw| {
            raw.parse::<IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError::Malformed {
                    name,
                    reason: format!("{raw:?} is not a CIDR range such as 127.0.0.0/8 or ::1/128"),
                })
        })
        .collect()
}

/// `ALLOWED_TARGET_CIDRS` from the environment: comma-separated, empty by default.
pub(super) fn allowed_target_cidrs(env: &impl Env) -> Result<Vec<IpNet>, ConfigError> {
    let raw = env.get("ALLOWED_TARGET_CIDRS").unwrap_or_default();
    let items: Vec<&str> = raw.split(',').collect();
    parse_cidrs("ALLOWED_TARGET_CIDRS", &items)
}

/// `EXTRA_ROOT_CERTS` (or `--root-cert`): PEM files the sender trusts besides the
/// system's roots. Each must exist and hold at least one certificate.
pub fn check_root_cert(name: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    let pem = std::fs::read_to_string(path).map_err(|e| ConfigError::Malformed {
        name,
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::Malformed {
            name,
            reason: format!("{} holds no PEM certificate", path.display()),
        });
    }
    Ok(path.to_owned())
}

/// `EXTRA_ROOT_CERTS` from the environment: a comma-separated list of PEM paths.
pub(super) fn extra_root_certs(env: &impl Env) -> Result<Vec<PathBuf>, ConfigError> {
    env.get("EXTRA_ROOT_CERTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| check_root_cert("EXTRA_ROOT_CERTS", Path::new(p)))
        .collect()
}

/// `DELIVERY_QUEUE_URL`: the SQS queue of delivery jobs.
pub(super) fn delivery_queue_url(env: &impl Env) -> Result<String, ConfigError> {
    env.get("DELIVERY_QUEUE_URL").ok_or(ConfigError::Missing {
        name: "DELIVERY_QUEUE_URL",
        hint: "set it to the delivery queue's URL (the stack sets it for every function)",
    })
}

fn number<T>(env: &impl Env, name: &'static str, default: T, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match env.get(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<T>() {
            Ok(v) if v >= min => Ok(v),
            _ => Err(ConfigError::Malformed {
                name,
                reason: format!("{raw:?} is not a whole number of at least {min}"),
            }),
        },
    }
}

/// `RETRY_SCHEDULE`: comma-separated seconds between attempts (default
/// `5,300,1800,7200,18000,36000,36000`).
pub(super) fn retry_policy(env: &impl Env) -> Result<RetryPolicy, ConfigError> {
    let Some(raw) = env.get("RETRY_SCHEDULE") else {
        return Ok(RetryPolicy::default());
    };
    let delays = raw
        .split(',')
        .map(|part| part.trim().parse::<u64>().map(Duration::from_secs))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ConfigError::Malformed {
            name: "RETRY_SCHEDULE",
            reason: format!("{raw:?} is not a comma-separated list of whole seconds"),
        })?;
    Ok(RetryPolicy {
        delays,
        ..RetryPolicy::default()
    })
}

/// `CIRCUIT_BREAKER_THRESHOLD`: consecutive failures that pause an endpoint (default 20).
pub(super) fn circuit_breaker_threshold(env: &impl Env) -> Result<u32, ConfigError> {
    number(env, "CIRCUIT_BREAKER_THRESHOLD", 20, 1)
}

/// `DELIVERY_TIMEOUT_MS`: total time one POST may take (default 15 000).
pub(super) fn delivery_timeout(env: &impl Env) -> Result<Duration, ConfigError> {
    number(env, "DELIVERY_TIMEOUT_MS", 15_000u64, 100).map(Duration::from_millis)
}

/// `ENDPOINT_MAX_IN_FLIGHT`: attempts to one endpoint at once, at most, per sender
/// process (default 10).
pub(super) fn endpoint_max_in_flight(env: &impl Env) -> Result<u32, ConfigError> {
    number(env, "ENDPOINT_MAX_IN_FLIGHT", 10, 1)
}

/// `LOCAL_QUEUE_LIMIT`: jobs the local server's queue holds before it refuses a publish
/// (default 100 000).
pub fn local_queue_limit(env: &impl Env) -> Result<usize, ConfigError> {
    number(env, "LOCAL_QUEUE_LIMIT", 100_000, 1)
}

/// `RETENTION_DAYS`: how long events, deliveries and attempts are kept (default 30).
pub fn retention_days(env: &impl Env) -> Result<u32, ConfigError> {
    number(
        env,
        "RETENTION_DAYS",
        crate::domain::retention::DEFAULT_RETENTION_DAYS,
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_name_is_required_and_named_in_the_error() {
        assert_eq!(table_name(&[("TABLE_NAME", "t1")]), Ok("t1".into()));
        let err = table_name(&[("OTHER", "x")]).expect_err("missing");
        assert!(err.to_string().contains("TABLE_NAME"));
    }

    #[test]
    fn cidr_lists() {
        let nets =
            allowed_target_cidrs(&[("ALLOWED_TARGET_CIDRS", "127.0.0.0/8, ::1 ,10.1.2.3/8")])
                .expect("valid");
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]);
        assert_eq!(allowed_target_cidrs(&[("X", "")]), Ok(vec![]));
        assert_eq!(parse_cidrs("F", &["none"]), Ok(vec![]));
        let err = allowed_target_cidrs(&[("ALLOWED_TARGET_CIDRS", "127.0.0.0/8,bogus")])
            .expect_err("bogus");
        assert!(err.to_string().contains("ALLOWED_TARGET_CIDRS"));
        assert!(err.to_string().contains("bogus"));
    }

    #[test]
    fn root_certs_must_be_readable_pem() {
        let err = extra_root_certs(&[("EXTRA_ROOT_CERTS", "/nonexistent/x.pem")])
            .expect_err("missing file");
        assert!(err.to_string().contains("EXTRA_ROOT_CERTS"));
        assert_eq!(extra_root_certs(&[("X", "y")]), Ok(vec![]));
    }

    #[test]
    fn pipeline_settings() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(retry_policy(&none), Ok(RetryPolicy::default()));
        let p = retry_policy(&[("RETRY_SCHEDULE", "1, 1,2")]).expect("valid");
        assert_eq!(p.delays, [1, 1, 2].map(Duration::from_secs));
        assert_eq!(p.max_attempts(), 4);
        for bad in ["", "1,,2", "a", "-1"] {
            let err = retry_policy(&[("RETRY_SCHEDULE", bad)]);
            if !bad.is_empty() {
                assert!(err.expect_err(bad).to_string().contains("RETRY_SCHEDULE"));
            }
        }
        assert_eq!(circuit_breaker_threshold(&none), Ok(20));
        assert_eq!(
            circuit_breaker_threshold(&[("CIRCUIT_BREAKER_THRESHOLD", "3")]),
            Ok(3)
        );
        assert!(circuit_breaker_threshold(&[("CIRCUIT_BREAKER_THRESHOLD", "0")]).is_err());
        assert_eq!(delivery_timeout(&none), Ok(Duration::from_secs(15)));
        assert_eq!(retention_days(&[("RETENTION_DAYS", "7")]), Ok(7));
        assert_eq!(endpoint_max_in_flight(&none), Ok(10));
        assert_eq!(
            endpoint_max_in_flight(&[("ENDPOINT_MAX_IN_FLIGHT", "3")]),
            Ok(3)
        );
        assert_eq!(local_queue_limit(&none), Ok(100_000));
        assert_eq!(local_queue_limit(&[("LOCAL_QUEUE_LIMIT", "50")]), Ok(50));
        for bad in ["0", "ten", "-1"] {
            let err = endpoint_max_in_flight(&[("ENDPOINT_MAX_IN_FLIGHT", bad)]).expect_err(bad);
            assert!(err.to_string().contains("ENDPOINT_MAX_IN_FLIGHT"), "{err}");
            let err = local_queue_limit(&[("LOCAL_QUEUE_LIMIT", bad)]).expect_err(bad);
            assert!(err.to_string().contains("LOCAL_QUEUE_LIMIT"), "{err}");
        }
        assert!(
            delivery_queue_url(&none)
                .expect_err("missing")
                .to_string()
                .contains("DELIVERY_QUEUE_URL")
        );
    }
}
