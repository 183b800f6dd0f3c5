//! Inline projections on PostgreSQL: the contract every backend keeps, checked by the same
//! case as on SQLite (`eventsrc-testing`'s), on a schema of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use eventsrc::{EventId, InlineProjections, Metadata, NewEvent};
use eventsrc_postgres::{PgEventStore, PgProjection};
use eventsrc_testing::conformance::{InlineFixture, inline_projections_keep_the_contract};
use support::TestSchema;
use support::read_model::{Applied, Noted};

/// The `applied` read model of [`Applied`] in one schema.
struct Fixture {
    schema: String,
}

impl InlineFixture for Fixture {
    type Store = PgEventStore;
    type Projection = Applied;
    const NAME: &'static str = Applied::NAME;

    fn event(&self, n: u64) -> NewEvent {
        NewEvent::from_event(&Noted { n }, Metadata::new()).unwrap()
    }

    fn projection(&self, refuse: Option<u64>) -> Applied {
        Applied {
            refuse,
            ..Applied::in_schema(&self.schema)
        }
    }

    async fn applied(&self, store: &PgEventStore, id: EventId) -> u64 {
        let table = Applied::in_schema(&self.schema);
        let client = store.client().await.unwrap();
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("\"{}\".applied", self.schema)],
            )
            .await
            .unwrap()
            .get(0);
        if !exists {
            return 0;
        }
        table.applied(store, id).await as u64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_projections_keep_the_contract_on_postgres() {
    let Some(schema) = TestSchema::new("inline_projections_keep_the_contract").await else {
        return;
    };
    let store = schema.store().await;
    let fixture = Fixture {
        schema: schema.name.clone(),
    };
    inline_projections_keep_the_contract(&fixture, store).await;
    schema.drop().await;
}

#[tokio::test]
async fn the_trait_and_the_method_register_the_same_way() {
    let Some(schema) = TestSchema::new("the_trait_and_the_method_register").await else {
        return;
    };
    let store = schema.store().await;
    let inline = InlineProjections::with_inline(&store, Applied::in_schema(&schema.name))
        .await
        .unwrap();
    assert!(format!("{inline:?}").contains("applied"), "{inline:?}");
    assert!(!format!("{store:?}").contains("\"applied\""), "{store:?}");
    schema.drop().await;
}
