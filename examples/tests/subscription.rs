//! Specs for the subscriptions service: attribute validation (every failing field at once),
//! decisions against state (events, no-ops, rejections), written with `eventsrc-testing`'s
//! `AggregateFixture` (which also checks that every event round-trips and that the state rebuilt
//! from the events equals the deciding state); the stored form of each event; and a subscription's
//! life through a repository.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::{
    Aggregate, Command, Event, EventStore, ExecuteError, FieldError, MemoryStore, Metadata,
    Repository, StreamVersion,
};

use eventsrc::Store;
use eventsrc::store::ReadStream;
use eventsrc_examples::subscription::{
    Activate, Activated, Create, Created, Deactivate, Deactivated, Subscription, SubscriptionError,
    SubscriptionEvent, SubscriptionId, SubscriptionStatus,
};
use eventsrc_testing::{AggregateFixture, assert_round_trip, assert_upcasts};

const ID: SubscriptionId = SubscriptionId(12);

/// A spec for subscription 12, which does not exist until given events or created.
fn subscription() -> AggregateFixture<Subscription> {
    AggregateFixture::new()
}

fn created() -> SubscriptionEvent {
    Created {
        email: "ada@example.com".into(),
        plan: "monthly".into(),
    }
    .into()
}

fn activated(key: &str) -> SubscriptionEvent {
    Activated {
        payment_key: key.into(),
    }
    .into()
}

fn deactivated() -> SubscriptionEvent {
    Deactivated {}.into()
}

fn create(email: &str, plan: &str) -> Create {
    Create {
        subscription: ID,
        email: email.into(),
        plan: plan.into(),
    }
}

fn activate(key: &str) -> Activate {
    Activate {
        subscription: ID,
        payment_key: key.into(),
    }
}

const DEACTIVATE: Deactivate = Deactivate { subscription: ID };

fn blank(field: &'static str) -> FieldError {
    FieldError {
        field,
        message: "can't be blank".into(),
    }
}

// --- attribute validation ------------------------------------------------------------------------

#[test]
fn create_lists_every_missing_attribute() {
    subscription()
        .given_nothing()
        .when(create("", "  "))
        .then_invalid(&["email", "plan"])
        .when(create("ada@example.com", ""))
        .then_invalid(&["plan"])
        .when(create("ada@example.com", "monthly"))
        .then_events([created()]);
    // The fixture names the failing fields; the messages are read from the command itself.
    let error = create("", "  ").validate().unwrap_err();
    assert_eq!(error.fields, [blank("email"), blank("plan")]);
    assert_eq!(
        error.to_string(),
        "invalid command: `email` can't be blank; `plan` can't be blank"
    );
}

#[test]
fn activate_needs_a_payment_key() {
    subscription()
        .given([created()])
        .when(activate(""))
        .then_invalid(&["payment_key"])
        .when(activate(" \t"))
        .then_invalid(&["payment_key"])
        .when(activate("sub_66123"))
        .then_events([activated("sub_66123")])
        // Deactivate has no attribute to validate.
        .when(DEACTIVATE)
        .then_events([deactivated()]);
    let error = activate("").validate().unwrap_err();
    assert_eq!(error.fields, [blank("payment_key")]);
}

// --- Create --------------------------------------------------------------------------------------

#[test]
fn creating_records_the_trimmed_attributes() {
    subscription()
        .given_nothing()
        .when(create(" ada@example.com", "monthly "))
        .then_events([created()])
        .then_state(|subscription| {
            assert_eq!(subscription.status(), Some(SubscriptionStatus::Pending));
            assert_eq!(subscription.email(), "ada@example.com");
            assert_eq!(subscription.plan(), "monthly");
        });
}

#[test]
fn creating_again_is_a_noop_with_the_same_attributes_and_rejected_with_others() {
    subscription()
        .given([created()])
        .when(create("ada@example.com", "monthly"))
        .then_no_events()
        .when(create("ada@example.com", "yearly"))
        .then_error(SubscriptionError::AlreadyExists {
            email: "ada@example.com".into(),
            plan: "monthly".into(),
        })
        .then_error_message(
            "the subscription already exists, for ada@example.com on plan `monthly`",
        );
}

// --- Activate ------------------------------------------------------------------------------------

#[test]
fn activating_records_the_payment_key() {
    subscription()
        .given([created()])
        .when(activate("sub_66123"))
        .then_events([activated("sub_66123")])
        .then_state(|subscription| {
            assert!(subscription.is_active());
            assert_eq!(subscription.payment_key(), Some("sub_66123"));
        });
}

#[test]
fn activating_an_active_subscription_with_the_same_key_is_a_noop() {
    subscription()
        .given([created(), activated("sub_66123")])
        .when(activate("sub_66123"))
        .then_no_events()
        .when(activate(" sub_66123 "))
        .then_no_events();
}

#[test]
fn activating_an_active_subscription_with_another_key_is_rejected() {
    subscription()
        .given([created(), activated("sub_66123")])
        .when(activate("sub_70001"))
        .then_error(SubscriptionError::ActiveWithAnotherKey);
}

#[test]
fn a_deactivated_subscription_can_be_activated_again() {
    // With the key it had, or with another one.
    subscription()
        .given([created(), activated("sub_66123"), deactivated()])
        .when(activate("sub_66123"))
        .then_events([activated("sub_66123")])
        .when(DEACTIVATE)
        .then_events([deactivated()])
        .when(activate("sub_70001"))
        .then_events([activated("sub_70001")])
        .then_state(|subscription| {
            assert!(subscription.is_active());
            assert_eq!(subscription.payment_key(), Some("sub_70001"));
        });
}

