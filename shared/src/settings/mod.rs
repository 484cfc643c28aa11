//! Settings read from the environment: one typed struct per binary family, each parsed
//! and checked once at start. The Lambdas, the local server and the CLI read the same
//! names; a setting a process needs that is missing or malformed stops start-up with an
//! error naming it. Only [`ProcessEnv`] reads the process environment; tests parse
//! settings from a map.

mod env;
mod read;

pub use env::{ConfigError, Env, ProcessEnv};
pub use read::{check_root_cert, local_queue_limit, parse_cidrs, retention_days};

use crate::domain::RetryPolicy;
use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// `LOG_LEVEL` and `NO_COLOR`: how a process logs (every binary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// `LOG_LEVEL`: an `EnvFilter` directive (`info` when unset or invalid).
    pub level: Option<String>,
    /// `NO_COLOR` is set: no ANSI colours even on a terminal.
    pub no_color: bool,
}

impl LogSettings {
    pub fn from_env(env: &impl Env) -> Self {
        Self {
            level: env.get("LOG_LEVEL"),
            no_color: env.get("NO_COLOR").is_some(),
        }
    }
}

/// `TABLE_NAME`, `DELIVERY_QUEUE_URL` and `RETENTION_DAYS`: the AWS adapters every
/// Lambda builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub table_name: String,
    pub delivery_queue_url: String,
    pub retention_days: u32,
}

impl AwsSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: read::table_name(env)?,
            delivery_queue_url: read::delivery_queue_url(env)?,
            retention_days: read::retention_days(env)?,
        })
    }
}

/// `RETRY_SCHEDULE`, `CIRCUIT_BREAKER_THRESHOLD`, `DELIVERY_TIMEOUT_MS` and
/// `ENDPOINT_MAX_IN_FLIGHT`: how the sender makes its attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    /// Total time one POST may take.
    pub timeout: Duration,
    /// Attempts to one endpoint at once, at most, per sender process.
    pub endpoint_max_in_flight: u32,
}

impl DeliverySettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            retry: read::retry_policy(env)?,
            breaker_threshold: read::circuit_breaker_threshold(env)?,
            timeout: read::delivery_timeout(env)?,
            endpoint_max_in_flight: read::endpoint_max_in_flight(env)?,
        })
    }
}

/// `ALLOWED_TARGET_CIDRS` and `EXTRA_ROOT_CERTS`: what the sender may reach and trust
/// besides the SSRF rules and the system's roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundSettings {
    /// `None` when unset (the sender Lambda then allows no range, the local server
    /// loopback).
    pub allowed_target_cidrs: Option<Vec<IpNet>>,
    pub extra_root_certs: Vec<PathBuf>,
}

impl OutboundSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let allowed_target_cidrs = match env.get("ALLOWED_TARGET_CIDRS") {
            Some(_) => Some(read::allowed_target_cidrs(env)?),
            None => None,
        };
        Ok(Self {
            allowed_target_cidrs,
            extra_root_certs: read::extra_root_certs(env)?,
        })
    }
}

/// `METRICS_NAMESPACE`: where the Lambdas' metrics go (none when unset).
fn metrics_namespace(env: &impl Env) -> Option<String> {
    env.get("METRICS_NAMESPACE")
}

/// The three API Lambdas (`endpoints-api`, `deliveries-api`, `publish-api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub log: LogSettings,
    pub aws: AwsSettings,
    pub metrics_namespace: Option<String>,
    /// `CONSOLE_FRAME_ANCESTORS`, checked by `console::FrameAncestors::parse` where the
    /// console is served (`endpoints-api`).
    pub console_frame_ancestors: Option<String>,
}

impl ApiSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_env(env),
            aws: AwsSettings::from_env(env)?,
            metrics_namespace: metrics_namespace(env),
            console_frame_ancestors: env.get("CONSOLE_FRAME_ANCESTORS"),
        })
    }
}

/// The sender Lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderLambdaSettings {
    pub log: LogSettings,
    pub aws: AwsSettings,
    pub metrics_namespace: Option<String>,
    pub delivery: DeliverySettings,
    pub outbound: OutboundSettings,
}

impl SenderLambdaSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_env(env),
            aws: AwsSettings::from_env(env)?,
            metrics_namespace: metrics_namespace(env),
            delivery: DeliverySettings::from_env(env)?,
            outbound: OutboundSettings::from_env(env)?,
        })
    }
}

/// The scheduler Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerSettings {
    pub log: LogSettings,
    pub aws: AwsSettings,
}

impl SchedulerSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_env(env),
            aws: AwsSettings::from_env(env)?,
        })
    }
}

/// The operator CLI (`webhooks-admin`): `TABLE_NAME`; the SDK's own variables say where
/// the table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    pub log: LogSettings,
    pub table_name: String,
}

impl AdminSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            log: LogSettings::from_env(env),
            table_name: read::table_name(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAMBDA: [(&str, &str); 2] = [("TABLE_NAME", "t1"), ("DELIVERY_QUEUE_URL", "https://q")];

    #[test]
    fn each_family_reads_its_own_variables() {
        let api = ApiSettings::from_env(&LAMBDA).expect("api");
        assert_eq!(api.aws.table_name, "t1");
        assert_eq!(api.aws.retention_days, 30);
        assert_eq!(
            (api.metrics_namespace, api.console_frame_ancestors),
            (None, None)
        );
        // The scheduler never reads the sender's settings: a bad one does not stop it.
        let scheduler = [
            ("TABLE_NAME", "t1"),
            ("DELIVERY_QUEUE_URL", "https://q"),
            ("EXTRA_ROOT_CERTS", "/no/such.pem"),
        ];
        assert!(SchedulerSettings::from_env(&scheduler).is_ok());
        let err = SenderLambdaSettings::from_env(&scheduler).expect_err("no such file");
        assert!(err.to_string().contains("EXTRA_ROOT_CERTS"), "{err}");
        let admin = AdminSettings::from_env(&[("TABLE_NAME", "t2"), ("LOG_LEVEL", "debug")])
            .expect("admin");
        assert_eq!(admin.table_name, "t2");
        assert_eq!(admin.log.level.as_deref(), Some("debug"));
    }

    #[test]
    fn a_missing_setting_is_named() {
        let err = ApiSettings::from_env(&[("TABLE_NAME", "t1")]).expect_err("no queue");
        assert!(err.to_string().contains("DELIVERY_QUEUE_URL"), "{err}");
        let err = AdminSettings::from_env(&[("X", "y")]).expect_err("no table");
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
    }

    #[test]
    fn outbound_ranges_unset_differ_from_none() {
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            OutboundSettings::from_env(&none),
            Ok(OutboundSettings::default())
        );
        let set = OutboundSettings::from_env(&[("ALLOWED_TARGET_CIDRS", "none")]).expect("none");
        assert_eq!(set.allowed_target_cidrs, Some(vec![]));
        assert!(LogSettings::from_env(&[("NO_COLOR", "1")]).no_color);
    }
}
