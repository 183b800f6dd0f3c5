//! The store's connection URL ([`PgUrl`]): libpq's URL grammar, plus the store's own `schema`
//! and `migrate` parameters, read once here for [`PgEventStore::connect`](crate::PgEventStore::connect) and
//! for `eventsrc`'s `Store::open`.

use std::fmt;
use std::str::FromStr;

use crate::options;

/// Where a URL without any host looks for the server's unix socket, in turn: the directory of
/// the Debian, Ubuntu and Red Hat packages, then the one of a server built from source. libpq
/// looks in the one directory it was built with; trying both finds either server.
#[cfg(unix)]
const SOCKET_DIRECTORIES: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// A parsed PostgreSQL connection URL: the driver's settings and the store's schema.
///
/// The grammar is libpq's:
/// `postgres://[user[:password]@][host][:port][,host[:port]...][/database][?key=value&...]`
/// (`postgresql://` too; the scheme in any case). Every part is percent-decoded. As in libpq,
/// a parameter in the query replaces the part of the URL it names (`?host=`, `port=`, `user=`,
/// `password=`, `dbname=`), and a later parameter replaces an earlier one. A host that starts
/// with `/` is the directory of a unix socket, written in the query
/// (`postgres:///app?host=/var/run/postgresql`) or percent-encoded in place of the host
/// (`postgres://%2Fvar%2Frun%2Fpostgresql/app`). A URL that names no host at all
/// (`postgres:///app`) connects through the unix socket in `/var/run/postgresql`, or failing
/// that in `/tmp`. The other parameters are `tokio_postgres`'s (`sslmode`,
/// `connect_timeout`, `options`, `target_session_attrs`, ...); an unknown one is an error.
///
/// libpq's other form, `key=value` pairs separated by spaces (`host=/var/run/postgresql
/// dbname=app schema=billing`, a value in single quotes when it holds spaces, `\` escaping
/// the next character), is read too, with the same parameters, `schema` included.
///
/// Two parameters are the store's own, taken out before the driver reads the rest:
///
/// | parameter | what it says | default |
/// |---|---|---|
/// | `schema=name` | the PostgreSQL schema the tables live in (see [`PgOptions::schema`](crate::PgOptions::schema) for the names accepted) | `eventsrc` |
/// | `migrate=false` | connect without creating or migrating the schema: refused unless it is this build's (see [`PgOptions::migrate`](crate::PgOptions::migrate)) | `true` |
///
/// Given twice, empty, or (`migrate`) anything but `true` or `false`, either is an error
/// whose [`parameter`](UrlError::parameter) names it.
///
/// The password never shows: [`Display`](fmt::Display), [`Debug`] and [`UrlError`] write
/// `***` in its place (in the query's `password=` too); everything else is shown as written,
/// so a URL without a password prints as it was given, and its `Display` parses back to an
/// equal `PgUrl`. A URL that does not parse may hold a password where libpq reads none: one
/// with a `/` that should have been percent-encoded (`postgres://app:s3c/ret@db/events` reads
/// as the host `app` on the port `s3c`). Its [`UrlError`] hides everything from the first `:`
/// to the last `@`. A URL that parses is shown as it was read: `postgres://db:5432/x@y`, the
/// database `x@y` on `db`, shows whole (so write a `/` in a password as `%2F`).
///
/// ```
/// use eventsrc_postgres::PgUrl;
/// use eventsrc_postgres::tokio_postgres::config::Host;
///
/// let url: PgUrl = "postgres://app:s3cret@db.internal:5433/events?schema=billing".parse()?;
/// assert_eq!(url.schema(), Some("billing"));
/// assert_eq!(url.config().get_hosts(), [Host::Tcp("db.internal".into())]);
/// assert_eq!(url.config().get_ports(), [5433]);
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal:5433/events?schema=billing");
/// assert!(url.migrate());
///
/// let url: PgUrl = "postgres://app@db.internal/events?schema=billing&migrate=false".parse()?;
/// assert!(!url.migrate());
/// let error = "postgres://app@db.internal/events?migrate=maybe".parse::<PgUrl>().unwrap_err();
/// assert_eq!(error.parameter(), Some("migrate"));
///
/// // A unix socket: in the query, or percent-encoded as the host.
/// for url in [
///     "postgres:///events?host=/var/run/postgresql",
///     "postgres://%2Fvar%2Frun%2Fpostgresql/events",
///     "postgres://localhost/events?host=/var/run/postgresql",
/// ] {
///     let url: PgUrl = url.parse()?;
///     assert_eq!(url.config().get_hosts(), [Host::Unix("/var/run/postgresql".into())]);
/// }
///
/// let url: PgUrl = "host=db.internal user=app password='s3 cret' schema=billing".parse()?;
/// assert_eq!(url.schema(), Some("billing"));
/// assert_eq!(url.config().get_password(), Some(&b"s3 cret"[..]));
/// assert_eq!(url.to_string(), "host='db.internal' user='app' password=*** schema='billing'");
/// # Ok::<(), eventsrc_postgres::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// Boxed, so that a URL stays small beside the other variants of `eventsrc`'s `StoreUrl`.
    config: Box<tokio_postgres::Config>,
    schema: Option<String>,
    migrate: bool,
    /// The URL as given, with `***` for the password.
    shown: String,
}

