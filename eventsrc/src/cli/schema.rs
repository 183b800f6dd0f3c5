//! `migrate` and `schema`, and opening a store without migrating it.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;

use super::args::Backend;
use super::output::{CliError, print_json};
use crate::StoreUrl;

/// `url` changed so that opening it does not migrate: every command but `migrate` only looks.
/// A schema that is behind is then an error saying to run `migrate`.
pub(super) fn without_migrating(url: StoreUrl, text: &str) -> Result<StoreUrl, CliError> {
    let wanted = match &url {
        #[cfg(feature = "sqlite")]
        StoreUrl::SqliteFile(_) => true,
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(pg) => pg.migrate(),
        _ => false,
    };
    if !wanted {
        return Ok(url);
    }
    let separator = if text.contains('?') { '&' } else { '?' };
    Ok(format!("{}{separator}migrate=false", text.trim()).parse()?)
}

/// Applies the migrations this build knows to the store `url` names, creating it if new.
pub(super) async fn migrate(
    url: &StoreUrl,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    let (from, to, said): (i64, i64, String) = match url {
        #[cfg(feature = "sqlite")]
        StoreUrl::SqliteFile(path) | StoreUrl::SqliteFileNoMigrate(path) => {
            let done = crate::sqlite::SqliteEventStore::migrate(path)
                .await
                .map_err(|source| crate::OpenStoreError::Sqlite {
                    url: url.to_string(),
                    source,
                })?;
            (done.from.into(), done.to.into(), done.to_string())
        }
        #[cfg(feature = "postgres")]
        StoreUrl::Postgres(pg) => {
            let options = crate::postgres::PgOptions::default();
            let done = crate::postgres::PgEventStore::migrate(pg.as_pg_url(), options)
                .await
                .map_err(|source| crate::OpenStoreError::Postgres {
                    url: url.to_string(),
                    source,
                })?;
            (done.from.into(), done.to.into(), done.to_string())
        }
        _ => {
            return Err(CliError::Invalid(format!(
                "`{url}` keeps nothing between runs: there is no schema to migrate"
            )));
        }
    };
    if json {
        print_json(
            out,
            &json!({ "store": url.to_string(), "from": from, "to": to }),
        )?;
    } else {
        writeln!(out, "{url}: {said}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the DDL of `backend` (else the URL's backend), in `schema` on PostgreSQL (else the
/// URL's schema, else `eventsrc`).
pub(super) fn schema(
    url: Option<&StoreUrl>,
    backend: Option<Backend>,
    schema: Option<&str>,
    out: &mut (dyn Write + Send),
) -> Result<ExitCode, CliError> {
    // Only PostgreSQL has schemas.
    #[cfg(not(feature = "postgres"))]
    let _ = schema;
    let from_url = match url {
        #[cfg(feature = "sqlite")]
        Some(
            StoreUrl::SqliteFile(_) | StoreUrl::SqliteFileNoMigrate(_) | StoreUrl::SqliteMemory,
        ) => Some(Backend::Sqlite),
        #[cfg(feature = "postgres")]
        Some(StoreUrl::Postgres(_)) => Some(Backend::Postgres),
        _ => None,
    };
    let Some(backend) = backend.or(from_url) else {
        return Err(CliError::Invalid(
            "which backend's DDL? pass `--backend sqlite` or `--backend postgres`, or a SQL \
             store's `--store URL`"
                .to_owned(),
        ));
    };
    let ddl = match backend {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => crate::sqlite::schema::ddl(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let from_url = match url {
                Some(StoreUrl::Postgres(pg)) => pg.schema(),
                _ => None,
            };
            crate::postgres::schema::ddl(schema.or(from_url).unwrap_or("eventsrc"))
        }
        #[allow(unreachable_patterns)]
        _ => {
            return Err(CliError::Invalid(format!(
                "this build has no {backend:?} backend: build it with that feature"
            )));
        }
    };
    writeln!(out, "{}", ddl.trim_end())?;
    Ok(ExitCode::SUCCESS)
}
