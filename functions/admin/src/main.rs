//! `webhooks-admin`: the operator CLI. Works on the table named by `TABLE_NAME`, in AWS
//! or in any emulator the SDK's `AWS_ENDPOINT_URL` points at.

use clap::{Parser, Subcommand};
use shared::adapters::dynamo::{DynamoStore, schema};
use shared::config::{self, ProcessEnv};
use shared::domain::Role;
use shared::domain::time::format;
use shared::keys;
use std::process::ExitCode;

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
        /// Use this key instead of generating one.
        #[arg(long)]
        key: Option<String>,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long)]
        key: String,
    },
    /// List an organisation's keys: ids, roles and last four characters, never keys.
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
    shared::telemetry::init_local();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let table = config::table_name(&ProcessEnv).map_err(|e| e.to_string())?;
    let store = DynamoStore::from_env(&table).await;
    match cli.command {
        Command::Keys(KeysCommand::Create { org, role, key }) => {
            let (key, record) = keys::mint(&store, &org, role, key)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!(
                "created {} key {} for org {}",
                record.role, record.id, record.org
            );
            println!("{key}");
        }
        Command::Keys(KeysCommand::Revoke { key }) => {
            keys::revoke(&store, &key)
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked");
        }
        Command::Keys(KeysCommand::List { org }) => {
            for k in keys::list(&store, &org).await.map_err(|e| e.to_string())? {
                println!(
                    "{}  {:<9}  ...{}  {}",
                    k.id,
                    k.role,
                    k.hint,
                    format(&k.created_at)
                );
            }
        }
        Command::Table(TableCommand::Create) => {
            schema::create_table(store.client(), &table).await?;
            println!("created table {table}");
        }
    }
    Ok(())
}