// --- Deactivate ----------------------------------------------------------------------------------

#[test]
fn deactivating_an_active_subscription_records_it() {
    subscription()
        .given([created(), activated("sub_66123")])
        .when(DEACTIVATE)
        .then_events([deactivated()])
        .then_state(|subscription| {
            assert_eq!(subscription.status(), Some(SubscriptionStatus::Inactive));
            assert!(!subscription.is_active());
            assert_eq!(subscription.payment_key(), Some("sub_66123"));
        });
}

#[test]
fn deactivating_what_is_not_active_is_a_noop() {
    subscription()
        .given([created(), activated("sub_66123"), deactivated()])
        .when(DEACTIVATE)
        .then_no_events();
    subscription()
        .given([created()])
        .when(DEACTIVATE)
        .then_no_events();
}

#[test]
fn commands_for_a_missing_subscription_are_rejected() {
    subscription()
        .given_nothing()
        .when(activate("sub_66123"))
        .then_error(SubscriptionError::NotFound)
        .when(DEACTIVATE)
        .then_error(SubscriptionError::NotFound)
        .then_error_message("no such subscription: send `Create` first");
}

// --- the stored form -----------------------------------------------------------------------------

#[test]
fn the_event_registry_knows_every_subscription_event() {
    eventsrc::registry::check().unwrap();
    let registered: Vec<(&str, u32)> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates == [Subscription::TYPE])
        .map(|event| (event.name, event.version))
        .collect();
    assert_eq!(
        registered,
        [
            ("subscription.activated", 1),
            ("subscription.created", 1),
            ("subscription.deactivated", 1),
        ]
    );
    assert_eq!(
        Subscription::stream_id(&ID).unwrap().as_str(),
        "subscription-12"
    );
}

#[test]
fn every_event_round_trips_under_its_own_name() {
    let stored = [
        (
            created(),
            "subscription.created",
            r#"{"email":"ada@example.com","plan":"monthly"}"#,
        ),
        (
            activated("sub_66123"),
            "subscription.activated",
            r#"{"payment_key":"sub_66123"}"#,
        ),
        (deactivated(), "subscription.deactivated", "{}"),
    ];
    for (event, name, payload) in stored {
        assert_eq!((event.event_type(), event.schema_version()), (name, 1));
        assert_eq!(event.encode().unwrap(), payload);
        assert_round_trip(&event);
    }
    // The event on its own, outside the subscription's enum, under the same name.
    assert_eq!(Deactivated {}.event_type(), "subscription.deactivated");
    assert_round_trip(&Deactivated {});
    // The Rust type's name is not the stored name.
    assert!(SubscriptionEvent::decode("Created", 1, "{}").is_err());
}

#[test]
fn a_stripe_key_payload_reads_as_a_payment_key() {
    let stored = r#"{"stripe_key":"sub_66123"}"#;
    assert_upcasts("subscription.activated", 1, stored, &activated("sub_66123"));
}

// --- a subscription through a repository ---------------------------------------------------------

#[tokio::test]
async fn a_subscription_lives_through_the_repository() {
    a_subscription_through_a_repository_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_subscription_lives_through_the_repository_on_sqlite() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    a_subscription_through_a_repository_on(store).await;
}

async fn a_subscription_through_a_repository_on(store: impl EventStore + Clone) {
    let repository = Repository::new(store.clone());
    let by_user = || Metadata::new().with("user_id", 123);

    let invalid = repository.send(create("", ""), by_user()).await;
    match invalid {
        Err(ExecuteError::Invalid(error)) => {
            assert_eq!(error.fields, [blank("email"), blank("plan")]);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    repository
        .send(create("ada@example.com", "monthly"), by_user())
        .await
        .unwrap();
    let notified = Metadata::new().with("notification_id", 33_456);
    let first = repository
        .send(activate("sub_66123"), notified.clone())
        .await
        .unwrap();
    assert_eq!(first.stream_version, StreamVersion(2));
    let again = repository
        .send(activate("sub_66123"), notified)
        .await
        .unwrap();
    assert!(again.is_noop());
    let rejected = repository.send(activate("sub_70001"), by_user()).await;
    assert!(matches!(
        rejected,
        Err(ExecuteError::Rejected(
            SubscriptionError::ActiveWithAnotherKey
        ))
    ));
    repository.send(DEACTIVATE, by_user()).await.unwrap();
    assert!(
        repository
            .send(DEACTIVATE, by_user())
            .await
            .unwrap()
            .is_noop()
    );

    let loaded = repository.load::<Subscription>(&ID).await.unwrap();
    assert_eq!(loaded.version, StreamVersion(3));
    assert_eq!(loaded.state.status(), Some(SubscriptionStatus::Inactive));

    let stream = Subscription::stream_id(&ID).unwrap();
    let records = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    let stored: Vec<(&str, Option<&serde_json::Value>)> = records
        .iter()
        .map(|r| (&*r.event_type, r.metadata.extra.values().next()))
        .collect();
    assert_eq!(
        stored,
        [
            ("subscription.created", Some(&123.into())),
            ("subscription.activated", Some(&33_456.into())),
            ("subscription.deactivated", Some(&123.into())),
        ]
    );
}
