//! How the command line prints: tables for people, JSON for scripts, and its errors.

use std::io::Write;

use comfy_table::{ContentArrangement, ContentLineStyle, LineStyle, Table, TableStyle};
use serde_json::{Value, json};

use crate::backend::ParkedEvent;
use crate::{OpenStoreError, RecordedEvent, RunError, StoreError, registry};

/// Why a command of the command line failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No `--store` and no `EVENTSRC_STORE`.
    #[error(
        "no store: pass `--store URL` (e.g. `--store sqlite://events.db`) or set EVENTSRC_STORE"
    )]
    NoStore,
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenStoreError),
    /// A SQLite URL names a file that does not exist (opening would create an empty store).
    #[error("no store at `{0}`: the file does not exist (`migrate` creates a new store)")]
    Missing(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A runner failed (`rebuild`, `replay`).
    #[error(transparent)]
    Run(#[from] RunError),
    /// Something named on the command line is not there.
    #[error("{0}")]
    NotFound(String),
    /// A command that needs a registration of the application's binary.
    #[error("{0}")]
    NotRegistered(String),
    /// Bad input on the command line that clap could not see.
    #[error("{0}")]
    Invalid(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding the output as JSON failed.
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// psql's look: columns split by `|`, a rule of `-` under the header, plain ASCII.
const STYLE: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().junction('|'))
    .header_separator(LineStyle::none().fill('-').junction('+'))
    .content_lines(ContentLineStyle::none().junction('|'));

impl CliError {
    /// Whether writing the output failed because its reader went away.
    pub(super) fn is_broken_pipe(&self) -> bool {
        let io = match self {
            Self::Io(error) => Some(error.kind()),
            Self::Json(error) => error.io_error_kind(),
            _ => None,
        };
        io == Some(std::io::ErrorKind::BrokenPipe)
    }
}

/// A table in the command line's style (psql's), as wide as its content: not wrapped to a
/// terminal's width, so pipes and tests see the same text.
pub(super) fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_style(STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Prints `table`, or `empty` when it has no rows.
pub(super) fn print_table(
    out: &mut (dyn Write + Send),
    table: &Table,
    empty: &str,
) -> Result<(), CliError> {
    if table.is_empty() {
        writeln!(out, "{empty}")?;
    } else {
        for line in table.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

/// Prints `value` as pretty JSON.
pub(super) fn print_json(out: &mut (dyn Write + Send), value: &Value) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The stored payload as JSON, or as a string if it is not JSON (a corrupt row).
fn payload_value(payload: &str) -> Value {
    serde_json::from_str(payload).unwrap_or_else(|_| Value::String(payload.to_owned()))
}

/// An event as JSON: where it is, what it is, its stored payload, its current version as this
/// build decodes it (`decoded`, `null` with `decode_error` when it cannot), and its metadata.
pub(super) fn event_json(record: &RecordedEvent) -> Value {
    let (decoded, error) = match registry::inspect(record) {
        Ok(value) => (value, Value::Null),
        Err(error) => (Value::Null, Value::String(error.to_string())),
    };
    json!({
        "event_id": record.event_id.to_string(),
        "stream": record.stream.as_str(),
        "version": record.stream_version.get(),
        "position": record.global_position.to_string(),
        "tenant": record.tenant.as_str(),
        "event_type": &*record.event_type,
        "schema_version": record.schema_version,
        "recorded_at": record.recorded_at.to_string(),
        "payload": payload_value(&record.payload),
        "decoded": decoded,
        "decode_error": error,
        "metadata": serde_json::to_value(&record.metadata).unwrap_or(Value::Null),
    })
}

/// The payload to show in a table: the current version as this build decodes it, else the
/// stored JSON as it is. Compact, on one line.
pub(super) fn payload_cell(record: &RecordedEvent) -> String {
    match registry::inspect(record) {
        Ok(value) => value.to_string(),
        Err(_) => record.payload.replace('\n', " "),
    }
}

/// A parked event as JSON.
pub(super) fn parked_json(parked: &ParkedEvent) -> Value {
    json!({
        "reactor": parked.reactor,
        "error": parked.error,
        "attempts": parked.attempts,
        "parked_at": parked.parked_at.to_string(),
        "event": event_json(&parked.event),
    })
}

/// One line per event, for `tail` and `events`: position, stream@version, type@schema, payload.
pub(super) fn event_line(record: &RecordedEvent) -> String {
    format!(
        "{}  {}  {}@{}  {}@{}  {}",
        record.global_position,
        record.recorded_at,
        record.stream,
        record.stream_version.get(),
        record.event_type,
        record.schema_version,
        payload_cell(record),
    )
}
