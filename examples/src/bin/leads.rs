//! Seed 002's story: Stefan Ivanov, lead 1410, from first import to conversion, told through
//! `eventsrc::Repository` on a `MemoryStore`; then the full event history, the lead now and as
//! it was earlier, and two commands racing a status change on lead 1406.
//!
//! Run with: cargo run -p eventsrc-examples --bin leads

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Debug;

use eventsrc::{
    Aggregate, AggregateCommand, Event, EventStore, ExecuteError, Handle, ManualClock, MemoryStore,
    Metadata, NewEvent, ReadStream, RecordedEvent, Repository, StreamVersion, Timestamp,
};
use eventsrc_examples::leads::{
    ChangeContactInformation, ChangeName, ChangeStatus, Date, InitializeLead, Lead, LeadId,
    LeadStatus, SetFollowup, StatusChanged,
};
use eventsrc_examples::race::RacingStore;
use uuid::Uuid;

const STEFAN: LeadId = LeadId(1410);
const LILYANA: LeadId = LeadId(1406);

/// 2016-11-01T00:00:00Z in seconds since the Unix epoch; the story happens that month.
const NOVEMBER_2016: i64 = 1_477_958_400;

/// An instant in November 2016, UTC.
fn november(day: i64, hour: i64, minute: i64) -> Timestamp {
    let seconds = NOVEMBER_2016 + (day - 1) * 86_400 + hour * 3_600 + minute * 60;
    Timestamp::from_micros(seconds * 1_000_000)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // A manual clock stamps `recorded_at`, so the story happens in November 2016.
    let clock = ManualClock::new(november(14, 9, 0));
    let store = MemoryStore::with_clock(clock.clone());
    let repository = Repository::new(store.clone());
    let mut journal = Journal::new(clock);

    eventsrc::registry::check()?;
    println!("eventsrc: seed 002's leads on a MemoryStore");
    print_registry();
    println!("Each command goes through Repository::send: validate, load, decide, append.\n");
    stefans_story(&repository, &mut journal).await?;
    journal.print(STEFAN);
    print_history(&store, STEFAN, &journal).await?;
    print_time_travel(&repository).await?;

    println!(
        "\nOptimistic concurrency on steroids: lead 1406, while a colleague changes its status."
    );
    println!("A rename racing a status change is decided again and commits; a follow-up racing");
    println!(
        "one is a conflict (`Lead::conflicts`): it was scheduled for a status that is gone.\n"
    );
    let racing = RacingStore::new(store.clone());
    lilyanas_race(&Repository::new(racing.clone()), &racing, &mut journal).await?;
    journal.print(LILYANA);
    print_history(&store, LILYANA, &journal).await?;
    print_summary(&repository, LILYANA).await
}

/// One line: the lead's events as the registry knows them (checked at start-up).
fn print_registry() {
    let events: Vec<String> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates.contains(&Lead::TYPE))
        .map(|event| format!("{} v{}", event.name, event.version))
        .collect();
    println!(
        "Event registry checked: {} lead events ({})",
        events.len(),
        events.join(", ")
    );
}

/// Lead 1410 before its follow-up (`load_at`), on 2016-11-20 (`load_at_time`), and now.
async fn print_time_travel(repository: &Repository<MemoryStore>) -> Result<(), Box<dyn Error>> {
    println!("\nTime travel: lead 1410 at version 4, on 2016-11-20, and now");
    let at_v4 = repository
        .load_at::<Lead>(&STEFAN, StreamVersion(4))
        .await?;
    let on_the_20th = repository
        .load_at_time::<Lead>(&STEFAN, november(20, 0, 0))
        .await?;
    let now = repository.load::<Lead>(&STEFAN).await?;
    print_table(
        &["", "load_at(v4)", "load_at_time(2016-11-20)", "load (now)"],
        &lead_rows(&[
            (&at_v4.state, at_v4.version),
            (&on_the_20th.state, on_the_20th.version),
            (&now.state, now.version),
        ]),
    );
    Ok(())
}

/// One line: where lead `id` stands now.
async fn print_summary(
    repository: &Repository<MemoryStore>,
    id: LeadId,
) -> Result<(), Box<dyn Error>> {
    let lead = repository.load::<Lead>(&id).await?;
    let followup = lead.state.followup_on().map(|d| d.to_string());
    println!(
        "\nLead {id} now (v{}): {}, {}, follow-up {}",
        lead.version,
        lead.state.name(),
        lead.state.status(),
        followup.as_deref().unwrap_or("none"),
    );
    Ok(())
}

