//! The table definition, for tests and local emulators. `template.yaml` declares the
//! same table for AWS; keep the two in step.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// The one global secondary index: per-org key listings, and (with the delivery pipeline)
/// per-endpoint delivery history.
pub const GSI1: &str = "gsi1";
/// The sparse scheduling index: due deliveries by due time (`DUE#<shard>`) and paused
/// deliveries by endpoint (`PAUSED#<endpoint>`).
pub const GSI2: &str = "gsi2";

fn attribute(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| e.to_string())
}

/// Create the table (on-demand, `pk`/`sk` plus `gsi1` and `gsi2`). Does not wait: emulators create
/// tables synchronously, and AWS deployments use `template.yaml` instead.
fn index(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, String> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())
}

pub async fn create_table(client: &Client, table: &str) -> Result<(), String> {
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .attribute_definitions(attribute("gsi1pk")?)
        .attribute_definitions(attribute("gsi1sk")?)
        .attribute_definitions(attribute("gsi2pk")?)
        .attribute_definitions(attribute("gsi2sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index(GSI1, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(index(GSI2, "gsi2pk", "gsi2sk")?)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(())
}
