//! Personal fields: a string or numeric subject, renamed fields, a superseded shape with its
//! own personal fields, all registered per stored name and version.
use eventsrc::Event;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize)]
#[event(superseded_by = Registered, version = 1)]
struct RegisteredV1 {
    #[event(subject)]
    user: u64,
    #[event(personal)]
    name: Option<String>,
}

#[derive(Event, Serialize, Deserialize)]
#[event(name = "user.registered", version = 2, upcast_from = RegisteredV1)]
struct Registered {
    #[event(subject)]
    user: u64,
    #[event(personal)]
    #[serde(rename = "fullName")]
    name: Option<String>,
    #[event(personal)]
    email: ::core::option::Option<String>,
    plan: String,
}

impl From<RegisteredV1> for Registered {
    fn from(old: RegisteredV1) -> Self {
        Self { user: old.user, name: old.name, email: None, plan: "free".into() }
    }
}

fn main() {
    let v2 = eventsrc::registry::personal("user.registered", 2).unwrap();
    assert_eq!((v2.subject, v2.fields), ("user", &["fullName", "email"][..]));
    let v1 = eventsrc::registry::personal("user.registered", 1).unwrap();
    assert_eq!(v1.fields, &["name"][..]);
}
