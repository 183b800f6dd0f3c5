//! Crypto-shredding on PostgreSQL: the conformance cases with the keys in the store's schema,
//! and a scan of every row of every table of that schema, after `VACUUM`, showing that a
//! forgotten subject's plaintext and key are nowhere in it, while another subject's data still
//! opens. Each test has a schema of its own.
#![cfg(feature = "encryption")]
#![allow(clippy::unwrap_used)]

mod support;

use eventsrc::personal::{Encrypted, KeyStore};
use eventsrc::store::ReadStream;
use eventsrc::{
    Event, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamId,
    aggregate,
};
use eventsrc_postgres::{PgEventStore, PgKeyStore};
use serde::{Deserialize, Serialize};

async fn fresh() -> Encrypted<PgEventStore, PgKeyStore> {
    encrypted(&support::TestSchema::fresh().await).await
}

/// A store on `schema` sealing through keys in that schema.
async fn encrypted(schema: &support::TestSchema) -> Encrypted<PgEventStore, PgKeyStore> {
    let store = schema.store().await;
    let keys = PgKeyStore::for_store(&store).await.unwrap();
    Encrypted::new(store, keys)
}

eventsrc_testing::personal_conformance!(
    fresh,
    skip_if = |case| support::url(case).is_none(),
    teardown = |store: Encrypted<PgEventStore, PgKeyStore>| async move {
        support::drop_schema(store.inner()).await
    },
);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "pg_test.member_joined")]
struct MemberJoined {
    #[event(subject)]
    member: String,
    #[event(personal)]
    name: Option<String>,
    club: String,
}

#[derive(Default, Debug, Serialize, Deserialize)]
struct Club {
    names: Vec<Option<String>>,
}

#[aggregate(id = String, name = "pg_test_club", snapshot = 1)]
impl Club {
    fn on_joined(&mut self, e: &MemberJoined) {
        self.names.push(e.name.clone());
    }
}

/// Every row of every table of `schema`, as text: the whole of what SQL can read there.
async fn every_row(client: &tokio_postgres::Client, schema: &str) -> String {
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            &[&schema],
        )
        .await
        .unwrap();
    assert!(tables.len() > 3, "the schema's tables: {tables:?}");
    let mut all = String::new();
    for table in tables {
        let table: String = table.get(0);
        let rows = client
            .query(
                &format!("SELECT t::text FROM \"{schema}\".\"{table}\" t"),
                &[],
            )
            .await
            .unwrap();
        for row in rows {
            all.push_str(&row.get::<_, String>(0));
            all.push('\n');
        }
    }
    all
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_subject_leaves_no_plaintext_and_no_key_in_the_schema() {
    let Some(schema) = support::TestSchema::new(
        "a_forgotten_subject_leaves_no_plaintext_and_no_key_in_the_schema",
    )
    .await
    else {
        return;
    };
    let store = encrypted(&schema).await;

    let marker = EventId::new().0.simple().to_string();
    let (ada_name, bob_name) = (
        format!("Ada Lovelace {marker}"),
        format!("Bob Babbage {marker}"),
    );
    let joined = |member: &str, name: &str| {
        let event = MemberJoined {
            member: member.to_owned(),
            name: Some(name.to_owned()),
            club: format!("club-{marker}"),
        };
        NewEvent::from_event(&event, Metadata::new()).unwrap()
    };
    let club = "chess".to_owned();
    let stream = StreamId::new("pg_test_club", &club).unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![
                joined("member-ada", &ada_name),
                joined("member-bob", &bob_name),
            ],
        )
        .await
        .unwrap();
    let repository = Repository::new(store.clone()).with_snapshots(store.clone());
    repository.snapshot::<Club>(&club).await.unwrap();
    let ada_key = store
        .keys()
        .key(&Default::default(), "member-ada")
        .await
        .unwrap()
        .unwrap();

    let before = every_row(&schema.client, &schema.name).await;
    assert!(
        before.contains(&hex(ada_key.secret())),
        "the scan must find the key before forget"
    );
    assert!(before.contains(&format!("club-{marker}")));
    assert!(!before.contains(&ada_name) && !before.contains(&bob_name));

    assert!(store.forget("member-ada").await.unwrap());
    schema
        .client
        .batch_execute(&format!("VACUUM {}", schema.table("eventsrc_subject_keys")))
        .await
        .unwrap();

    let read = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    let decoded: Vec<MemberJoined> = read.iter().map(|r| r.decode().unwrap()).collect();
    assert_eq!(decoded[0].name, None);
    assert_eq!(decoded[1].name.as_deref(), Some(bob_name.as_str()));
    let loaded = repository.load::<Club>(&club).await.unwrap();
    assert_eq!(loaded.state.names, [None, Some(bob_name.clone())]);

    let after = every_row(&schema.client, &schema.name).await;
    assert!(
        !after.contains(&hex(ada_key.secret())),
        "the forgotten key is still readable"
    );
    assert!(!after.contains(&ada_name));
    assert!(after.contains(&format!("club-{marker}")));
    drop((repository, store));
    schema.drop().await;
}

/// A schema name that could break out of its quotes is refused before anything reaches the
/// server, as a store's own schema name is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_store_refuses_a_schema_name_that_is_not_one() {
    let Some(schema) =
        support::TestSchema::new("a_key_store_refuses_a_schema_name_that_is_not_one").await
    else {
        return;
    };
    let store = schema.store().await;
    for name in [r#"keys"; DROP TABLE events; --"#, "", "Upper", "pg_keys"] {
        let refused = PgKeyStore::new(store.pool().clone(), name).await;
        let Err(error) = refused else {
            panic!("`{name}` was accepted as a schema name")
        };
        assert!(
            error.to_string().contains("schema"),
            "`{name}`: the error names the schema: {error}"
        );
    }
    drop(store);
    schema.drop().await;
}

/// The wrapper keeps every storage contract on PostgreSQL: the whole backend conformance
/// suite passes through it (its events have no personal fields, so they pass through
/// unsealed).
mod transparent {
    use eventsrc::personal::Encrypted;
    use eventsrc_postgres::{PgEventStore, PgKeyStore};
    use eventsrc_testing::conformance::Capabilities;

    use super::support;

    eventsrc_testing::event_store_conformance!(
        crate::fresh,
        // PostgreSQL stamps `recorded_at` with the server's clock.
        capabilities = Capabilities {
            local_clock: false,
            ..Capabilities::all()
        },
        skip_if = |case| support::url(case).is_none(),
        teardown = |store: Encrypted<PgEventStore, PgKeyStore>| async move {
            support::drop_schema(store.inner()).await
        },
    );
}
