//! Crypto-shredding on SQLite: the conformance cases with the keys in the store's own file,
//! and a scan of that file's raw bytes showing that a forgotten subject's plaintext and key
//! are nowhere in it afterwards, while another subject's data still opens.
#![cfg(feature = "encryption")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::TempDir;

use eventsrc::personal::{Encrypted, KeyStore};
use eventsrc::store::ReadStream;
use eventsrc::{
    Event, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Repository, StreamId,
    aggregate,
};
use eventsrc_sqlite::{SqliteEventStore, SqliteKeyStore};
use serde::{Deserialize, Serialize};

/// A fresh store in a temporary file, with its keys in the same file.
async fn fresh() -> Encrypted<SqliteEventStore, SqliteKeyStore> {
    let store = SqliteEventStore::open_temporary().await.unwrap();
    let keys = SqliteKeyStore::open(store.path().unwrap()).await.unwrap();
    Encrypted::new(store, keys)
}

eventsrc_testing::personal_conformance!(fresh);

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(name = "sqlite_test.member_joined")]
struct MemberJoined {
    #[event(subject)]
    member: String,
    #[event(personal)]
    name: Option<String>,
    #[event(personal)]
    phone: Option<String>,
    club: String,
}

#[derive(Default, Debug, Serialize, Deserialize)]
struct Club {
    names: Vec<Option<String>>,
}

#[aggregate(id = String, name = "sqlite_test_club", snapshot = 1)]
impl Club {
    fn on_joined(&mut self, e: &MemberJoined) {
        self.names.push(e.name.clone());
    }
}

/// Every file SQLite keeps for the database at `path`, read whole.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        if let Ok(content) = std::fs::read(PathBuf::from(file)) {
            bytes.extend(content);
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_subject_leaves_no_plaintext_and_no_key_in_the_file() {
    let dir = TempDir::new("personal");
    let path = dir.file();
    let events = SqliteEventStore::open(&path).await.unwrap();
    let keys = SqliteKeyStore::open(&path).await.unwrap();
    let store = Encrypted::new(events, keys);

    // Plaintexts unique to this run, so that nothing else in the file can match them.
    let marker = EventId::new().0.simple().to_string();
    let (ada_name, ada_phone) = (format!("Ada Lovelace {marker}"), format!("+44-{marker}"));
    let bob_name = format!("Bob Babbage {marker}");
    let (ada, bob) = ("member-ada", "member-bob");
    let club = "chess";
    let joined = |member: &str, name: &str, phone: &str| {
        let event = MemberJoined {
            member: member.to_owned(),
            name: Some(name.to_owned()),
            phone: Some(phone.to_owned()),
            club: format!("club-{marker}"),
        };
        NewEvent::from_event(&event, Metadata::new()).unwrap()
    };
    let stream = StreamId::new("sqlite_test_club", club).unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![
                joined(ada, &ada_name, &ada_phone),
                joined(bob, &bob_name, "+1-555"),
            ],
        )
        .await
        .unwrap();
    let repository = Repository::new(store.clone()).with_snapshots(store.clone());
    repository.snapshot::<Club>(&club.to_owned()).await.unwrap();

    let ada_key = store
        .keys()
        .key(&Default::default(), ada)
        .await
        .unwrap()
        .unwrap();
    let before = database_bytes(&path);
    // The scan sees what is there: the key's bytes, and the unsealed parts of the events.
    assert!(
        holds(&before, ada_key.secret()),
        "the scan must find the key before forget"
    );
    assert!(holds(&before, format!("club-{marker}").as_bytes()));
    for plaintext in [&ada_name, &ada_phone, &bob_name] {
        assert!(
            !holds(&before, plaintext.as_bytes()),
            "never stored in the clear"
        );
    }

    assert!(store.forget(ada).await.unwrap());
    // Bob's data still opens, through the events and the repository.
    let read = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    let decoded: Vec<MemberJoined> = read.iter().map(|r| r.decode().unwrap()).collect();
    assert_eq!(
        (decoded[0].name.as_ref(), decoded[0].phone.as_ref()),
        (None, None)
    );
    assert_eq!(decoded[1].name.as_deref(), Some(bob_name.as_str()));
    let loaded = repository.load::<Club>(&club.to_owned()).await.unwrap();
    assert_eq!(loaded.state.names, [None, Some(bob_name.clone())]);
    drop((repository, store));

    let after = database_bytes(&path);
    assert!(
        !holds(&after, ada_key.secret()),
        "the forgotten key's bytes are still in the file"
    );
    for plaintext in [&ada_name, &ada_phone] {
        assert!(!holds(&after, plaintext.as_bytes()));
    }
    assert!(holds(&after, format!("club-{marker}").as_bytes()));
}

/// The wrapper keeps every storage contract on SQLite: the whole backend conformance suite
/// passes through it (its events have no personal fields, so they pass through unsealed).
mod transparent {
    eventsrc_testing::event_store_conformance!(crate::fresh);
}