/// A PostgreSQL connection URL that does not parse, or names a schema this backend refuses.
///
/// Its [`Display`](fmt::Display) says what is wrong and what to write instead; the URL, with
/// `***` for its password, is in [`url`](Self::url).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL connection URL: {reason}")]
pub struct UrlError {
    url: Option<String>,
    reason: String,
    parameter: Option<&'static str>,
}

impl UrlError {
    fn new(url: &str, reason: impl Into<String>) -> Self {
        Self::at(url, Fault::from(reason.into()))
    }

    /// The error of `fault` in the URL shown as `url`.
    fn at(url: &str, fault: Fault) -> Self {
        Self {
            url: Some(url.to_owned()),
            reason: fault.reason,
            parameter: fault.parameter,
        }
    }

    /// A URL that could not be read far enough to be shown.
    fn unshown(reason: String) -> Self {
        Self {
            url: None,
            reason,
            parameter: None,
        }
    }

    /// The URL (or `key=value` string), with `***` for its password; `None` when it could
    /// not be read far enough to tell the password apart.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The store's own parameter at fault, `schema` or `migrate`, when the fault is in one of
    /// them; `None` when it is elsewhere (the driver's parameters included).
    pub fn parameter(&self) -> Option<&str> {
        self.parameter
    }
}

/// What is wrong with a URL, and the store's own parameter at fault, if it is one.
struct Fault {
    reason: String,
    parameter: Option<&'static str>,
}

impl From<String> for Fault {
    fn from(reason: String) -> Self {
        Self {
            reason,
            parameter: None,
        }
    }
}

/// What the driver says is wrong with a connection string: the cause under its "invalid
/// connection string".
fn driver_reason(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => cause.to_string(),
        None => error.to_string(),
    }
}

impl PgUrl {
    /// The schema named by the `schema` parameter, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Whether connecting creates or migrates the schema: `false` when the URL says
    /// `migrate=false` (see [`PgOptions::migrate`](crate::PgOptions::migrate)).
    pub fn migrate(&self) -> bool {
        self.migrate
    }

    /// The driver's settings: everything the URL says but the schema, the password included.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

fn is_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
}

/// The URL with `***` for the password.
impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The URL with `***` for the password, and the schema.
impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgUrl").field(&self.shown).finish()
    }
}

/// The pieces of a URL, cut where libpq cuts them, still percent-encoded.
struct Pieces<'a> {
    scheme: String,
    slashes: &'a str,
    /// Everything after the scheme's `:` and slashes.
    body: &'a str,
    credentials: Option<&'a str>,
    hosts: &'a str,
    path: Option<&'a str>,
    query: Option<&'a str>,
}

