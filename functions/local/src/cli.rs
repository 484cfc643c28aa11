//! The command line: the server's flags, or `listen` and its own.

use crate::listen::ListenOptions;
use clap::Parser;
use shared::domain::Role;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "webhooks-local",
    version,
    about = "Run AgentVista Webhooks locally, in memory",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub server: Options,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Receive this server's deliveries on your machine: an HTTPS receiver it trusts,
    /// an endpoint registered for it, every delivery verified and printed, optionally
    /// forwarded to your app.
    Listen(ListenOptions),
}

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Register an API key, as ORG:ROLE:KEY (repeatable). Without any, org `demo` gets a
    /// random admin key, printed at start.
    #[arg(long = "key", value_name = "ORG:ROLE:KEY", value_parser = parse_key_spec)]
    pub keys: Vec<KeySpec>,
    /// Address range the sender may reach despite the SSRF rules (repeatable; `none`
    /// allows nothing). Default: loopback only.
    #[arg(long = "allow-target", value_name = "CIDR")]
    pub allow_targets: Vec<String>,
    /// Extra PEM root certificate the sender trusts (repeatable).
    #[arg(long = "root-cert", value_name = "PATH")]
    pub root_certs: Vec<PathBuf>,
    /// Keep the store in this file across restarts (loaded at start if it exists, saved
    /// within 0.2 s of each change and at exit). Without it, everything is in memory.
    #[arg(long = "state", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct KeySpec {
    pub org: String,
    pub role: Role,
    pub key: String,
}

fn parse_key_spec(raw: &str) -> Result<KeySpec, String> {
    let mut parts = raw.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(org), Some(role), Some(key)) if !key.is_empty() => Ok(KeySpec {
            org: org.to_owned(),
            role: role.parse()?,
            key: key.to_owned(),
        }),
        _ => Err("expected ORG:ROLE:KEY, e.g. demo:admin:avk_local_admin".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_specs() {
        let k = parse_key_spec("demo:admin:avk:with:colons").expect("valid");
        assert_eq!(
            (k.org.as_str(), k.role, k.key.as_str()),
            ("demo", Role::Admin, "avk:with:colons")
        );
        assert!(parse_key_spec("demo:owner:avk_local_admin").is_err());
        assert!(parse_key_spec("demo:admin").is_err());
        assert!(parse_key_spec("demo:admin:").is_err());
    }

    #[test]
    fn listen_is_a_subcommand_with_its_own_flags() {
        let cli = Cli::try_parse_from([
            "webhooks-local",
            "listen",
            "--key",
            "avk_x",
            "--events",
            "a.b,c.d",
            "--forward-to",
            "http://localhost:8000/hooks",
        ])
        .expect("valid");
        let Some(Command::Listen(listen)) = cli.command else {
            panic!("listen expected");
        };
        assert_eq!(listen.events, ["a.b", "c.d"]);
        assert_eq!(listen.server, "http://127.0.0.1:3000");
        assert_eq!(listen.org, None, "the key's own by default");
        assert!(Cli::try_parse_from(["webhooks-local", "listen", "--key", "k"]).is_err());
        assert!(
            Cli::try_parse_from(["webhooks-local", "--listen", "127.0.0.1:1", "listen"]).is_err()
        );
    }
}
