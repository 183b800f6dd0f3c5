//! The leads demo, told on any event store: the `leads` binary prints it, the tests run it.
//!
//! [`tell`] looks at what the store already holds of its two leads and goes on from there, so a
//! demo on a SQLite file continues its history on every run:
//!
//! - **A store without them** (run 1): the story of Stefan Ivanov, lead 1410, from
//!   import to conversion, with a no-op, an invalid command and a rejected one; his event
//!   history; the lead at version 4, on 2016-11-20 and now. Then two commands on Lilyana
//!   Yankova's lead 1406 race a colleague's status changes (a [`RacingStore`] wrapped around
//!   the same store): the rename is decided again and commits, the follow-up is a conflict,
//!   and the lead is left closed.
//! - **A store that holds them** (run 2, 3, ...): "continuing the history from an earlier run".
//!   Stefan is converted, which is final, so the sales desk picks up lead 1406 where it stands,
//!   on the next working day after its last event: a closed lead is reopened and given a
//!   follow-up call a week out; a pending follow-up is called on its day and the next one set a
//!   week later. Then its history, which now spans runs, and the lead before this run and now.
//!
//! The store's clock is a [`ManualClock`] the story moves, so `recorded_at` reads as the
//! story's dates (November 2016 onwards) and the output is the same every time for the same
//! store contents. Every event carries the run that wrote it (`run`) and the command that
//! caused it (`command`) in its metadata.
//!
//! ```
//! use eventsrc::MemoryStore;
//! use eventsrc_examples::leads::story;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let clock = story::clock();
//! let store = MemoryStore::with_clock(clock.clone());
//! let mut out = Vec::new();
//! let told = story::tell(&store, &clock, &mut out).await?;
//! assert_eq!((told.run, told.earlier_events), (1, 0));
//! assert!(String::from_utf8(out)?.contains("Stefan Ivanov"));
//! # Ok::<(), Box<dyn std::error::Error>>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::error::Error;
use std::fmt::Debug;
use std::io::Write;
use std::time::Duration;

use eventsrc::{
    Aggregate, AggregateCommand, Event, EventStore, ExecuteError, Handle, Metadata, NewEvent,
    RecordedEvent, Repository, StreamVersion, Timestamp,
};

use eventsrc::time::ManualClock;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use eventsrc::store::ReadStream;

use super::{
    ChangeContactInformation, ChangeName, ChangeStatus, Date, InitializeLead, Lead, LeadId,
    LeadStatus, SetFollowup, StatusChanged,
};
use crate::race::RacingStore;

/// Stefan Ivanov's lead, 1410.
pub const STEFAN: LeadId = LeadId(1410);

/// Lilyana Yankova's lead 1406: the race in run 1, the follow-ups in later runs.
pub const LILYANA: LeadId = LeadId(1406);

/// The metadata key holding the run that wrote an event.
pub const RUN_KEY: &str = "run";

/// The metadata key holding the name of the command that caused an event.
pub const COMMAND_KEY: &str = "command";

/// What one telling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told {
    /// Which run this was: 1 on a store without the story's leads, else one more than the
    /// latest run recorded in their events.
    pub run: u64,
    /// How many events of leads 1410 and 1406 the store held before this run.
    pub earlier_events: u64,
    /// How many it holds now.
    pub events: u64,
}

/// A clock for the story's store, standing where the story starts (2016-11-14T09:00:00Z).
/// [`tell`] moves it; give a clone to the store so that `recorded_at` follows.
pub fn clock() -> ManualClock {
    ManualClock::new(november(14, 9, 0))
}

