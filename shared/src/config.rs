//! Settings read from the environment. The Lambdas, the local server and the CLI read the
//! same names; a setting a process needs that is missing or malformed stops start-up with
//! an error naming it.

use ipnet::IpNet;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

/// Read a variable through `lookup` (the process environment in production, a map in
/// tests).
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// `TABLE_NAME`: the DynamoDB table every adapter works on.
pub fn table_name(env: &impl Env) -> Result<String, ConfigError> {
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
pub fn allowed_target_cidrs(env: &impl Env) -> Result<Vec<IpNet>, ConfigError> {
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
pub fn extra_root_certs(env: &impl Env) -> Result<Vec<PathBuf>, ConfigError> {
    env.get("EXTRA_ROOT_CERTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| check_root_cert("EXTRA_ROOT_CERTS", Path::new(p)))
        .collect()
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
}
