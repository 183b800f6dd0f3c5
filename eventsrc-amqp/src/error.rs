//! [`AmqpError`]: what can go wrong connecting to the broker and declaring the exchange.

/// A connection, channel or exchange the [`Exchange`](crate::Exchange) could not set up.
///
/// Publishing reports its failures per message, as
/// [`PublishError`](eventsrc_core::relay::PublishError)s; this error is for the setup the
/// application does before the relay runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    /// An exchange name AMQP cannot carry (longer than 255 bytes).
    #[error("invalid exchange name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The broker could not be reached, or refused the connection (address, credentials,
    /// virtual host).
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The URL, with its password masked.
        url: String,
        /// What the client said.
        #[source]
        source: lapin::Error,
    },
    /// The channel could not be opened or put in confirm mode.
    #[error("opening a channel with publisher confirms: {source}")]
    Channel {
        /// What the client said.
        #[source]
        source: lapin::Error,
    },
    /// The broker refused to declare the exchange (it exists with another type or
    /// durability, or the user may not configure it).
    #[error("declaring the exchange `{exchange}`: {source}")]
    Declare {
        /// The exchange's name.
        exchange: String,
        /// What the broker said.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not answer in time.
    #[error("{what}: the broker did not answer within {seconds} s")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// How long it waited.
        seconds: u64,
    },
}

/// `url` with the password of its user information, if any, replaced by `***`, so that an
/// error or a log line can show it.
pub(crate) fn masked(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &user_info[..colon],
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn a_url_shows_no_password() {
        assert_eq!(
            masked("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            masked("amqp://p:a@ss@host/vhost?heartbeat=5"),
            "amqp://p:***@host/vhost?heartbeat=5"
        );
        assert_eq!(masked("amqp://guest@host"), "amqp://guest@host");
        assert_eq!(masked("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(masked("not a url"), "not a url");
    }
}
