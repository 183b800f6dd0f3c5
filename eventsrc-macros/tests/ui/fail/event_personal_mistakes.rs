//! Every mistake with personal fields is reported in one compile, at the field, saying what to
//! write instead.
use eventsrc::Event;
use serde::{Deserialize, Serialize};

// A personal field without a subject, and one that cannot read as `null`.
#[derive(Event, Serialize, Deserialize)]
struct NoSubject {
    #[event(personal)]
    name: String,
}

// Two subjects, and a subject marked personal.
#[derive(Event, Serialize, Deserialize)]
struct TwoSubjects {
    #[event(subject)]
    buyer: String,
    #[event(subject, personal)]
    seller: String,
    #[event(personal)]
    address: Option<String>,
}

// A subject without personal fields, and an unknown field key.
#[derive(Event, Serialize, Deserialize)]
struct NothingPersonal {
    #[event(subject)]
    user: String,
    #[event(secret)]
    note: String,
}

// `rename_all` hides the stored keys; `flatten` spreads them.
#[derive(Event, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Renamed {
    #[event(subject)]
    user_id: String,
    #[event(personal)]
    #[serde(flatten)]
    full_name: Option<std::collections::HashMap<String, String>>,
}

// On an enum's variant fields.
#[derive(Event, Serialize, Deserialize)]
enum Changed {
    Named {
        #[event(personal)]
        name: Option<String>,
    },
}

fn main() {}