/// Tells the story on `store`, writing it to `out`: from the start on a store without leads
/// 1410 and 1406, else one more step of their history (see the [module](self) docs).
///
/// `clock` must be the clock `store` stamps `recorded_at` with. Rejected, invalid and
/// conflicting commands are part of the story; a failing store or a stored event that no longer
/// decodes ends it with an error.
pub async fn tell<S>(
    store: &S,
    clock: &ManualClock,
    out: &mut dyn Write,
) -> Result<Told, Box<dyn Error>>
where
    S: EventStore,
{
    eventsrc::registry::check()?;
    let repository = Repository::new(store);
    let stefan = version_of(store, STEFAN).await?;
    let lilyana = version_of(store, LILYANA).await?;
    let run = last_run(store).await? + 1;
    let earlier_events = stefan.get() + lilyana.get();
    let mut journal = Journal::new(clock.clone(), run);

    print_registry(out)?;
    if earlier_events > 0 {
        let last = last_recorded(store, LILYANA)
            .await?
            .max(last_recorded(store, STEFAN).await?);
        let last = last.map_or_else(|| "-".to_owned(), |t| t.to_string());
        writeln!(
            out,
            "Run {run}: continuing the history from an earlier run ({earlier_events} events of \
             leads {STEFAN} and {LILYANA} in this store, the last recorded {last})."
        )?;
    }
    writeln!(
        out,
        "Each command goes through Repository::send: validate, load, decide, append.\n"
    )?;

    if stefan == StreamVersion::NONE {
        stefans_story(&repository, &mut journal).await?;
        journal.print(out, STEFAN)?;
        print_history(out, store, STEFAN).await?;
        print_time_travel(out, &repository).await?;
    } else {
        print_summary(out, &repository, STEFAN).await?;
        writeln!(
            out,
            "  Converted is final: Stefan's story is told; the sales desk moves on to lead {LILYANA}."
        )?;
    }

    if lilyana == StreamVersion::NONE {
        writeln!(
            out,
            "\nOptimistic concurrency on steroids: lead {LILYANA}, while a colleague changes its \
             status.\nA rename racing a status change is decided again and commits; a follow-up \
             racing\none is a conflict (`Lead::conflicts`): it was scheduled for a status that is \
             gone.\n(The colleague's writes are staged by a RacingStore wrapped around this store.)\n"
        )?;
        let racing = RacingStore::new(store);
        lilyanas_race(&Repository::new(racing.clone()), &racing, &mut journal).await?;
        journal.print(out, LILYANA)?;
        print_history(out, store, LILYANA).await?;
        writeln!(out)?;
        print_summary(out, &repository, LILYANA).await?;
    } else {
        writeln!(out)?;
        next_followup(out, &repository, &mut journal).await?;
        journal.print(out, LILYANA)?;
        print_history(out, store, LILYANA).await?;
        print_before_and_now(out, &repository, LILYANA, lilyana, run).await?;
        writeln!(
            out,
            "\nThe race on lead {LILYANA} was staged in an earlier run; tell the story on a fresh store \
             (`--store memory:`, or start over: delete the SQLite file or drop the PostgreSQL schema) to see it again."
        )?;
    }

    let events = version_of(store, STEFAN).await?.get() + version_of(store, LILYANA).await?.get();
    Ok(Told {
        run,
        earlier_events,
        events,
    })
}

/// 2016-11-01T00:00:00Z in seconds since the Unix epoch; the story starts that month.
const NOVEMBER_2016: i64 = 1_477_958_400;

const SECONDS_PER_DAY: i64 = 86_400;

/// An instant in November 2016, UTC.
fn november(day: i64, hour: i64, minute: i64) -> Timestamp {
    let seconds = NOVEMBER_2016 + (day - 1) * SECONDS_PER_DAY + hour * 3_600 + minute * 60;
    Timestamp::from_micros(seconds * 1_000_000)
}

/// The latest run recorded in the metadata of the two leads' last events: 0 when neither has
/// events, 1 for events written before runs were recorded.
async fn last_run<S: EventStore>(store: &S) -> Result<u64, Box<dyn Error>> {
    let mut run = 0;
    for lead in [STEFAN, LILYANA] {
        if let Some(last) = last_event(store, lead).await? {
            let recorded = last.metadata.get(RUN_KEY).and_then(|run| run.as_u64());
            run = run.max(recorded.unwrap_or(1));
        }
    }
    Ok(run)
}

async fn version_of<S: EventStore>(
    store: &S,
    lead: LeadId,
) -> Result<StreamVersion, Box<dyn Error>> {
    Ok(store.stream_version(&Lead::stream_id(&lead)?).await?)
}

async fn last_event<S: EventStore>(
    store: &S,
    lead: LeadId,
) -> Result<Option<RecordedEvent>, Box<dyn Error>> {
    let stream = Lead::stream_id(&lead)?;
    let read = ReadStream::backward().limit(1);
    Ok(store.read_stream(&stream, read).await?.pop())
}

