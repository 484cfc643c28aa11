//! The delivery pipeline: publishing (fan-out), the sender, and the recovery sweep.
//! The same code runs in the Lambdas (DynamoDB + SQS) and in the local server (embedded
//! store and queue).

pub mod publish;
pub mod sender;
pub mod sqs_batch;
pub mod sweep;

pub use publish::{Audience, PublishError, PublishRequest, Published, Publisher};
pub use sender::{Handled, SendError, Sender, SenderSettings};
