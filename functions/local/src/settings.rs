//! What `webhooks-local` reads from the environment: every command's part
//! ([`LocalSettings`]) and the server's own ([`ServerSettings`], parsed when the server
//! starts, so `listen` does not depend on the sender's settings).

use crate::dev_ca;
use console::{BadFrameAncestor, FrameAncestors};
use shared::settings::{self, ConfigError, DeliverySettings, Env, LogSettings, OutboundSettings};
use std::path::PathBuf;
use thiserror::Error;

/// Every command's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSettings {
    pub log: LogSettings,
    /// Where the development CA is kept: `XDG_CACHE_HOME`, else `HOME`'s `.cache`.
    pub cache_dir: Option<PathBuf>,
}

impl LocalSettings {
    pub fn from_env(env: &impl Env) -> Self {
        Self {
            log: LogSettings::from_env(env),
            cache_dir: dev_ca::cache_dir(|name| env.get(name)),
        }
    }
}

/// The server's settings; its flags win over `outbound`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub delivery: DeliverySettings,
    pub outbound: OutboundSettings,
    /// `RETENTION_DAYS`
    pub retention_days: u32,
    /// `CONSOLE_FRAME_ANCESTORS`
    pub frame_ancestors: FrameAncestors,
    /// `LOCAL_QUEUE_LIMIT`: jobs queued at most before a publish is refused.
    pub queue_limit: usize,
}

/// A server setting that is malformed; the message names it.
#[derive(Debug, Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    FrameAncestors(#[from] BadFrameAncestor),
}

impl ServerSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, SettingsError> {
        Ok(Self {
            delivery: DeliverySettings::from_env(env)?,
            outbound: OutboundSettings::from_env(env)?,
            retention_days: settings::retention_days(env)?,
            frame_ancestors: FrameAncestors::parse(env.get("CONSOLE_FRAME_ANCESTORS").as_deref())?,
            queue_limit: settings::local_queue_limit(env)?,
        })
    }
}
