//! The table definition, for tests and local emulators. `template.yaml` declares the
//! same table for AWS; keep the two in step.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// The index of API keys by organisation (`keys list`).
pub const GSI1: &str = "gsi1";
/// The sparse index of held deliveries by endpoint (`HELD#<endpoint number>`), which an
/// endpoint's resume re-queues.
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

/// What `gsi1` carries besides keys: what a key list shows.
pub const GSI1_ATTRIBUTES: &[&str] = &["id", "org", "role", "hint", "created_at"];

/// `include: None` projects every attribute.
fn index(
    name: &str,
    pk: &str,
    sk: &str,
    include: Option<&[&str]>,
) -> Result<GlobalSecondaryIndex, String> {
    let projection = match include {
        Some(attributes) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(attributes.iter().map(|a| (*a).to_owned()).collect()))
            .build(),
        None => Projection::builder()
            .projection_type(ProjectionType::All)
            .build(),
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(projection)
        .build()
        .map_err(|e| e.to_string())
}

/// Create the table (on-demand, `pk`/`sk` plus `gsi1` and `gsi2`). Does not wait: emulators
/// create tables synchronously, and AWS deployments use `template.yaml` instead.
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
        .global_secondary_indexes(index(GSI1, "gsi1pk", "gsi1sk", Some(GSI1_ATTRIBUTES))?)
        // A resume re-queues held deliveries from it: whole deliveries.
        .global_secondary_indexes(index(GSI2, "gsi2pk", "gsi2sk", None)?)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(())
}
