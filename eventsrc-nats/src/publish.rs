//! [`JetStream`]: the [`Publisher`] of a relay to NATS JetStream.

use std::time::Duration;

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream;
use eventsrc_core::relay::{Outgoing, PublishError, Publisher, headers, message_id};

use crate::NatsError;

/// Publishes a relay's events to NATS JetStream, each with `Nats-Msg-Id` set to the event id,
/// so that the server drops a copy published again within the stream's duplicate window.
///
/// A batch is pipelined: every message is sent, then every acknowledgement awaited. "No stream
/// takes this subject" and JetStream's own refusals are [refused](PublishError::refused) (the
/// relay retries, then parks); a timeout or a lost connection is
/// [unavailable](PublishError::unavailable) (the relay waits; the client reconnects by itself).
#[derive(Debug, Clone)]
pub struct JetStream {
    context: Context,
}

impl JetStream {
    /// Connects to the NATS server at `url` (`nats://127.0.0.1:4222`, or several separated by
    /// commas).
    pub async fn connect(url: &str) -> Result<Self, NatsError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| NatsError::new(format!("connecting to NATS at `{url}`"), e))?;
        Ok(Self::new(async_nats::jetstream::new(client)))
    }

    /// Publishes through a JetStream context the application already has.
    pub fn new(context: Context) -> Self {
        Self { context }
    }

    /// The JetStream context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Creates the stream `name` taking `subjects` (`events.>`), kept in files, with a duplicate
    /// window of `duplicate_window`, unless it exists (then it is left as it is).
    ///
    /// The window is how long the server remembers an event id: a relay that crashed after
    /// publishing and before its checkpoint publishes those events again when it restarts,
    /// and the server drops them if the restart is within the window. Give it more than a
    /// relay takes to come back (NATS's default is 2 minutes).
    pub async fn ensure_stream(
        &self,
        name: &str,
        subjects: &[&str],
        duplicate_window: Duration,
    ) -> Result<stream::Stream, NatsError> {
        self.context
            .get_or_create_stream(stream::Config {
                name: name.to_owned(),
                subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
                storage: stream::StorageType::File,
                duplicate_window,
                ..stream::Config::default()
            })
            .await
            .map_err(|e| NatsError::new(format!("creating the JetStream stream `{name}`"), e))
    }
}

impl Publisher for JetStream {
    async fn publish(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
        let mut acks = Vec::with_capacity(messages.len());
        for message in messages {
            let record = message.record;
            let mut publish = PublishMessage::build()
                .payload(record.payload.as_bytes().to_vec().into())
                .message_id(message_id(record.event_id));
            let mut bad_header = None;
            for (name, value) in headers::headers(record) {
                // A line break would end the header early (and start another): refuse it.
                if value.contains(['\r', '\n']) {
                    bad_header = Some(name);
                } else {
                    publish = publish.header(name, value);
                }
            }
            let refusal = match (bad_header, subject_problem(message.subject)) {
                (_, Some(problem)) => Some(format!(
                    "the subject `{}` of event {} {problem}",
                    message.subject.escape_debug(),
                    record.event_id
                )),
                (Some(name), None) => Some(format!(
                    "the `{name}` header of event {} would hold a line break, which NATS headers cannot carry",
                    record.event_id
                )),
                (None, None) => None,
            };
            acks.push(match refusal {
                Some(refusal) => Err(PublishError::refused(refusal)),
                None => Ok(self
                    .context
                    .send_publish(message.subject.to_owned(), publish)
                    .await),
            });
        }
        let mut results = Vec::with_capacity(acks.len());
        for ack in acks {
            results.push(match ack {
                Ok(Ok(ack)) => ack.await.map(drop).map_err(classify),
                Ok(Err(error)) => Err(classify(error)),
                Err(refused) => Err(refused),
            });
        }
        results
    }
}

/// What is wrong with `subject` as a subject to publish to, if anything: sent as it is, a
/// space would break the protocol line and a wildcard is not a subject.
fn subject_problem(subject: &str) -> Option<&'static str> {
    if subject.is_empty() {
        Some("is empty")
    } else if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("holds whitespace")
    } else if subject.split('.').any(str::is_empty) {
        Some("has an empty token (a leading, trailing or doubled dot)")
    } else if subject.split('.').any(|t| t == "*" || t == ">") {
        Some("holds a wildcard token (`*` or `>`)")
    } else {
        None
    }
}

/// Refused when the server answered no (no stream for the subject, a JetStream error such as
/// a message too large), unavailable when it did not answer.
fn classify(error: async_nats::jetstream::context::PublishError) -> PublishError {
    let answered = match error.kind() {
        PublishErrorKind::StreamNotFound
        | PublishErrorKind::WrongLastMessageId
        | PublishErrorKind::WrongLastSequence => true,
        PublishErrorKind::Other => std::error::Error::source(&error)
            .is_some_and(|s| s.is::<async_nats::jetstream::Error>()),
        _ => false,
    };
    if answered {
        PublishError::refused(error)
    } else {
        PublishError::unavailable(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_that_cannot_be_sent_are_named() {
        assert_eq!(subject_problem("a.b"), None);
        assert_eq!(subject_problem(""), Some("is empty"));
        assert_eq!(subject_problem("a b"), Some("holds whitespace"));
        assert!(subject_problem("a..b").is_some_and(|p| p.contains("empty token")));
        assert!(subject_problem("a.>").is_some_and(|p| p.contains("wildcard")));
    }
}
