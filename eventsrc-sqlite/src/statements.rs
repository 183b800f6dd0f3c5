//! The statements the event store runs on the `events` table, each under a name, so that what
//! is prepared is what the plan test (`tests/plans.rs`) explains.
//!
//! Statements are text built at compile time with `concat!`; only a read of the log filtered
//! by event type or category is put together at run time, from [`READ_ALL_WHERE`] and
//! [`READ_ALL_ORDER`] around its `IN` lists.

use std::borrow::Cow;

/// A statement's text: a constant, or put together for a filtered read of the log.
pub(crate) type Sql = Cow<'static, str>;

/// The columns every event query selects, in this order (the parked table has them too).
macro_rules! columns {
    () => {
        "position, commit_seq, stream, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at"
    };
}

/// The columns a visit needs: what folding an aggregate reads, nothing more (each column costs
/// about as much to extract as a payload decode saves), after the position (the rowid, nearly
/// free), which is only read to find a corrupt row again.
macro_rules! visit_columns {
    () => {
        "position, stream_version, event_type, schema_version, payload"
    };
}

/// Every event query's columns, in order.
pub(crate) const COLUMNS: &str = columns!();

/// A stream read forwards: tenant, stream, first version, limit (-1 for none).
pub(crate) const STREAM_FORWARD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 \
     ORDER BY stream_version ASC LIMIT ?4"
);

/// A stream read backwards: tenant, stream, last version, limit (-1 for none).
pub(crate) const STREAM_BACKWARD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version <= ?3 \
     ORDER BY stream_version DESC LIMIT ?4"
);

/// [`STREAM_FORWARD`] for a visit: only the columns a visit reads.
pub(crate) const VISIT_FORWARD: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version >= ?3 \
     ORDER BY stream_version ASC LIMIT ?4"
);

/// [`STREAM_BACKWARD`] for a visit.
pub(crate) const VISIT_BACKWARD: &str = concat!(
    "SELECT ",
    visit_columns!(),
    " FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version <= ?3 \
     ORDER BY stream_version DESC LIMIT ?4"
);

/// The start of a page of the log: tenant, position to read after. Filters follow as
/// `AND column IN (...)`, then [`READ_ALL_ORDER`] with the limit's parameter number.
pub(crate) const READ_ALL_WHERE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE tenant = ?1 AND position > ?2"
);

/// The end of a page of the log, before the limit's parameter number.
pub(crate) const READ_ALL_ORDER: &str = " ORDER BY position LIMIT ?";

/// An unfiltered page of the log: tenant, position to read after, limit.
pub(crate) const READ_ALL: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE tenant = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
);

/// The head of a tenant's log: its last event's position and commit.
pub(crate) const HEAD: &str = "SELECT position, commit_seq FROM events WHERE tenant = ?1 \
                               ORDER BY position DESC LIMIT 1";

/// A stream's highest version, the one an append checks: tenant, stream.
pub(crate) const CURRENT_VERSION: &str =
    "SELECT MAX(stream_version) FROM events WHERE tenant = ?1 AND stream = ?2";

/// The first row of a stream whose version is not a positive integer: tenant, stream.
pub(crate) const BAD_VERSION: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE tenant = ?1 AND stream = ?2 \
     AND (typeof(stream_version) <> 'integer' OR stream_version < 1) \
     ORDER BY position LIMIT 1"
);

/// One event by position (the rowid), read again in full to name a corrupt row.
pub(crate) const BY_POSITION: &str =
    concat!("SELECT ", columns!(), " FROM events WHERE position = ?1");

/// The stored copy of an event id before a position, with its tenant: what an append compares
/// a retry with. Event id, position.
pub(crate) const STORED_COPY: &str = concat!(
    "SELECT ",
    columns!(),
    ", tenant FROM events WHERE event_id = ?1 AND position < ?2"
);

/// One event of a tenant by id: event id, tenant.
pub(crate) const BY_ID: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM events WHERE event_id = ?1 AND tenant = ?2"
);

/// The last position of the whole log, read by every commit of the writer.
pub(crate) const LAST_POSITION: &str = "SELECT COALESCE(MAX(position), 0) FROM events";

/// One event stored.
pub(crate) const INSERT: &str = "INSERT INTO events (position, commit_seq, tenant, stream, \
                                 category, stream_version, event_id, event_type, \
                                 schema_version, payload, metadata, recorded_at) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// The stream's event at a version, located and typed: tenant, stream, version. What a
/// deletion reads of the stream's last event, and an append whose version check failed (a
/// soft-deleted stream starts again after its marker).
pub(crate) const LAST_EVENT: &str = "SELECT position, commit_seq, event_type FROM events \
                                     WHERE tenant = ?1 AND stream = ?2 AND stream_version = ?3";

/// A stream's lowest version still in the log: tenant, stream.
pub(crate) const FIRST_VERSION: &str =
    "SELECT MIN(stream_version) FROM events WHERE tenant = ?1 AND stream = ?2";