async fn last_recorded<S: EventStore>(
    store: &S,
    lead: LeadId,
) -> Result<Option<Timestamp>, Box<dyn Error>> {
    Ok(last_event(store, lead)
        .await?
        .map(|event| event.recorded_at))
}

/// One line: the lead's events as the registry knows them (checked at start-up).
fn print_registry(out: &mut dyn Write) -> std::io::Result<()> {
    let events: Vec<String> = eventsrc::registry::events()
        .into_iter()
        .filter(|event| event.aggregates.contains(&Lead::TYPE))
        .map(|event| format!("{} v{}", event.name, event.version))
        .collect();
    writeln!(
        out,
        "Event registry checked: {} lead events ({})",
        events.len(),
        events.join(", ")
    )
}

/// Stefan's lead from import to conversion, plus a no-op, an invalid command and a rejected
/// one.
async fn stefans_story<S: EventStore>(
    repository: &Repository<S>,
    journal: &mut Journal,
) -> Result<(), Box<dyn Error>> {
    let lead = STEFAN;
    let contact = |email: &str, phone: &str| ChangeContactInformation {
        lead,
        email: email.into(),
        phone: phone.into(),
    };
    let import = "crm-import";
    journal.set(november(14, 9, 0));
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
async fn lilyanas_race<S: EventStore>(
    repository: &Repository<RacingStore<S>>,
    racing: &RacingStore<S>,
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

/// A later run's step on lead 1406, on the next working day after its last event (or on the
/// day of its pending follow-up call): reopen a closed lead and schedule a call a week out, or
/// make the pending call and schedule the next one a week later.
async fn next_followup<S: EventStore>(
    out: &mut dyn Write,
    repository: &Repository<S>,
    journal: &mut Journal,
) -> Result<(), Box<dyn Error>> {
    let lead = LILYANA;
    let state = repository.load::<Lead>(&lead).await?.state;
    let last = last_recorded(repository.store(), lead).await?;
    let morning = next_working_morning(last.unwrap_or_else(|| november(14, 9, 0)))?;
    let week_later = |time: Timestamp| date_of(time + Duration::from_secs(7 * 86_400));
    match state.status() {
        LeadStatus::Converted => {
            writeln!(
                out,
                "Lead {lead} is converted, which is final: nothing is left to do on it."
            )?;
        }
        LeadStatus::Closed => {
            writeln!(
                out,
                "Lead {lead} is closed. On the next working day Maria reopens it and schedules \
                 the follow-up call again, a week out."
            )?;
            journal.set(morning);
            let status = LeadStatus::Available;
            journal
                .send(repository, "maria", ChangeStatus { lead, status })
                .await?;
            journal.advance_seconds(30);
            let on = week_later(morning)?;
            journal
                .send(repository, "maria", SetFollowup { lead, on })
                .await?;
        }
        LeadStatus::Available | LeadStatus::FollowUp => {
            let due = state
                .followup_on()
                .map(|day| at_hour(day, 10))
                .transpose()?;
            let call = due.filter(|due| last.is_none_or(|last| *due > last));
            let call = call.unwrap_or(morning);
            match state.followup_on() {
                Some(day) => writeln!(
                    out,
                    "Lead {lead} has a follow-up call due on {day}. Maria calls; {} asks to be \
                     called again a week later.",
                    first_name(&state)
                )?,
                None => writeln!(
                    out,
                    "Lead {lead} is available. Maria schedules a follow-up call a week out."
                )?,
            }
            journal.set(call);
            let on = week_later(call)?;
            journal
                .send(repository, "maria", SetFollowup { lead, on })
                .await?;
        }
    }
    Ok(())
}

fn first_name(lead: &Lead) -> &str {
    lead.name().split_whitespace().next().unwrap_or("the lead")
}

/// 09:00 UTC on the first Monday-to-Friday day after `time`'s day.
fn next_working_morning(time: Timestamp) -> Result<Timestamp, Box<dyn Error>> {
    let mut day = utc_day(time)?.tomorrow()?;
    while matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
        day = day.tomorrow()?;
    }
    Ok(at_utc(day, 9)?)
}

/// `hour`:00 UTC on `date`.
fn at_hour(date: Date, hour: i8) -> Result<Timestamp, jiff::Error> {
    at_utc(date.to_civil(), hour)
}

fn at_utc(day: jiff::civil::Date, hour: i8) -> Result<Timestamp, jiff::Error> {
    let instant = day.at(hour, 0, 0, 0).to_zoned_datetime(TimeZone::UTC)?;
    Ok(Timestamp::from(instant.timestamp()))
}

/// The UTC calendar day `time` falls on.
fn date_of(time: Timestamp) -> Result<Date, Box<dyn Error>> {
    Ok(Date::from_civil(utc_day(time)?)?)
}

fn utc_day(time: Timestamp) -> Result<jiff::civil::Date, eventsrc::InvalidTimestamp> {
    let instant = jiff::Timestamp::try_from(time)?;
    Ok(instant.to_zoned_datetime(TimeZone::UTC).date())
}

/// Lead 1410 before its follow-up (`load_at`), on 2016-11-20 (`load_at_time`), and now.
async fn print_time_travel<S: EventStore>(
    out: &mut dyn Write,
    repository: &Repository<S>,
) -> Result<(), Box<dyn Error>> {
    writeln!(
        out,
        "\nTime travel: lead {STEFAN} at version 4, on 2016-11-20, and now"
    )?;
    let at_v4 = repository
        .load_at::<Lead>(&STEFAN, StreamVersion(4))
        .await?;
    let on_the_20th = repository
        .load_at_time::<Lead>(&STEFAN, november(20, 0, 0))
        .await?;
    let now = repository.load::<Lead>(&STEFAN).await?;
    print_table(
        out,
        &["", "load_at(v4)", "load_at_time(2016-11-20)", "load (now)"],
        &lead_rows(&[
            (&at_v4.state, at_v4.version),
            (&on_the_20th.state, on_the_20th.version),
            (&now.state, now.version),
        ]),
    )?;
    Ok(())
}

/// Lead `id` as the earlier runs left it (at `before`) and now.
async fn print_before_and_now<S: EventStore>(
    out: &mut dyn Write,
    repository: &Repository<S>,
    id: LeadId,
    before: StreamVersion,
    run: u64,
) -> Result<(), Box<dyn Error>> {
    writeln!(
        out,
        "\nTime travel: lead {id} as the earlier runs left it, and now"
    )?;
    let then = repository.load_at::<Lead>(&id, before).await?;
    let now = repository.load::<Lead>(&id).await?;
    let then_header = format!("load_at(v{before}): before run {run}");
    print_table(
        out,
        &["", &then_header, "load (now)"],
        &lead_rows(&[(&then.state, then.version), (&now.state, now.version)]),
    )?;
    Ok(())
}

/// One line: where lead `id` stands now.
async fn print_summary<S: EventStore>(
    out: &mut dyn Write,
    repository: &Repository<S>,
    id: LeadId,
) -> Result<(), Box<dyn Error>> {
    let lead = repository.load::<Lead>(&id).await?;
    let followup = lead.state.followup_on().map(|d| d.to_string());
    writeln!(
        out,
        "Lead {id} now (v{}): {}, {}, follow-up {}",
        lead.version,
        lead.state.name(),
        lead.state.status(),
        followup.as_deref().unwrap_or("none"),
    )?;
    Ok(())
}

/// The commands sent in this run, with what became of each.
struct Journal {
    clock: ManualClock,
    run: u64,
    entries: Vec<Entry>,
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
    fn new(clock: ManualClock, run: u64) -> Self {
        Self {
            clock,
            run,
            entries: Vec::new(),
        }
    }

    fn set(&self, time: Timestamp) {
        self.clock.set(time);
    }

    fn advance_seconds(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
    }

    /// The metadata of what `actor` does in this run.
    fn metadata(&self, actor: &str) -> Metadata {
        Metadata::new().with_actor(actor).with(RUN_KEY, self.run)
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
        let described = format!("{command:?}");
        let metadata = self.metadata(actor).with(COMMAND_KEY, command.name());
        let outcome = match repository.send(command, metadata).await {
            Ok(committed) if committed.is_noop() => {
                "no-op: the lead already holds this, nothing appended".to_owned()
            }
            Ok(committed) => {
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
        let new = NewEvent::from_event(event, self.metadata(actor))?;
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
    fn print(&self, out: &mut dyn Write, id: LeadId) -> std::io::Result<()> {
        writeln!(out, "Commands sent to lead {id} in run {}", self.run)?;
        let entries: Vec<&Entry> = self.entries.iter().filter(|e| e.lead == id).collect();
        let actor_width = entries.iter().map(|e| e.actor.len()).max().unwrap_or(0);
        for entry in entries {
            let number = entry.number.map_or_else(String::new, |n| format!("#{n}"));
            writeln!(
                out,
                "  {number:<3} {}  {:<actor_width$}  {}",
                entry.at, entry.actor, entry.command
            )?;
            if let Some(outcome) = &entry.outcome {
                writeln!(out, "      -> {outcome}")?;
            }
        }
        Ok(())
    }
}

/// Prints every stored event of lead `id` with its record fields, whichever run wrote it.
async fn print_history<S: EventStore>(
    out: &mut dyn Write,
    store: &S,
    id: LeadId,
) -> Result<(), Box<dyn Error>> {
    let stream = Lead::stream_id(&id)?;
    writeln!(out, "\nEvent history of {stream}")?;
    let records = store.read_stream(&stream, ReadStream::forward()).await?;
    let rows: Vec<Vec<String>> = records.iter().map(history_row).collect();
    print_table(
        out,
        &[
            "ver",
            "run",
            "position",
            "recorded_at",
            "event type",
            "payload",
            "actor",
            "command",
        ],
        &rows,
    )?;
    Ok(())
}

fn history_row(record: &RecordedEvent) -> Vec<String> {
    let text = |key: &str| match record.metadata.get(key) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "-".to_owned(),
    };
    vec![
        record.stream_version.to_string(),
        text(RUN_KEY),
        record.global_position.to_string(),
        record.recorded_at.to_string(),
        record.event_type.to_string(),
        record.payload.to_string(),
        record
            .metadata
            .actor
            .clone()
            .unwrap_or_else(|| "-".to_owned()),
        text(COMMAND_KEY),
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
pub(crate) fn print_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "  {}", padded.join("  ").trim_end())
    };
    let rules: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    line(headers.to_vec())?;
    line(rules.iter().map(String::as_str).collect())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn days_and_instants_convert_both_ways() {
        assert_eq!(date_of(november(30, 23, 59)).unwrap(), date("2016-11-30"));
        assert_eq!(date_of(november(1, 0, 0)).unwrap(), date("2016-11-01"));
        assert_eq!(
            at_hour(date("2016-11-23"), 10).unwrap(),
            november(23, 10, 0)
        );
        assert_eq!(at_hour(date("2016-11-01"), 0).unwrap(), november(1, 0, 0));
        for text in ["1969-12-31", "2000-02-29", "2016-12-31", "9999-12-30"] {
            assert_eq!(
                date_of(at_hour(date(text), 9).unwrap()).unwrap(),
                date(text)
            );
        }
        // Before the year 1 there is no `Date`; beyond jiff's range no calendar day at all.
        assert!(date_of(Timestamp::from_micros(-62_200_000_000_000_000)).is_err());
        assert!(date_of(Timestamp::from_micros(i64::MAX)).is_err());
    }

    #[test]
    fn the_next_working_morning_skips_the_weekend() {
        // 2016-11-25 was a Friday, 2016-11-23 a Wednesday.
        assert_eq!(
            next_working_morning(november(25, 16, 2)).unwrap(),
            november(28, 9, 0)
        );
        assert_eq!(
            next_working_morning(november(26, 9, 0)).unwrap(),
            november(28, 9, 0)
        );
        assert_eq!(
            next_working_morning(november(23, 0, 0)).unwrap(),
            november(24, 9, 0)
        );
        let december_30 = november(30, 9, 0) + Duration::from_secs(30 * 86_400);
        assert_eq!(
            date_of(next_working_morning(december_30).unwrap()).unwrap(),
            date("2017-01-02")
        );
    }
}