/// The talk's slide 14, plus a no-op, an invalid command and a rejected one.
async fn stefans_story(
    repository: &Repository<MemoryStore>,
    journal: &mut Journal,
) -> Result<(), Box<dyn Error>> {
    let lead = STEFAN;
    let contact = |email: &str, phone: &str| ChangeContactInformation {
        lead,
        email: email.into(),
        phone: phone.into(),
    };
    let import = "crm-import";
    journal
        .send(repository, import, InitializeLead { id: lead })
        .await?;
    journal.advance_seconds(1);
    let name = ChangeName {
        lead,
        name: "Stefan Ivanov".into(),
    };
    journal.send(repository, import, name.clone()).await?;
    journal.advance_seconds(1);
    let first_contact = contact("s.ivanov@example.com", "03-27243457");
    journal.send(repository, import, first_contact).await?;

    journal.set(november(16, 14, 30));
    let on = "2016-11-23".parse()?;
    journal
        .send(repository, "maria", SetFollowup { lead, on })
        .await?;
    journal.advance_seconds(60);
    // The form is sent again with nothing changed: a no-op, nothing appended.
    journal.send(repository, "maria", name).await?;

    journal.set(november(23, 10, 15));
    let typo = contact("stefan(at)example.bg", "050-8139904");
    journal.send(repository, "maria", typo).await?;
    journal.advance_seconds(30);
    let new_contact = contact("stefan@example.bg", "050-8139904");
    journal.send(repository, "maria", new_contact).await?;
    journal.advance_seconds(300);
    let status = LeadStatus::Converted;
    journal
        .send(repository, "maria", ChangeStatus { lead, status })
        .await?;

    journal.set(november(24, 9, 0));
    let rename = ChangeName {
        lead,
        name: "Stefan Petrov".into(),
    };
    journal.send(repository, "georgi", rename).await?;
    Ok(())
}

/// Two commands on lead 1406, each overtaken by a status change from another writer: the rename
/// is decided again and commits; the follow-up is a conflict (`Lead::conflicts`).
async fn lilyanas_race(
    repository: &Repository<RacingStore<MemoryStore>>,
    racing: &RacingStore<MemoryStore>,
    journal: &mut Journal,
) -> Result<(), Box<dyn Error>> {
    let lead = LILYANA;
    journal.set(november(14, 9, 5));
    let import = "crm-import";
    journal
        .send(repository, import, InitializeLead { id: lead })
        .await?;
    let name = ChangeName {
        lead,
        name: "Lilyana Yankov".into(),
    };
    journal.send(repository, import, name).await?;
    let contact = ChangeContactInformation {
        lead,
        email: "l.yankov@example.com".into(),
        phone: "04-6092212".into(),
    };
    journal.send(repository, import, contact).await?;
    journal.set(november(21, 11, 0));
    let on = Date::new(2016, 11, 25)?;
    journal
        .send(repository, "maria", SetFollowup { lead, on })
        .await?;

    journal.set(november(25, 16, 0));
    let stream = Lead::stream_id(&lead)?;
    let reopened = StatusChanged {
        status: LeadStatus::Available,
    };
    racing.race(stream.clone(), vec![journal.by_colleague(lead, &reopened)?]);
    let rename = ChangeName {
        lead,
        name: "Lilyana Yankova".into(),
    };
    journal.send(repository, "maria", rename).await?;

    journal.advance_seconds(120);
    let closed = StatusChanged {
        status: LeadStatus::Closed,
    };
    racing.race(stream, vec![journal.by_colleague(lead, &closed)?]);
    let on = Date::new(2016, 12, 2)?;
    journal
        .send(repository, "maria", SetFollowup { lead, on })
        .await?;
    Ok(())
}

/// The commands sent, with what became of each, and a label per command id for the history's
/// "caused by" column.
struct Journal {
    clock: ManualClock,
    entries: Vec<Entry>,
    labels: HashMap<Uuid, String>,
}

struct Entry {
    lead: LeadId,
    /// `None` for what another writer did.
    number: Option<usize>,
    at: Timestamp,
    actor: String,
    command: String,
    outcome: Option<String>,
}

impl Journal {
    fn new(clock: ManualClock) -> Self {
        Self {
            clock,
            entries: Vec::new(),
            labels: HashMap::new(),
        }
    }

    fn set(&self, time: Timestamp) {
        self.clock.set(time);
    }

    fn advance_seconds(&self, seconds: u64) {
        self.clock.advance(std::time::Duration::from_secs(seconds));
    }