/// The position of a stream's last event up to a version: tenant, stream, version. Positions
/// rise with versions in a stream, so the highest version holds the highest position.
pub(crate) const LAST_THROUGH: &str = "SELECT position, commit_seq FROM events \
                                       WHERE tenant = ?1 AND stream = ?2 AND stream_version <= ?3 \
                                       ORDER BY stream_version DESC LIMIT 1";

/// A stream's events up to a version copied to the archive, as stored: tenant, stream,
/// version, when they were archived.
pub(crate) const ARCHIVE: &str = concat!(
    "INSERT INTO archived_events (",
    columns!(),
    ", tenant, category, archived_at) SELECT ",
    columns!(),
    ", tenant, category, ?4 FROM events \
     WHERE tenant = ?1 AND stream = ?2 AND stream_version <= ?3"
);

/// A stream's events up to a version removed from the log: tenant, stream, version.
pub(crate) const REMOVE: &str =
    "DELETE FROM events WHERE tenant = ?1 AND stream = ?2 AND stream_version <= ?3";

/// A stream's archived events, in version order: tenant, stream.
pub(crate) const READ_ARCHIVE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM archived_events WHERE tenant = ?1 AND stream = ?2 ORDER BY stream_version"
);

/// A stream's highest archived version: tenant, stream.
pub(crate) const ARCHIVED_THROUGH: &str =
    "SELECT MAX(stream_version) FROM archived_events WHERE tenant = ?1 AND stream = ?2";

/// A stream's archived events dropped for good (a tombstone): tenant, stream.
pub(crate) const DROP_ARCHIVE: &str =
    "DELETE FROM archived_events WHERE tenant = ?1 AND stream = ?2";

/// The position of the last event truncation removed from a tenant's log, one lookup of the
/// primary key: tenant.
pub(crate) const TRUNCATED_THROUGH: &str =
    "SELECT position, commit_seq FROM truncations WHERE tenant = ?1";

/// Moves a tenant's truncation position forward (never back): tenant, commit, position.
pub(crate) const RECORD_TRUNCATION: &str = "INSERT INTO truncations (tenant, commit_seq, position) \
                                            VALUES (?1, ?2, ?3) \
                                            ON CONFLICT (tenant) DO UPDATE SET \
                                            commit_seq = excluded.commit_seq, position = excluded.position \
                                            WHERE excluded.position > truncations.position";

/// A page of the log filtered by event type and category (either list may be empty):
/// [`READ_ALL`] when both are. Parameters: tenant, position to read after, the types, the
/// categories, the limit.
pub(crate) fn read_all_filtered(types: usize, categories: usize) -> Cow<'static, str> {
    if types == 0 && categories == 0 {
        return Cow::Borrowed(READ_ALL);
    }
    let mut sql = String::from(READ_ALL_WHERE);
    let mut next = 3;
    for (column, count) in [("event_type", types), ("category", categories)] {
        if count == 0 {
            continue;
        }
        let marks: Vec<String> = (next..next + count).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
        next += count;
    }
    sql.push_str(READ_ALL_ORDER);
    sql.push_str(&next.to_string());
    Cow::Owned(sql)
}

/// Every statement the event store runs on the `events` table, by name; reads of the log
/// filtered by type, by category and by both stand for their families.
pub(crate) fn all() -> Vec<(&'static str, Cow<'static, str>)> {
    vec![
        ("read_all", Cow::Borrowed(READ_ALL)),
        ("read_all_by_type", read_all_filtered(2, 0)),
        ("read_all_by_category", read_all_filtered(0, 1)),
        ("read_all_by_type_and_category", read_all_filtered(1, 1)),
        ("stream_forward", Cow::Borrowed(STREAM_FORWARD)),
        ("stream_backward", Cow::Borrowed(STREAM_BACKWARD)),
        ("visit_forward", Cow::Borrowed(VISIT_FORWARD)),
        ("visit_backward", Cow::Borrowed(VISIT_BACKWARD)),
        ("head", Cow::Borrowed(HEAD)),
        ("current_version", Cow::Borrowed(CURRENT_VERSION)),
        ("bad_version", Cow::Borrowed(BAD_VERSION)),
        ("by_position", Cow::Borrowed(BY_POSITION)),
        ("stored_copy", Cow::Borrowed(STORED_COPY)),
        ("by_id", Cow::Borrowed(BY_ID)),
        ("last_position", Cow::Borrowed(LAST_POSITION)),
        ("insert", Cow::Borrowed(INSERT)),
        ("last_event", Cow::Borrowed(LAST_EVENT)),
        ("first_version", Cow::Borrowed(FIRST_VERSION)),
        ("last_through", Cow::Borrowed(LAST_THROUGH)),
        ("archive", Cow::Borrowed(ARCHIVE)),
        ("remove", Cow::Borrowed(REMOVE)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filtered_read_numbers_its_parameters_in_order() {
        assert_eq!(read_all_filtered(0, 0), READ_ALL);
        let both = read_all_filtered(2, 1);
        assert!(
            both.ends_with(
                "AND event_type IN (?3, ?4) AND category IN (?5) ORDER BY position LIMIT ?6"
            ),
            "{both}"
        );
        assert!(
            read_all_filtered(0, 2)
                .ends_with("AND category IN (?3, ?4) ORDER BY position LIMIT ?5")
        );
    }
}
