//! Specs for seed 001's subscriptions: attribute validation (every failing field at once),
//! decisions against state (events, no-ops, rejections), the stored form of each event, and a
//! subscription's life through a repository.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use eventsrc::{
    Aggregate, Command, Event, EventStore, ExecuteError, FieldError, Handle, MemoryStore, Metadata,
    ReadStream, Repository, StreamVersion,
};
use eventsrc_examples::store::AnyStore;
use eventsrc_examples::subscription::{
    Activate, Activated, Create, Created, Deactivate, Deactivated, Subscription, SubscriptionError,
    SubscriptionEvent, SubscriptionId, SubscriptionStatus,
};

const ID: SubscriptionId = SubscriptionId(12);

fn given(events: &[SubscriptionEvent]) -> Subscription {
    let mut subscription = Subscription::default();
    for event in events {
        subscription.apply(event);
    }
    subscription
}

fn when<C: Command>(
    subscription: &Subscription,
    command: C,
) -> Result<Vec<SubscriptionEvent>, SubscriptionError>
where
    Subscription: Handle<C>,
{
    subscription.handle(&command)
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
    assert!(create("ada@example.com", "monthly").validate().is_ok());
    let error = create("", "  ").validate().unwrap_err();
    assert_eq!(error.fields, [blank("email"), blank("plan")]);
    assert_eq!(
        error.to_string(),
        "invalid command: `email` can't be blank; `plan` can't be blank"
    );
    let error = create("ada@example.com", "").validate().unwrap_err();
    assert_eq!(error.fields, [blank("plan")]);
}

#[test]
fn activate_needs_a_payment_key() {
    assert!(activate("sub_66123").validate().is_ok());
    for key in ["", " \t"] {
        let error = activate(key).validate().unwrap_err();
        assert_eq!(error.fields, [blank("payment_key")], "{key:?}");
    }
    assert!(DEACTIVATE.validate().is_ok());
}

// --- Create --------------------------------------------------------------------------------------

#[test]
fn creating_records_the_trimmed_attributes() {
    let events = when(&given(&[]), create(" ada@example.com", "monthly ")).unwrap();
    assert_eq!(events, [created()]);
    let subscription = given(&events);
    assert_eq!(subscription.status(), Some(SubscriptionStatus::Pending));
    assert_eq!(subscription.email(), "ada@example.com");
    assert_eq!(subscription.plan(), "monthly");
}

#[test]
fn creating_again_is_a_noop_with_the_same_attributes_and_rejected_with_others() {
    let subscription = given(&[created()]);
    assert_eq!(
        when(&subscription, create("ada@example.com", "monthly")),
        Ok(vec![])
    );
    assert_eq!(
        when(&subscription, create("ada@example.com", "yearly")),
        Err(SubscriptionError::AlreadyExists {
            email: "ada@example.com".into(),
            plan: "monthly".into()
        })
    );
}

// --- Activate ------------------------------------------------------------------------------------

#[test]
fn activating_records_the_payment_key() {
    let events = when(&given(&[created()]), activate("sub_66123")).unwrap();
    assert_eq!(events, [activated("sub_66123")]);
    let subscription = given(&[created(), activated("sub_66123")]);
    assert!(subscription.is_active());
    assert_eq!(subscription.payment_key(), Some("sub_66123"));
}

#[test]
fn activating_an_active_subscription_with_the_same_key_is_a_noop() {
    let subscription = given(&[created(), activated("sub_66123")]);
    assert_eq!(when(&subscription, activate("sub_66123")), Ok(vec![]));
    assert_eq!(when(&subscription, activate(" sub_66123 ")), Ok(vec![]));
}

#[test]
fn activating_an_active_subscription_with_another_key_is_rejected() {
    let subscription = given(&[created(), activated("sub_66123")]);
    assert_eq!(
        when(&subscription, activate("sub_70001")),
        Err(SubscriptionError::ActiveWithAnotherKey)
    );
}

#[test]
fn a_deactivated_subscription_can_be_activated_again() {
    let subscription = given(&[created(), activated("sub_66123"), deactivated()]);
    assert_eq!(
        when(&subscription, activate("sub_66123")),
        Ok(vec![activated("sub_66123")])
    );
    assert_eq!(
        when(&subscription, activate("sub_70001")),
        Ok(vec![activated("sub_70001")])
    );
}

// --- Deactivate ----------------------------------------------------------------------------------

#[test]
fn deactivating_an_active_subscription_records_it() {
    let events = when(&given(&[created(), activated("sub_66123")]), DEACTIVATE).unwrap();
    assert_eq!(events, [deactivated()]);
    let subscription = given(&[created(), activated("sub_66123"), deactivated()]);
    assert_eq!(subscription.status(), Some(SubscriptionStatus::Inactive));
    assert!(!subscription.is_active());
    assert_eq!(subscription.payment_key(), Some("sub_66123"));
}

#[test]
fn deactivating_what_is_not_active_is_a_noop() {
    let inactive = given(&[created(), activated("sub_66123"), deactivated()]);
    assert_eq!(when(&inactive, DEACTIVATE), Ok(vec![]));
    let pending = given(&[created()]);
    assert_eq!(when(&pending, DEACTIVATE), Ok(vec![]));
}

#[test]
fn commands_for_a_missing_subscription_are_rejected() {
    let nothing = given(&[]);
    assert_eq!(
        when(&nothing, activate("sub_66123")),
        Err(SubscriptionError::NotFound)
    );
    assert_eq!(when(&nothing, DEACTIVATE), Err(SubscriptionError::NotFound));
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
        assert_eq!(event.event_type(), name);
        assert_eq!(event.schema_version(), 1);
        assert_eq!(event.encode().unwrap(), payload);
        assert_eq!(SubscriptionEvent::decode(name, 1, payload).unwrap(), event);
    }
    let deactivated = Deactivated {};
    let payload = deactivated.encode().unwrap();
    assert_eq!(
        Deactivated::decode("subscription.deactivated", 1, &payload).unwrap(),
        deactivated
    );
    // The Rust type's name is not the stored name.
    assert!(SubscriptionEvent::decode("Created", 1, "{}").is_err());
}

#[test]
fn the_talks_stripe_key_payload_reads_as_a_payment_key() {
    let event =
        SubscriptionEvent::decode("subscription.activated", 1, r#"{"stripe_key":"sub_66123"}"#);
    assert_eq!(event.unwrap(), activated("sub_66123"));
}

// --- a subscription through a repository ---------------------------------------------------------

#[tokio::test]
async fn a_subscription_lives_through_the_repository() {
    a_subscription_through_a_repository_on(MemoryStore::new()).await;
}

#[tokio::test]
async fn a_subscription_lives_through_the_repository_on_sqlite() {
    let store = AnyStore::open("sqlite::memory:").await.unwrap();
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