impl<'a> Pieces<'a> {
    /// Cuts `url` (`scheme:` already checked). The credentials end at the last `@` before the
    /// first `/`, so that a password with an `@` that should have been percent-encoded is
    /// still hidden whole.
    fn cut(scheme: &str, after: &'a str) -> Self {
        let (slashes, body) = match after.strip_prefix("//") {
            Some(body) => ("//", body),
            None => ("", after),
        };
        let head = &body[..body.find('/').unwrap_or(body.len())];
        let (credentials, rest) = match head.rfind('@') {
            Some(at) => (Some(&body[..at]), &body[at + 1..]),
            None => (None, body),
        };
        let hosts_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (hosts, rest) = rest.split_at(hosts_end);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Self {
            scheme: scheme.to_ascii_lowercase(),
            slashes,
            body,
            credentials,
            hosts,
            path: path.strip_prefix('/'),
            query,
        }
    }

    /// How a URL that did not parse is shown in its error: as [`shown`](Self::shown), except
    /// that a password holding a `/` that should have been percent-encoded ends the
    /// credentials early as libpq reads them, and would show. So when an `@` comes after
    /// where the credentials end, everything from the first `:` to the last `@` is hidden,
    /// which may hide more than the password but never shows it.
    ///
    /// A URL that parsed is shown as it was read (an `@` after the credentials is then part of
    /// the database name or of a parameter), so that it prints as given and parses back.
    fn shown_in_errors(&self) -> String {
        let at = self.credentials.map(str::len);
        if let Some(last) = self.body.rfind('@').filter(|last| Some(*last) != at) {
            let (before, after) = (&self.body[..last], &self.body[last + 1..]);
            if let Some((user, _)) = before.split_once(':') {
                return format!("{}:{}{user}:***@{after}", self.scheme, self.slashes);
            }
        }
        self.shown()
    }

    /// The URL as given, the scheme in lower case, with `***` for the password (after the
    /// user, and as the value of a `password` parameter).
    fn shown(&self) -> String {
        let mut shown = format!("{}:{}", self.scheme, self.slashes);
        if let Some(credentials) = self.credentials {
            match credentials.split_once(':') {
                Some((user, _)) => shown.push_str(&format!("{user}:***@")),
                None => shown.push_str(&format!("{credentials}@")),
            }
        }
        shown.push_str(self.hosts);
        if let Some(path) = self.path {
            shown.push('/');
            shown.push_str(path);
        }
        if let Some(query) = self.query {
            let shown_query: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((key, _)) if decode(key).is_ok_and(|key| key == "password") => {
                        format!("{key}=***")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            shown.push('?');
            shown.push_str(&shown_query.join("&"));
        }
        shown
    }
}

impl FromStr for PgUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let Some((scheme, after)) = url.split_once(':').filter(|(s, _)| is_scheme(s)) else {
            if url.contains('=') && !url.contains("://") {
                return Self::from_key_value(url);
            }
            // Not ours to show whole: it may hold a password.
            return Err(UrlError::unshown(
                "write `postgres://user@host/database` or `host=... dbname=...`".to_owned(),
            ));
        };
        let pieces = Pieces::cut(scheme, after);
        let in_errors = pieces.shown_in_errors();
        let fail = |fault: Fault| UrlError::at(&in_errors, fault);
        if pieces.slashes.is_empty() {
            return Err(UrlError::new(
                &in_errors,
                "write `postgres://user@host/database`, with the two slashes",
            ));
        }
        let settings = Settings::read(&pieces).map_err(fail)?;
        settings.build(pieces.shown(), &in_errors)
    }
}