    /// Sends `command` to its lead as `actor` and notes the outcome. Rejections, validation
    /// failures and conflicts are part of the story; any other failure ends the demo.
    async fn send<S, C>(
        &mut self,
        repository: &Repository<S>,
        actor: &str,
        command: C,
    ) -> Result<(), Box<dyn Error>>
    where
        S: EventStore,
        C: AggregateCommand<Aggregate = Lead> + Debug,
        Lead: Handle<C>,
    {
        let id = *command.aggregate_id();
        let number = self.entries.iter().filter(|e| e.number.is_some()).count() + 1;
        let label = format!("#{number} {}", command.name());
        let described = format!("{command:?}");
        let metadata = Metadata::new().with_actor(actor);
        let outcome = match repository.send(command, metadata).await {
            Ok(committed) if committed.is_noop() => {
                "no-op: the lead already holds this, nothing appended".to_owned()
            }
            Ok(committed) => {
                self.labels.insert(committed.command_id, label);
                let count = committed.events.len();
                let position = committed
                    .global_position
                    .map_or_else(|| "-".to_owned(), |p| p.to_string());
                let retried = match committed.attempts {
                    1 => String::new(),
                    n => format!(", decided {n} times (the stream moved on; no conflict)"),
                };
                format!(
                    "committed {count} event{}: stream at v{}, global position {position}{retried}",
                    if count == 1 { "" } else { "s" },
                    committed.stream_version,
                )
            }
            Err(
                error @ (ExecuteError::Invalid(_)
                | ExecuteError::Rejected(_)
                | ExecuteError::Conflict { .. }),
            ) => error.to_string(),
            Err(other) => return Err(other.into()),
        };
        self.entries.push(Entry {
            lead: id,
            number: Some(number),
            at: self.clock.now(),
            actor: actor.to_owned(),
            command: described,
            outcome: Some(outcome),
        });
        Ok(())
    }

    /// An event written by a colleague on another node, to be slipped in before our next
    /// append; noted in the journal where it happens.
    fn by_colleague(&mut self, id: LeadId, event: &impl Event) -> Result<NewEvent, Box<dyn Error>> {
        let actor = "georgi";
        let new = NewEvent::from_event(event, Metadata::new().with_actor(actor))?;
        self.entries.push(Entry {
            lead: id,
            number: None,
            at: self.clock.now(),
            actor: actor.to_owned(),
            command: format!(
                "(on another node, at the same moment) appends {} {}",
                new.event_type, new.payload
            ),
            outcome: None,
        });
        Ok(new)
    }

    /// Prints the commands sent to lead `id`, each followed by its outcome.
    fn print(&self, id: LeadId) {
        println!("Commands sent to lead {id}");
        let entries: Vec<&Entry> = self.entries.iter().filter(|e| e.lead == id).collect();
        let actor_width = entries.iter().map(|e| e.actor.len()).max().unwrap_or(0);
        for entry in entries {
            let number = entry.number.map_or_else(String::new, |n| format!("#{n}"));
            println!(
                "  {number:<3} {}  {:<actor_width$}  {}",
                entry.at, entry.actor, entry.command
            );
            if let Some(outcome) = &entry.outcome {
                println!("      -> {outcome}");
            }
        }
    }
}

/// Prints every stored event of lead `id` with its record fields.
async fn print_history(
    store: &MemoryStore,
    id: LeadId,
    journal: &Journal,
) -> Result<(), Box<dyn Error>> {
    let stream = Lead::stream_id(&id)?;
    println!("\nEvent history of {stream}");
    let records = store.read_stream(&stream, ReadStream::forward()).await?;
    let rows: Vec<Vec<String>> = records.iter().map(|r| history_row(r, journal)).collect();
    print_table(
        &[
            "ver",
            "position",
            "recorded_at",
            "event type",
            "payload",
            "actor",
            "caused by",
        ],
        &rows,
    );
    Ok(())
}

fn history_row(record: &RecordedEvent, journal: &Journal) -> Vec<String> {
    let caused_by = record
        .metadata
        .causation_id
        .and_then(|id| journal.labels.get(&id).cloned())
        .unwrap_or_else(|| "-".to_owned());
    vec![
        record.stream_version.to_string(),
        record.global_position.to_string(),
        record.recorded_at.to_string(),
        record.event_type.to_string(),
        record.payload.to_string(),
        record
            .metadata
            .actor
            .clone()
            .unwrap_or_else(|| "-".to_owned()),
        caused_by,
    ]
}

/// A row label and how to read that field of a lead.
type LeadField = (&'static str, fn(&Lead) -> String);

/// One row per field, one column per lead state.
fn lead_rows(states: &[(&Lead, StreamVersion)]) -> Vec<Vec<String>> {
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    let fields: [LeadField; 6] = [
        ("id", |l| {
            l.id().map_or_else(String::new, |id| id.to_string())
        }),
        ("name", |l| l.name().to_owned()),
        ("email", |l| l.email().to_owned()),
        ("phone", |l| l.phone().to_owned()),
        ("status", |l| l.status().to_string()),
        ("follow-up", |l| {
            l.followup_on().map_or_else(String::new, |d| d.to_string())
        }),
    ];
    let mut rows: Vec<Vec<String>> = fields
        .iter()
        .map(|(field, read)| {
            let mut row = vec![(*field).to_owned()];
            row.extend(states.iter().map(|(lead, _)| or_dash(&read(lead))));
            row
        })
        .collect();
    let mut versions = vec!["version".to_owned()];
    versions.extend(states.iter().map(|(_, version)| version.to_string()));
    rows.push(versions);
    rows
}

/// Prints `rows` under `headers`, every column as wide as its widest cell.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    let rules: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    line(headers.to_vec());
    line(rules.iter().map(String::as_str).collect());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
