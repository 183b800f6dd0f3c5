//! The contract of [`SwitchReadModel`], as one case every SQL backend runs.

// The case is test code: unwrapping a store's answer there is the assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

use eventsrc_core::{CheckpointStore, GlobalPosition, StoreError, SwitchReadModel};

/// The live `users` view and its rebuild `users_new`, each with an index named after its
/// table: the same SQL in SQLite's dialect and PostgreSQL's.
const TABLES: &str = "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL); \
     CREATE INDEX users_email ON users (email); \
     INSERT INTO users VALUES ('ada', 'ADA@EXAMPLE.COM'); \
     CREATE TABLE users_new (id TEXT PRIMARY KEY, email TEXT NOT NULL); \
     CREATE INDEX users_new_email ON users_new (email); \
     INSERT INTO users_new VALUES ('ada', 'ada@example.com');";

/// The usual swap: the live table goes, the rebuilt one takes its name.
const SWAP: &str = "DROP TABLE users; ALTER TABLE users_new RENAME TO users";

/// Runs [`SwitchReadModel::switch_read_model`] through its contract on `store`, an empty
/// store (or tenant) of a SQL backend, and panics, saying what it expected, where the store
/// departs from it:
///
/// - a rebuild without a checkpoint is refused with [`StoreError::NotBuilt`], its swap not
///   run;
/// - a switch runs the swap, moves the live checkpoint to the rebuild's, removes the
///   rebuild's, and renames `users_new_email` to `users_email` with its table;
/// - a swap that fails changes nothing, checkpoints included;
/// - a swap that renames the live table aside too renames each table's index after it;
/// - a read model switched in for itself keeps its position.
///
/// `execute` runs SQL statements on the store's database (their unqualified names in the
/// store's schema); `index_names` lists the names of the indexes of a table made with
/// `CREATE INDEX`, sorted (not those the database makes for a primary key). Both are the only
/// code that differs between backends.
///
/// A backend's test calls it with its own two helpers:
///
/// ```text
/// eventsrc_testing::switch::switch_contract(&store, execute, index_names).await;
/// ```
pub async fn switch_contract<S, E, EF, I, IF>(store: &S, execute: E, index_names: I)
where
    S: SwitchReadModel + CheckpointStore,
    E: Fn(&'static str) -> EF,
    EF: Future<Output = ()>,
    I: Fn(&'static str) -> IF,
    IF: Future<Output = Vec<String>>,
{
    execute(TABLES).await;
    let (live_at, built_at) = (GlobalPosition::new(0, 4), GlobalPosition::new(0, 9));
    store.save_checkpoint("users", live_at).await.unwrap();

    let refused = store
        .switch_read_model("users_rebuild", "users", SWAP)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::NotBuilt { rebuilt, live } if rebuilt == "users_rebuild" && live == "users"),
        "a rebuild without a checkpoint is refused with `NotBuilt`, got {refused:?}"
    );
    assert_eq!(
        index_names("users_new").await,
        ["users_new_email"],
        "a refused switch does not run its swap"
    );

    store
        .save_checkpoint("users_rebuild", built_at)
        .await
        .unwrap();
    let switched = store
        .switch_read_model("users_rebuild", "users", SWAP)
        .await
        .unwrap();
    assert_eq!(
        switched, built_at,
        "the switch returns where the rebuild got to"
    );
    assert_eq!(
        store.load_checkpoint("users").await.unwrap(),
        Some(built_at)
    );
    assert_eq!(store.load_checkpoint("users_rebuild").await.unwrap(), None);
    assert_eq!(
        index_names("users").await,
        ["users_email"],
        "the rebuilt table's index follows its new name"
    );
    assert!(index_names("users_new").await.is_empty());

    // A second rebuild, whose swap fails half-way: nothing of it stays.
    execute(
        "CREATE TABLE users_new (id TEXT PRIMARY KEY, email TEXT NOT NULL); \
         CREATE INDEX users_new_email ON users_new (email);",
    )
    .await;
    let again = GlobalPosition::new(0, 12);
    store.save_checkpoint("users_rebuild", again).await.unwrap();
    let failed = store
        .switch_read_model(
            "users_rebuild",
            "users",
            "DROP TABLE users; ALTER TABLE no_such_table RENAME TO users",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(failed, StoreError::Backend(_)),
        "a failing swap is a backend error, got {failed:?}"
    );
    assert_eq!(
        index_names("users").await,
        ["users_email"],
        "the live table is still there"
    );
    assert_eq!(
        store.load_checkpoint("users").await.unwrap(),
        Some(built_at)
    );
    assert_eq!(
        store.load_checkpoint("users_rebuild").await.unwrap(),
        Some(again),
        "a failed switch keeps the rebuild's checkpoint"
    );

    // A third rebuild keeps the old table beside: both tables are renamed, and each index
    // follows its own, whichever is renamed first. A quoted name is a name like another.
    // (The live index is made again last, so that a database listing its indexes in the
    // order they were made meets the rebuilt one, whose new name is still taken, first.)
    execute(
        "DROP TABLE users_new; DROP INDEX users_email; \
         CREATE TABLE users_new (id TEXT PRIMARY KEY, email TEXT NOT NULL); \
         CREATE INDEX \"users_new_email\" ON users_new (email); \
         CREATE INDEX users_email ON users (email);",
    )
    .await;
    let third = GlobalPosition::new(0, 15);
    store.save_checkpoint("users_rebuild", third).await.unwrap();
    let kept = store
        .switch_read_model(
            "users_rebuild",
            "users",
            "ALTER TABLE users RENAME TO users_old; ALTER TABLE users_new RENAME TO users",
        )
        .await
        .unwrap();
    assert_eq!(kept, third);
    assert_eq!(index_names("users").await, ["users_email"]);
    assert_eq!(index_names("users_old").await, ["users_old_email"]);
    let built_at = third;

    // Switched in for itself: an in-place migration, at the same position.
    let migrated = store
        .switch_read_model("users", "users", "ALTER TABLE users ADD COLUMN name TEXT")
        .await
        .unwrap();
    assert_eq!(migrated, built_at);
    assert_eq!(
        store.load_checkpoint("users").await.unwrap(),
        Some(built_at)
    );
}
