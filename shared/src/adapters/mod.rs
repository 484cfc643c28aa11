//! Adapters behind the ports: DynamoDB and SQS for AWS, an embedded in-memory store and
//! queue for the local server and tests, and the outbound HTTP client.

pub mod dynamo;
pub mod http_client;
pub mod memory;
pub mod private_file;
pub mod sqs;
