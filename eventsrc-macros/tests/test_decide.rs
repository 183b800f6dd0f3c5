//! `#[command(aggregates = (A, B), error = E, handler = f)]`: a decision across streams whose
//! `Decide` impl the macro writes, with its ids taken from the `#[id]` fields in order, and
//! `Repository::decide` end to end.
#![allow(missing_docs)]

use eventsrc::{
    Decide, Decided, Event, ExecuteError, FieldError, MemoryStore, Metadata, Repository, StreamId,
    ValidationError, aggregate, command,
};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Registered {
    pub email: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Claimed {
    pub user: u32,
}

#[derive(Default, Debug)]
pub struct User {
    email: Option<String>,
}

#[aggregate(id = u32)]
impl User {
    fn on_registered(&mut self, event: &Registered) {
        self.email = Some(event.email.clone());
    }
}

#[derive(Default, Debug)]
pub struct EmailOwner {
    holder: Option<u32>,
}

#[aggregate(name = "email", id = String)]
impl EmailOwner {
    fn on_claimed(&mut self, event: &Claimed) {
        self.holder = Some(event.user);
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SignUpError {
    #[error("user {0} exists")]
    Exists(u32),
    #[error("{0} is taken")]
    Taken(String),
}

/// Registers a user under an address no one else holds.
#[command(aggregates = (User, EmailOwner), error = SignUpError, handler = sign_up)]
#[derive(Debug, Clone)]
pub struct SignUp {
    #[id]
    pub user: u32,
    #[id]
    #[validate(with = is_email)]
    pub email: String,
}

fn is_email(value: &str) -> bool {
    value.contains('@')
}

fn sign_up(command: &SignUp, (user, owner): &(User, EmailOwner)) -> Decided<SignUp> {
    if user.email.is_some() {
        return Err(SignUpError::Exists(command.user));
    }
    if owner.holder.is_some() {
        return Err(SignUpError::Taken(command.email.clone()));
    }
    Ok((
        vec![
            Registered {
                email: command.email.clone(),
            }
            .into(),
        ],
        vec![Claimed { user: command.user }.into()],
    ))
}

fn ada(user: u32) -> SignUp {
    SignUp {
        user,
        email: "ada@example.com".into(),
    }
}

#[test]
fn the_macro_writes_decide_with_ids_in_field_order() {
    assert_eq!(ada(7).ids(), (7, "ada@example.com".to_owned()));
}

#[tokio::test]
async fn a_decision_across_streams_commits_both_streams_and_refuses_a_taken_address() {
    let repository = Repository::new(MemoryStore::new());
    let committed = repository.decide(ada(1), Metadata::new()).await.unwrap();
    let streams: Vec<&StreamId> = committed.streams.iter().map(|s| &s.stream).collect();
    assert_eq!(
        streams.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["user-1", "email-ada@example.com"]
    );
    assert!(committed.streams.iter().all(|s| s.event_ids.len() == 1));

    match repository.decide(ada(2), Metadata::new()).await {
        Err(ExecuteError::Rejected(SignUpError::Taken(email))) => {
            assert_eq!(email, "ada@example.com")
        }
        other => panic!("expected the address to be taken, got {other:?}"),
    }
    let owner = repository
        .load::<EmailOwner>(&"ada@example.com".to_owned())
        .await
        .unwrap();
    assert_eq!(owner.state.holder, Some(1));
}

#[tokio::test]
async fn an_id_field_its_rule_refuses_is_invalid_even_when_it_names_no_stream() {
    // `email-\u{7f}` is no stream id (a control character): the field's rule answers first,
    // naming the field, instead of an error about a stream name.
    let repository = Repository::new(MemoryStore::new());
    let bad = SignUp {
        user: 1,
        email: "\u{7f}".into(),
    };
    match repository.decide(bad, Metadata::new()).await {
        Err(ExecuteError::Invalid(ValidationError { fields })) => {
            let named: Vec<_> = fields.iter().map(|f| f.field).collect();
            assert_eq!(named, ["email"]);
        }
        other => panic!("expected the e-mail rule to fail, got {other:?}"),
    }
    // An id no rule refuses, but no stream can take, is still the stream's error.
    let unnamable = SignUp {
        user: 1,
        email: "a@\u{7f}".into(),
    };
    match repository.decide(unnamable, Metadata::new()).await {
        Err(ExecuteError::Load(eventsrc::LoadError::Stream(error))) => {
            assert_eq!(error.value, "email-a@\u{7f}");
        }
        other => panic!("expected an invalid stream id, got {other:?}"),
    }
    assert!(repository.store().is_empty());
}

#[tokio::test]
async fn the_field_rules_run_before_anything_is_loaded() {
    let repository = Repository::new(MemoryStore::new());
    let bad = SignUp {
        user: 1,
        email: "nobody".into(),
    };
    match repository.decide(bad, Metadata::new()).await {
        Err(ExecuteError::Invalid(ValidationError { fields })) => assert_eq!(
            fields,
            [FieldError {
                field: "email",
                message: "is invalid".into()
            }]
        ),
        other => panic!("expected the e-mail rule to fail, got {other:?}"),
    }
    assert!(repository.store().is_empty());
}
