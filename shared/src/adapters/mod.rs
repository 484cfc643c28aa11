//! Adapters behind the ports: DynamoDB for AWS, an embedded in-memory store for the local
//! server and tests.

pub mod dynamo;
pub mod http_client;
pub mod memory;
pub mod memory_queue;
pub mod private_file;
pub mod sqs;
pub mod state_file;