impl PgUrl {
    /// Reads libpq's `key=value` form: `host=localhost dbname=app schema=billing`, a value
    /// in single quotes when it holds spaces, `\` escaping the next character.
    fn from_key_value(text: &str) -> Result<Self, UrlError> {
        let pairs = key_value_pairs(text).map_err(UrlError::unshown)?;
        let shown = pairs
            .iter()
            .map(|(key, value)| match key.as_str() {
                "password" => format!("{key}=***"),
                _ => format!("{key}={}", quote_value(value)),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut settings = Settings::default();
        for (key, value) in pairs {
            parameter_name(&key).map_err(|reason| UrlError::new(&shown, reason))?;
            match key.as_str() {
                "schema" => settings
                    .schema(&value)
                    .map_err(|fault| UrlError::at(&shown, fault))?,
                "migrate" => settings
                    .migrate(&value)
                    .map_err(|fault| UrlError::at(&shown, fault))?,
                "password" => settings.password = Some(value.into_bytes()),
                _ => settings.set(&key, value),
            }
        }
        let in_errors = shown.clone();
        settings.build(shown, &in_errors)
    }
}

/// The `key=value` pairs of `text`, values unquoted and unescaped, as libpq reads them.
fn key_value_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err("a `=` without a key before it: write `key=value`".to_owned());
            }
            return Ok(pairs);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("`{key}` has no value: write `{key}=value`"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the value of `{key}` opens a `'` without closing it"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
            if value.is_empty() {
                return Err(format!(
                    "`{key}=` has no value: write `{key}=value`, or `{key}=''` for an empty one"
                ));
            }
        }
        pairs.push((key, value));
    }
}

/// Checks that `key` can be a parameter's name: ASCII letters, digits and `_`, as every
/// parameter of libpq and the driver is. The names are handed to the driver in its own
/// `key=value` form, where any other character (a space, a `=`, a quote, a leading
/// `postgres://`) would be read as more than a name, and could set a password that the URL
/// shown does not hide. The name is not repeated: such text may hold anything.
fn parameter_name(key: &str) -> Result<(), String> {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(
            "a parameter name holds a character other than ASCII letters, digits and `_`"
                .to_owned(),
        )
    }
}

/// `value` as a `key=value` value: in single quotes, `'` and `\` escaped.
fn quote_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// What a URL sets, decoded, in libpq's order of precedence: the query's parameters replace
/// the parts of the URL they name.
#[derive(Default)]
struct Settings {
    /// Every driver parameter but the password, in the order first given.
    parameters: Vec<(String, String)>,
    password: Option<Vec<u8>>,
    schema: Option<String>,
    migrate: Option<bool>,
}

