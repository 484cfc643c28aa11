//! The delivery pipeline: publishing (fan-out), the sender, and the scheduler of
//! attempts due later than the queue can delay them.
//! The same code runs in the Lambdas (DynamoDB + SQS) and in the local server (embedded
//! store and queue).

pub mod batch;
pub mod publish;
pub mod queue_batch;
pub mod scheduler;
pub mod sender;

pub use publish::{Audience, PublishError, PublishRequest, Published, Publisher};
pub use sender::{Handled, SendError, Sender, SenderSettings};
