//! [`NatsError`]: connecting to NATS and setting up JetStream.

/// Connecting to NATS, or creating or finding a JetStream stream or consumer, failed.
#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
pub struct NatsError {
    /// What was being done, naming the server, stream or consumer.
    pub doing: String,
    /// What the client said.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl NatsError {
    pub(crate) fn new(
        doing: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            doing: doing.into(),
            source: source.into(),
        }
    }
}