impl Settings {
    fn read(pieces: &Pieces<'_>) -> Result<Self, Fault> {
        let mut settings = Self::default();
        if let Some(credentials) = pieces.credentials {
            let (user, password) = match credentials.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (credentials, None),
            };
            if !user.is_empty() {
                settings.set("user", decode(user)?);
            }
            settings.password = password.map(decode_bytes);
        }
        let (hosts, ports) = hosts_and_ports(pieces.hosts)?;
        if hosts.iter().any(|host| !host.is_empty()) {
            settings.set("host", hosts.join(","));
        }
        if ports.iter().any(|port| !port.is_empty()) {
            settings.set("port", ports.join(","));
        }
        if let Some(database) = pieces.path.filter(|path| !path.is_empty()) {
            settings.set("dbname", decode(database)?);
        }
        for parameter in pieces.query.into_iter().flat_map(|q| q.split('&')) {
            if parameter.is_empty() {
                continue;
            }
            let Some((key, value)) = parameter.split_once('=') else {
                return Err(Fault::from(format!(
                    "the parameter `{parameter}` has no value: write `{parameter}=value`"
                )));
            };
            let key = decode(key)?;
            parameter_name(&key)?;
            match key.as_str() {
                "schema" => settings.schema(&decode(value)?)?,
                "migrate" => settings.migrate(&decode(value)?)?,
                "password" => settings.password = Some(decode_bytes(value)),
                _ => settings.set(&key, decode(value)?),
            }
        }
        Ok(settings)
    }

    /// Sets `key`, replacing an earlier value in its place.
    fn set(&mut self, key: &str, value: String) {
        match self.parameters.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.parameters.push((key.to_owned(), value)),
        }
    }

    fn schema(&mut self, name: &str) -> Result<(), Fault> {
        let fault = |reason: String| Fault {
            reason,
            parameter: Some("schema"),
        };
        if self.schema.is_some() {
            return Err(fault(
                "`schema=` is given twice: name one schema".to_owned(),
            ));
        }
        if name.is_empty() {
            return Err(fault(
                "`schema=` names no schema: write `schema=name` or leave it out".to_owned(),
            ));
        }
        if let Some(problem) = options::schema_name_problem(name) {
            return Err(fault(format!("invalid schema name `{name}`: {problem}")));
        }
        self.schema = Some(name.to_owned());
        Ok(())
    }

    fn migrate(&mut self, value: &str) -> Result<(), Fault> {
        let fault = |reason: String| Fault {
            reason,
            parameter: Some("migrate"),
        };
        if self.migrate.is_some() {
            return Err(fault(
                "`migrate=` is given twice: write `migrate=false` once, or leave it out".to_owned(),
            ));
        }
        self.migrate = Some(match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(fault(format!(
                    "`migrate={value}` is neither true nor false: write `migrate=false` to \
                     connect without creating or migrating the schema, or leave it out"
                )));
            }
        });
        Ok(())
    }

    /// The driver parameters as a `key=value` connection string, every value quoted.
    fn key_value(&self) -> String {
        self.parameters
            .iter()
            .map(|(key, value)| format!("{key}={}", quote_value(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The URL these settings were read from, shown as `shown` (and as `in_errors` when the
    /// driver refuses it): the driver reads and checks the parameters, and a URL naming no
    /// host gets the usual socket directories.
    fn build(self, shown: String, in_errors: &str) -> Result<PgUrl, UrlError> {
        let mut config: tokio_postgres::Config = self
            .key_value()
            .parse()
            .map_err(|error| UrlError::new(in_errors, driver_reason(&error)))?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            #[cfg(unix)]
            for directory in SOCKET_DIRECTORIES {
                config.host_path(directory);
            }
            #[cfg(not(unix))]
            config.host("localhost");
        }
        Ok(PgUrl {
            config: Box::new(config),
            schema: self.schema,
            migrate: self.migrate.unwrap_or(true),
            shown,
        })
    }
}

/// The hosts and ports of `host[:port],host[:port]...` (`[v6 address]:port` too), decoded; an
/// empty port is the default one.
fn hosts_and_ports(spec: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    if spec.is_empty() {
        return Ok((hosts, ports));
    }
    for chunk in spec.split(',') {
        let (host, port) = if let Some(bracketed) = chunk.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(format!(
                    "the host `{chunk}` opens `[` without closing it: write `[::1]:5432`"
                ));
            };
            match after {
                "" => (host, ""),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, port),
                    None => {
                        return Err(format!(
                            "`{after}` follows the host `[{host}]`: write `[{host}]:port`"
                        ));
                    }
                },
            }
        } else {
            chunk.split_once(':').unwrap_or((chunk, ""))
        };
        hosts.push(decode(host)?);
        ports.push(decode(port)?);
    }
    Ok((hosts, ports))
}

/// `text` percent-decoded, as UTF-8.
fn decode(text: &str) -> Result<String, String> {
    String::from_utf8(decode_bytes(text))
        .map_err(|_| format!("`{text}` percent-decodes to bytes that are not UTF-8"))
}

