//! [`Exchange`]: the relay's publisher to a RabbitMQ exchange.

use std::fmt;
use std::time::Duration;

use eventsrc_core::RecordedEvent;
use eventsrc_core::relay::{Outgoing, PublishError, Publisher, headers, message_id};
use lapin::message::BasicReturnMessage;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::time::{Instant, timeout, timeout_at};

use crate::error::{AmqpError, masked};

/// The content type of every message: the payload is the stored JSON.
pub const CONTENT_TYPE: &str = "application/json";

/// AMQP's `delivery_mode` for a message the broker writes to disk.
const PERSISTENT: u8 = 2;

/// A RabbitMQ exchange the relay publishes to, with publisher confirms: a
/// [`Publisher`] for [`Relay`](eventsrc_core::relay::Relay).
///
/// Each event is one message, published with `mandatory` so that one no queue takes comes
/// back: its routing key is the relay's subject, its body the stored JSON, and its
/// properties say what it is:
///
/// | property | value |
/// | --- | --- |
/// | `message_id` | the event id ([`message_id`]): consumers drop copies by it |
/// | `type` | the event type (`lead.opened`) |
/// | `content_type` | `application/json` |
/// | `delivery_mode` | 2, persistent |
/// | `timestamp` | when the store recorded it, in seconds since the Unix epoch |
/// | `correlation_id` | the event's correlation id, when it has one |
/// | `headers` | every header of [`headers`](eventsrc_core::relay::headers::headers), as long strings |
///
/// A message the broker returns as unroutable or nacks is
/// [refused](PublishError::refused) (the relay retries it, then parks it). A closed channel or
/// connection, or a confirm that does not come within the
/// [`confirm_timeout`](Self::confirm_timeout), is [unavailable](PublishError::unavailable)
/// (the relay keeps trying, and parks nothing). An `Exchange` made with
/// [`connect`](Self::connect) opens a new connection on the next publish after its own was
/// lost, so a broker restart loses nothing; one made with [`new`](Self::new) from the
/// application's channel cannot, and reports every message unavailable until the application
/// makes a new `Exchange`.
///
/// Publishing to an exchange that does not exist makes the broker close the channel: that
/// too is unavailable (the relay waits, then gives the batch up with
/// [`RunError::Unavailable`](eventsrc_core::RunError::Unavailable)), since no message could
/// be published until the exchange is declared; declare it with
/// [`declare_topic`](Self::declare_topic) or beforehand.
pub struct Exchange {
    exchange: ShortString,
    /// Where to open a new connection after the current one was lost; `None` for an
    /// exchange made from the application's channel.
    url: Option<String>,
    /// Whether a new connection declares the exchange again.
    declare: bool,
    confirm_timeout: Duration,
    link: tokio::sync::Mutex<Link>,
}

/// The connection and channel in use. Publishes hold its lock, so that one batch's messages
/// are not interleaved with another's.
#[derive(Default)]
struct Link {
    /// The connection this exchange opened, if it opened one.
    connection: Option<Connection>,
    /// The channel, `None` once it was given up (a confirm timed out).
    channel: Option<Channel>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("exchange", &self.exchange.as_str())
            .field("url", &self.url.as_deref().map(masked))
            .field("declare", &self.declare)
            .field("confirm_timeout", &self.confirm_timeout)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// How long a publish waits for the broker's confirms, and a connect for the broker,
    /// unless [`confirm_timeout`](Self::confirm_timeout) says otherwise.
    pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

    /// Connects to the broker at `url` (`amqp://user:password@host:5672/%2f`) and opens a
    /// channel with publisher confirms, to publish to `exchange` (`""` is the default
    /// exchange, which routes by queue name). Declares nothing: see
    /// [`declare_topic`](Self::declare_topic).
    pub async fn connect(url: &str, exchange: &str) -> Result<Self, AmqpError> {
        let name = exchange_name(exchange)?;
        let (connection, channel) = open(url, Self::DEFAULT_CONFIRM_TIMEOUT).await?;
        Ok(Self {
            exchange: name,
            url: Some(url.to_owned()),
            declare: false,
            confirm_timeout: Self::DEFAULT_CONFIRM_TIMEOUT,
            link: tokio::sync::Mutex::new(Link {
                connection: Some(connection),
                channel: Some(channel),
            }),
        })
    }

    /// Publishes to `exchange` on a channel the application opened. The channel is put in
    /// confirm mode on the first publish if it is not already. If the channel or its
    /// connection closes, this `Exchange` cannot open another: every message is then
    /// unavailable.
    pub fn new(channel: Channel, exchange: &str) -> Result<Self, AmqpError> {
        Ok(Self {
            exchange: exchange_name(exchange)?,
            url: None,
            declare: false,
            confirm_timeout: Self::DEFAULT_CONFIRM_TIMEOUT,
            link: tokio::sync::Mutex::new(Link {
                connection: None,
                channel: Some(channel),
            }),
        })
    }

