//! The delivery pipeline: publishing (fan-out), the sender, the scheduler of attempts due
//! later than the queue can delay them, and the rules behind the API's other requests
//! (reading history, manual retries, recoveries, endpoint changes that start jobs).
//! The same code runs in the Lambdas (DynamoDB + SQS) and in the local server (embedded
//! store and queue).

pub mod batch;
pub mod history;
pub mod in_flight;
pub mod lifecycle;
pub mod lookup;
pub mod manual_retry;
pub mod publish;
pub mod queue_batch;
pub mod recovery;
pub mod scheduler;
pub mod sender;

pub use history::History;
pub use lifecycle::EndpointLifecycle;
pub use lookup::RequestError;
pub use manual_retry::ManualRetries;
pub use publish::{Audience, PublishError, PublishRequest, Published, Publisher};
pub use recovery::Recoveries;
pub use sender::{Handled, SendError, Sender, SenderSettings};