/// `text` percent-decoded; a `%` not followed by two hex digits stays as it is, as in libpq's
/// lenient reading of passwords.
fn decode_bytes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio_postgres::config::{Host, SslMode};

    fn parse(url: &str) -> PgUrl {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn socket(path: &str) -> Host {
        Host::Unix(path.into())
    }

    #[test]
    fn the_schema_parameter_is_the_stores_and_the_rest_the_drivers() {
        let url = parse("postgres://app:s3cret@db.internal:5433/events?schema=billing");
        assert_eq!(url.schema(), Some("billing"));
        let config = url.config();
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(config.get_hosts(), [Host::Tcp("db.internal".into())]);
        assert_eq!(config.get_ports(), [5433]);
        assert_eq!(config.get_dbname(), Some("events"));

        let url = parse("PostgreSQL://app@db/events?sslmode=disable&schema=demo_2");
        assert_eq!(url.config().get_ssl_mode(), SslMode::Disable);
        assert_eq!(url.schema(), Some("demo_2"));
        assert_eq!(parse("postgres://db/events").schema(), None);
    }

    #[test]
    fn a_unix_socket_is_named_in_the_query_or_percent_encoded() {
        for url in [
            "postgres:///events?host=/var/run/postgresql",
            "postgres:///events?host=%2Fvar%2Frun%2Fpostgresql",
            "postgres://%2Fvar%2Frun%2Fpostgresql/events",
            "postgresql://app@%2fvar%2frun%2fpostgresql/events",
            // The query replaces the host of the URL, as in libpq.
            "postgres://localhost/events?host=/var/run/postgresql",
            "postgres://app@localhost:5432/events?host=/var/run/postgresql&schema=x",
        ] {
            let url = parse(url);
            assert_eq!(
                url.config().get_hosts(),
                [socket("/var/run/postgresql")],
                "{url}"
            );
            assert_eq!(url.config().get_dbname(), Some("events"), "{url}");
        }
    }

    #[test]
    fn a_url_without_a_host_goes_to_the_usual_socket_directories() {
        let url = parse("postgres:///events?user=app");
        assert_eq!(
            url.config().get_hosts(),
            [socket("/var/run/postgresql"), socket("/tmp")]
        );
        assert_eq!(url.config().get_user(), Some("app"));
        let url = parse("postgres://:5433/events");
        assert_eq!(url.config().get_ports(), [5433]);
        assert_eq!(url.config().get_hosts().len(), 2);
        let url = parse("postgres:///events?hostaddr=127.0.0.1");
        assert!(url.config().get_hosts().is_empty());
    }

    #[test]
    fn query_parameters_replace_the_parts_of_the_url_and_later_ones_earlier_ones() {
        let url = parse(
            "postgres://app:one@db:5432/events?port=5433&user=other&dbname=else&password=two",
        );
        let config = url.config();
        assert_eq!(config.get_ports(), [5433]);
        assert_eq!(config.get_user(), Some("other"));
        assert_eq!(config.get_dbname(), Some("else"));
        assert_eq!(config.get_password(), Some(&b"two"[..]));
        assert_eq!(config.get_hosts(), [Host::Tcp("db".into())]);
        let url = parse("postgres://db/events?port=1&port=2");
        assert_eq!(url.config().get_ports(), [2]);
    }

    #[test]
    fn hosts_ports_and_names_are_read_as_libpq_reads_them() {
        let url = parse("postgres://a:1,b,[::1]:3/db%20name?application_name=it%27s");
        let config = url.config();
        assert_eq!(
            config.get_hosts(),
            [
                Host::Tcp("a".into()),
                Host::Tcp("b".into()),
                Host::Tcp("::1".into())
            ]
        );
        assert_eq!(config.get_ports(), [1, 5432, 3]);
        assert_eq!(config.get_dbname(), Some("db name"));
        assert_eq!(config.get_application_name(), Some("it's"));
        let url = parse("postgres://us%40er:p%40ss%2Fw%25rd@db/events");
        assert_eq!(url.config().get_user(), Some("us@er"));
        assert_eq!(url.config().get_password(), Some(&b"p@ss/w%rd"[..]));
    }

    #[test]
    fn the_key_value_form_takes_the_same_parameters() {
        let url = parse(
            r"host=/var/run/postgresql dbname = 'my db' user=app password='it\'s' schema=billing",
        );
        assert_eq!(url.schema(), Some("billing"));
        let config = url.config();
        assert_eq!(config.get_hosts(), [socket("/var/run/postgresql")]);
        assert_eq!(config.get_dbname(), Some("my db"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert!(!url.to_string().contains("it"), "{url}");
        // Shown with every value quoted, it reads back the same.
        assert_eq!(parse(&url.to_string()).config().get_dbname(), Some("my db"));
        let url = parse("dbname=app port=5433");
        assert_eq!(
            url.config().get_hosts().len(),
            2,
            "the usual socket directories"
        );
        for (text, says) in [
            ("host=db schema=a schema=b", "twice"),
            ("host=db colour=blue", "colour"),
            ("host=db password='s3cret", "without closing"),
            ("host=db password", "password=value"),
            ("host=db =x", "without a key"),
        ] {
            let error = text.parse::<PgUrl>().unwrap_err();
            assert!(error.to_string().contains(says), "{text}: {error}");
            assert!(
                !format!("{error} {error:?}").contains("s3cret"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn passwords_never_show() {
        for url in [
            "postgres://app:s3cret@db/events",
            "postgres://app:s3c@ret@db/events?schema=x",
            "postgres://app@db/events?password=s3cret",
        ] {
            let parsed = parse(url);
            for shown in [parsed.to_string(), format!("{parsed:?}")] {
                assert!(!shown.contains("s3c"), "{shown}");
                assert!(shown.contains("***"), "{shown}");
            }
        }
        let parsed = parse("postgresql://app@db/events?sslmode=disable&schema=demo");
        assert_eq!(
            parsed.to_string(),
            "postgresql://app@db/events?sslmode=disable&schema=demo"
        );
    }

    #[test]
    fn a_url_without_a_password_prints_as_given_with_an_at_sign_after_a_colon() {
        // An `@` after the credentials, past a `:` (a port, or nothing), is part of the
        // database name or a parameter once the URL parses: shown as given, it reads back equal.
        for (url, database) in [
            ("postgres://:/@", Some("@")),
            (
                "postgres://db:5432/events?application_name=me@work",
                Some("events"),
            ),
            ("postgres://app@db:5432/x@y", Some("x@y")),
            ("postgres://[::1]/a@b", Some("a@b")),
        ] {
            let parsed = parse(url);
            assert_eq!(parsed.config().get_password(), None, "{url}");
            assert_eq!(parsed.config().get_dbname(), database, "{url}");
            assert_eq!(parsed.to_string(), url);
            assert_eq!(parse(&parsed.to_string()), parsed);
        }
        // Where it does not parse, the `@` may end a password holding a `/`: hidden.
        let error = "postgres://app:s3c/ret@db/events"
            .parse::<PgUrl>()
            .unwrap_err();
        assert_eq!(error.url(), Some("postgres://app:***@db/events"));
    }

    #[test]
    fn a_parameter_name_that_is_not_a_plain_name_is_refused() {
        // Handed to the driver as they were, these names would set a password (or read the
        // whole string as a URL) that the URL shown does not hide.
        for url in [
            "postgres://db/events?postgres://app:s3cret@x/y=1",
            "postgres://db/events?application_name%3Dx%20password=s3cret",
            "host=db postgres:app=s3cret",
            "host=db app'name=x",
        ] {
            let error = url.parse::<PgUrl>().unwrap_err();
            assert!(error.reason().contains("parameter name"), "{url}: {error}");
            assert!(!error.reason().contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn bad_urls_are_errors_saying_what_to_write_without_the_password() {
        for (url, says) in [
            ("postgres:app:s3cret@db/events", "two slashes"),
            ("postgres://app:s3cret@db/events?schema=", "names no schema"),
            ("postgres://app:s3cret@db/events?schema=a&schema=b", "twice"),
            ("postgres://app:s3cret@db/events?schema=Bad", "lower-case"),
            ("postgres://app:s3cret@db/events?colour=blue", "colour"),
            ("postgres://app:s3cret@db:port/events", "port"),
            ("postgres://app:s3cret@db/events?sslmode", "sslmode=value"),
            ("postgres://app:s3cret@[::1/events", "[::1]:5432"),
            ("postgres://app:s3c/ret@db/events", "port"),
            ("mysql://app:s3cret@db/events", "postgres://"),
            ("localhost", "host=..."),
        ] {
            let error = url.parse::<PgUrl>().unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(error.to_string().contains(says), "{url}: {error}");
            assert!(!shown.contains("s3c"), "{shown}");
        }
    }
}
