//! `#[command]` with every validation rule and handler routing.
use eventsrc::{aggregate, command, Command, Decision, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Renamed {
    name: String,
}

#[derive(Default)]
struct Lead {
    name: String,
}

#[aggregate(id = String)]
impl Lead {
    fn on_renamed(&mut self, event: &Renamed) {
        self.name = event.name.clone();
    }
}

impl Lead {
    fn rename(&self, command: &Rename) -> Decision<Self> {
        if command.name == self.name {
            return Ok(vec![]);
        }
        Ok(vec![Renamed { name: command.name.clone() }.into()])
    }
}

fn has_at(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.contains('@'))
}

#[command(aggregate = Lead, handler = Lead::rename)]
struct Rename {
    #[id]
    lead: String,
    #[validate(non_empty, message = "is required")]
    name: String,
    #[validate(range(min = 0, max = 5))]
    priority: u8,
    #[validate(range(min = 0.5))]
    score: f64,
    #[validate(with = has_at, message = "must be an e-mail address")]
    email: Option<String>,
    #[validate(non_empty)]
    tags: Vec<String>,
}

fn main() {
    let command = Rename {
        lead: "1".into(),
        name: " ".into(),
        priority: 9,
        score: 0.1,
        email: Some("nope".into()),
        tags: vec![],
    };
    assert_eq!(command.validate().unwrap_err().fields.len(), 5);
    assert_eq!(command.name(), "Rename");
}
