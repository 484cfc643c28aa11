//! `webhooks-admin`: the operator CLI. Works on the table named by `TABLE_NAME`, in AWS
//! or in any emulator the SDK's `AWS_ENDPOINT_URL` points at.

use clap::{Parser, Subcommand};
use shared::adapters::dynamo::{DynamoStore, schema};
use shared::domain::time::format;
use shared::domain::{KeyStrength, OrgSlug, Role};
use shared::key_admin;
use shared::settings::{AdminSettings, ProcessEnv};
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "webhooks-admin",
    version,
    about = "Operate AgentVista Webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API keys: mint, revoke, list.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The table itself.
    #[command(subcommand)]
    Table(TableCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Mint a key for an organisation and print it (the only time it is shown).
    Create {
        #[arg(long)]
        org: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Use this key instead of generating one: `avk_` and at least 32 characters
        /// after it.
        #[arg(long)]
        key: Option<String>,
    },
    /// Revoke a key at once, with the portal sessions it created: by the key itself, or
    /// by its id (`keys list`) and org.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["key", "id"])))]
    Revoke {
        /// The key itself.
        #[arg(long)]
        key: Option<String>,
        /// The key's id, as `keys list` shows it (needs --org).
        #[arg(long, requires = "org")]
        id: Option<Uuid>,
        /// The organisation the key id belongs to.
        #[arg(long)]
        org: Option<String>,
    },
    /// List an organisation's keys, oldest first: id, role, last four characters,
    /// created, last used (to the hour), and for a portal session the key that created
    /// it and its end. Never the keys themselves.
    List {
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create the table in an emulator (AWS deployments get it from template.yaml).
    Create,
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match AdminSettings::from_env(&ProcessEnv) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    shared::telemetry::init_local(&settings.log);
    match run(cli, &settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: &AdminSettings) -> Result<(), String> {
    let table = &settings.table_name;
    let store = DynamoStore::from_env(table).await;
    match cli.command {
        Command::Keys(KeysCommand::Create { org, role, key }) => {
            let org = key_admin::parse_org(&org).map_err(|e| e.to_string())?;
            let (key, record) = key_admin::mint(&store, &org, role, key, KeyStrength::Deployed)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {} key {} for org {}",
                record.role, record.id, record.org
            );
            println!("{key}");
        }
        Command::Keys(KeysCommand::Revoke { key, id, org }) => {
            let revoked = match (key, id, org) {
                (Some(key), _, _) => key_admin::revoke(&store, &key).await,
                // A name that fails the slug rule owns no key.
                (None, Some(id), Some(org)) => match OrgSlug::parse(&org) {
                    Ok(org) => key_admin::revoke_by_id(&store, &org, id).await,
                    Err(_) => Err(key_admin::KeyError::NotFound),
                },
                // clap requires --key, or --id with --org.
                _ => Err(key_admin::KeyError::NotFound),
            }
            .map_err(|e| e.to_string())?;
            println!(
                "revoked key {} and {} portal session(s) it created",
                revoked.key.id, revoked.sessions
            );
        }
        Command::Keys(KeysCommand::List { org }) => {
            // A name that fails the slug rule owns no key.
            let listed = match OrgSlug::parse(&org) {
                Ok(slug) => key_admin::list(&store, &slug)
                    .await
                    .map_err(|e| e.to_string())?,
                Err(_) => Vec::new(),
            };
            if listed.is_empty() {
                eprintln!("no keys for org {org}");
            } else {
                println!(
                    "{:<36}  {:<9}  {:<7}  {:<24}  LAST USED",
                    "ID", "ROLE", "KEY", "CREATED"
                );
            }
            for k in listed {
                let session = k
                    .expires_at
                    .map(|t| {
                        let parent = k
                            .parent_id
                            .map_or_else(|| "an unrecorded key".to_owned(), |p| p.to_string());
                        format!("  (portal session of {parent} until {})", format(&t))
                    })
                    .unwrap_or_default();
                println!(
                    "{}  {:<9}  ...{:<4}  {:<24}  {}{session}",
                    k.id,
                    k.role,
                    k.hint,
                    format(&k.created_at),
                    k.last_used_at
                        .map_or_else(|| "never".to_owned(), |t| format(&t))
                );
            }
        }
        Command::Table(TableCommand::Create) => {
            schema::create_table(store.client(), table).await?;
            println!("created table {table}");
        }
    }
    Ok(())
}