    /// Declares the exchange as a durable topic exchange (subscribers bind queues with
    /// patterns such as `events.*.lead.#`), now and on every new connection. Succeeds if it
    /// already exists as one; fails if it exists with another type or durability.
    pub async fn declare_topic(mut self) -> Result<Self, AmqpError> {
        if let Some(channel) = &self.link.get_mut().channel {
            declare_topic(channel, &self.exchange, self.confirm_timeout).await?;
        }
        self.declare = true;
        Ok(self)
    }

    /// How long a publish waits for the confirms of its messages before it reports those not
    /// yet confirmed unavailable (and the connection lost), and how long opening a new
    /// connection may take (default: [`DEFAULT_CONFIRM_TIMEOUT`](Self::DEFAULT_CONFIRM_TIMEOUT)).
    #[must_use]
    pub fn confirm_timeout(mut self, wait: Duration) -> Self {
        self.confirm_timeout = wait;
        self
    }

    /// The exchange's name.
    pub fn name(&self) -> &str {
        self.exchange.as_str()
    }

    /// The channel ready to publish on: the current one if it is open, else a new one on a
    /// new connection (when this exchange has a URL).
    async fn ready(&self, link: &mut Link) -> Result<Channel, String> {
        let open_now = link
            .channel
            .as_ref()
            .is_some_and(|c| c.status().connected())
            && link
                .connection
                .as_ref()
                .is_none_or(|c| c.status().connected());
        if open_now && let Some(channel) = &link.channel {
            if !channel.status().confirm() {
                within(
                    self.confirm_timeout,
                    "putting the channel in confirm mode",
                    channel.confirm_select(ConfirmSelectOptions::default()),
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            return Ok(channel.clone());
        }
        let Some(url) = &self.url else {
            return Err(format!(
                "the channel to the exchange `{}` is closed, and it was given by the application: \
                 there is no URL to connect again",
                self.exchange
            ));
        };
        forget(link, self.confirm_timeout).await;
        let (connection, channel) = open(url, self.confirm_timeout)
            .await
            .map_err(|e| e.to_string())?;
        if self.declare {
            declare_topic(&channel, &self.exchange, self.confirm_timeout)
                .await
                .map_err(|e| e.to_string())?;
        }
        tracing::info!(exchange = %self.exchange, url = %masked(url), "connected to the broker again");
        link.connection = Some(connection);
        link.channel = Some(channel.clone());
        Ok(channel)
    }

    async fn publish_batch(&self, messages: &[Outgoing<'_>]) -> Vec<Result<(), PublishError>> {
        let mut link = self.link.lock().await;
        let channel = match self.ready(&mut link).await {
            Ok(channel) => channel,
            Err(error) => {
                tracing::warn!(exchange = %self.exchange, %error, "the broker is not reachable");
                return messages
                    .iter()
                    .map(|_| Err(PublishError::unavailable(error.clone())))
                    .collect();
            }
        };

        // Send every message, then wait for the confirms: a batch costs about one round trip.
        enum Sent {
            Waiting(lapin::PublisherConfirm),
            Done(Result<(), PublishError>),
        }
        let mut sent = Vec::with_capacity(messages.len());
        let mut lost: Option<String> = None;
        for message in messages {
            if let Some(error) = &lost {
                sent.push(Sent::Done(Err(PublishError::unavailable(format!(
                    "not sent: {error}"
                )))));
                continue;
            }
            let Ok(routing_key) = ShortString::try_new(message.subject) else {
                sent.push(Sent::Done(Err(PublishError::refused(format!(
                    "the routing key `{}` is {} bytes long; AMQP takes at most 255",
                    message.subject,
                    message.subject.len()
                )))));
                continue;
            };
            let published = channel
                .basic_publish(
                    self.exchange.clone(),
                    routing_key,
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    message.record.payload.as_bytes(),
                    properties(message.record),
                )
                .await;
            match published {
                Ok(confirm) => sent.push(Sent::Waiting(confirm)),
                Err(error) => {
                    let error = error.to_string();
                    sent.push(Sent::Done(Err(PublishError::unavailable(error.clone()))));
                    lost = Some(error);
                }
            }
        }

        let deadline = Instant::now() + self.confirm_timeout;
        let mut timed_out = false;
        let mut results = Vec::with_capacity(messages.len());
        for (message, sent) in messages.iter().zip(sent) {
            let confirm = match sent {
                Sent::Done(result) => {
                    results.push(result);
                    continue;
                }
                Sent::Waiting(confirm) => confirm,
            };
            if timed_out {
                // Not waited for: had its confirm come, the relay would publish the message
                // that timed out again after this one, out of order. Drop it unpolled.
                drop(confirm);
                results.push(Err(PublishError::unavailable(format!(
                    "no confirm from the broker within {:?} for an earlier message",
                    self.confirm_timeout
                ))));
                continue;
            }
            let result = match timeout_at(deadline, confirm).await {
                Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Ok(()),
                Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(PublishError::refused(
                    returned_error(&self.exchange, &returned),
                )),
                Ok(Ok(Confirmation::Nack(returned))) => Err(PublishError::refused(format!(
                    "the broker nacked the message to `{}` on the exchange `{}`{}",
                    message.subject,
                    self.exchange,
                    returned
                        .map(|r| format!(": {} {}", r.reply_code, r.reply_text))
                        .unwrap_or_default()
                ))),
                Ok(Err(error)) => {
                    lost.get_or_insert_with(|| error.to_string());
                    Err(PublishError::unavailable(error.to_string()))
                }
                Err(_) => {
                    timed_out = true;
                    Err(PublishError::unavailable(format!(
                        "no confirm from the broker within {:?}",
                        self.confirm_timeout
                    )))
                }
            };
            results.push(result);
        }
        if timed_out {
            // The channel may still be open, but the broker does not answer on it: start again
            // on a new connection (when there is a URL to open one).
            tracing::warn!(exchange = %self.exchange, "the broker did not confirm in time");
            if self.url.is_some() {
                forget(&mut link, self.confirm_timeout).await;
            }
        } else if let Some(error) = lost {
            tracing::warn!(exchange = %self.exchange, %error, "lost the channel to the broker");
        }
        results
    }
}

impl Publisher for Exchange {
    fn publish(
        &self,
        messages: &[Outgoing<'_>],
    ) -> impl Future<Output = Vec<Result<(), PublishError>>> + Send {
        self.publish_batch(messages)
    }
}

/// The message properties of `record`: see [`Exchange`].
fn properties(record: &RecordedEvent) -> BasicProperties {
    let mut table = FieldTable::default();
    for (name, value) in headers::headers(record) {
        table.insert(name.into(), AMQPValue::LongString(value.into()));
    }
    let seconds = record.recorded_at.as_micros().div_euclid(1_000_000);
    let mut properties = BasicProperties::default()
        .with_message_id(message_id(record.event_id).into())
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(u64::try_from(seconds).unwrap_or(0))
        .with_headers(table);
    // An event type too long for the property is still in the headers.
    if let Ok(kind) = ShortString::try_new(&*record.event_type) {
        properties = properties.with_type(kind);
    }
    if let Some(id) = record.metadata.correlation_id {
        properties = properties.with_correlation_id(id.to_string().into());
    }
    properties
}

fn returned_error(exchange: &ShortString, returned: &BasicReturnMessage) -> String {
    format!(
        "the broker returned the message to `{}` on the exchange `{}`: {} {}",
        returned.delivery.routing_key, exchange, returned.reply_code, returned.reply_text
    )
}

fn exchange_name(exchange: &str) -> Result<ShortString, AmqpError> {
    ShortString::try_new(exchange).map_err(|_| AmqpError::InvalidName {
        name: exchange.to_owned(),
        reason: format!(
            "it is {} bytes long; AMQP takes at most 255",
            exchange.len()
        ),
    })
}

/// `future`, or [`AmqpError::Timeout`] if it takes longer than `wait`.
async fn within<T>(
    wait: Duration,
    what: &'static str,
    future: impl Future<Output = lapin::Result<T>>,
) -> Result<T, AmqpError> {
    match timeout(wait, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(AmqpError::Channel { source }),
        Err(_) => Err(AmqpError::Timeout {
            what,
            seconds: wait.as_secs(),
        }),
    }
}

/// A new connection to `url`, and a channel on it in confirm mode.
async fn open(url: &str, wait: Duration) -> Result<(Connection, Channel), AmqpError> {
    let properties = ConnectionProperties::default().with_connection_name("eventsrc-amqp".into());
    let connection = match timeout(wait, Connection::connect(url, properties)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(source)) => {
            return Err(AmqpError::Connect {
                url: masked(url),
                source,
            });
        }
        Err(_) => {
            return Err(AmqpError::Timeout {
                what: "connecting",
                seconds: wait.as_secs(),
            });
        }
    };
    let channel = within(wait, "opening a channel", connection.create_channel()).await?;
    within(
        wait,
        "putting the channel in confirm mode",
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok((connection, channel))
}

async fn declare_topic(
    channel: &Channel,
    exchange: &ShortString,
    wait: Duration,
) -> Result<(), AmqpError> {
    let declared = channel.exchange_declare(
        exchange.clone(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    );
    match timeout(wait, declared).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(AmqpError::Declare {
            exchange: exchange.to_string(),
            source,
        }),
        Err(_) => Err(AmqpError::Timeout {
            what: "declaring the exchange",
            seconds: wait.as_secs(),
        }),
    }
}

/// Drops the link's channel and closes its connection, if this exchange opened one and it is
/// still open (waiting at most `wait` for the broker to agree).
async fn forget(link: &mut Link, wait: Duration) {
    link.channel = None;
    if let Some(connection) = link.connection.take()
        && connection.status().connected()
    {
        let _ = timeout(
            wait,
            connection.close(320, "eventsrc-amqp: reconnecting".into()),
        )
        .await;
    }
}
