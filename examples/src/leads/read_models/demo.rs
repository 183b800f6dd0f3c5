//! The read models in the leads demo: followed live while the story is told, then read.

use std::error::Error;
use std::io::Write;

use eventsrc::runner::Progress;
use eventsrc::time::ManualClock;
use eventsrc::{EventStore, GlobalPosition};
use eventsrc_sqlite::SqliteProjection;

use super::{
    ByReadModel, LeadReadModels, LeadSearch, Placement, REBUILD_NAME, REBUILD_TABLE, Rebuilt,
    StatusLog, WAIT,
};
use crate::leads::LeadId;
use crate::leads::story::{self, LILYANA, STEFAN, Told, print_table};

/// What [`tell_with_read_models`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projected {
    /// What the story did.
    pub told: Told,
    /// Where the read models' checkpoints stood before this run (`None`: never ran here).
    pub before: ByReadModel<Option<GlobalPosition>>,
    /// Where the read models got to in this run, and how many events each read.
    pub progress: ByReadModel<Progress>,
}

/// The searches the demo makes, each with what it shows.
const SEARCHES: [(&str, &str); 5] = [
    (
        "s.ivanov@example.com",
        "Stefan's first e-mail, replaced on 2016-11-23",
    ),
    ("03 2724 3457", "his first phone, typed another way"),
    ("stefan@example.bg", "his e-mail now"),
    ("L.Yankov@Example.com", "Lilyana's e-mail, in other letters"),
    ("0888 123 456", "a number no lead ever had"),
];

/// Tells the story ([`story::tell`]) on the read models' log while both read models follow it
/// live, waits until they have seen the story's last append (read-your-writes), stops them and
/// prints them ([`print_read_models`]).
///
/// On a SQLite log the read models are tables of the same database and continue from their
/// checkpoints run after run: each event is applied once, whatever the number of runs.
pub async fn tell_with_read_models<S>(
    read_models: &LeadReadModels<S>,
    clock: &ManualClock,
    out: &mut dyn Write,
) -> Result<Projected, Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let before = read_models.checkpoints().await?;
    // An error below drops `following`, which stops the runners.
    let following = read_models.follow();
    let told = story::tell(read_models.log(), clock, out).await?;
    let head = read_models.log().head_position().await?;
    following
        .wait_for((head != GlobalPosition::START).then_some(head), WAIT)
        .await?;
    let progress = following.stop().await?;
    let projected = Projected {
        told,
        before,
        progress,
    };
    print_read_models(out, read_models, &projected).await?;
    Ok(projected)
}

/// Prints where the read models are and how far they got, then what they answer: the demo's
/// searches in [`LeadSearch`], every contact of lead 1410, the [`StatusLog`] of both leads and
/// its transitions per pair of statuses.
pub async fn print_read_models<S>(
    out: &mut dyn Write,
    read_models: &LeadReadModels<S>,
    projected: &Projected,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    print_placement(out, read_models)?;
    let position = |p: Option<GlobalPosition>| p.map_or_else(|| "-".to_owned(), |p| p.to_string());
    let row = |name: &str, before: Option<GlobalPosition>, progress: Progress| {
        vec![
            name.to_owned(),
            position(before),
            progress.handled.to_string(),
            position(progress.position),
        ]
    };
    let (before, progress) = (projected.before, projected.progress);
    print_table(
        out,
        &[
            "read model",
            "checkpoint before",
            "events read now",
            "checkpoint now",
        ],
        &[
            row(LeadSearch::NAME, before.lead_search, progress.lead_search),
            row(StatusLog::NAME, before.status_log, progress.status_log),
        ],
    )?;
    writeln!(
        out,
        "  Both followed the log live while the story ran; the demo waited until they had seen its \
         last append\n  (read-your-writes), and reads them now."
    )?;
    print_searches(out, read_models).await?;
    print_contacts(out, read_models, STEFAN).await?;
    print_status_log(out, read_models).await?;
    print_transitions(out, read_models).await
}

fn print_placement<S>(out: &mut dyn Write, read_models: &LeadReadModels<S>) -> std::io::Result<()>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let placement = match (read_models.placement(), read_models.tables().path()) {
        (Placement::LogDatabase, _) => {
            "in the log's own SQLite database; each batch is committed with its checkpoint, so \
             the next run\n  continues from there"
        }
        (Placement::Beside, None) => {
            "in a SQLite database in memory beside the log, with their checkpoints: built from \
             the whole log\n  on every run"
        }
        (Placement::Beside, Some(_)) => {
            "in a SQLite database beside the log; each batch is committed with its checkpoint, \
             so the next run\n  continues from there"
        }
    };
    writeln!(
        out,
        "\nRead models (one stream, many read models): tables `{}` and `{}`,\n  {placement}.",
        LeadSearch::TABLE,
        StatusLog::TABLE
    )
}

/// Each of the demo's searches and the leads it finds.
async fn searches<S>(
    read_models: &LeadReadModels<S>,
) -> Result<Vec<(&'static str, Vec<LeadId>)>, Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let mut found = Vec::with_capacity(SEARCHES.len());
    for (text, _) in SEARCHES {
        found.push((text, LeadSearch::find(read_models.tables(), text).await?));
    }
    Ok(found)
}

fn leads(found: &[LeadId]) -> String {
    if found.is_empty() {
        return "-".to_owned();
    }
    let ids: Vec<String> = found.iter().map(ToString::to_string).collect();
    ids.join(", ")
}

async fn print_searches<S>(
    out: &mut dyn Write,
    read_models: &LeadReadModels<S>,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    writeln!(
        out,
        "\nLeadSearch: who had this e-mail or phone? Every value a lead ever had, not only its \
         current one\n(e-mails in any case, phones by their digits):"
    )?;
    let rows: Vec<Vec<String>> = searches(read_models)
        .await?
        .into_iter()
        .zip(SEARCHES)
        .map(|((text, found), (_, what))| vec![text.to_owned(), leads(&found), what.to_owned()])
        .collect();
    print_table(out, &["search", "leads", "what it is"], &rows)?;
    Ok(())
}

async fn print_contacts<S>(
    out: &mut dyn Write,
    read_models: &LeadReadModels<S>,
    lead: LeadId,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    writeln!(out, "\nEvery contact lead {lead} ever had (LeadSearch):")?;
    let rows: Vec<Vec<String>> = LeadSearch::contacts_of(read_models.tables(), lead)
        .await?
        .into_iter()
        .map(|contact| {
            vec![
                contact.kind.to_string(),
                contact.value,
                format!("v{}", contact.first_version),
                contact.first_seen.to_string(),
                if contact.current { "yes" } else { "-" }.to_owned(),
            ]
        })
        .collect();
    print_table(
        out,
        &["kind", "value", "first seen", "recorded_at", "current"],
        &rows,
    )?;
    Ok(())
}

async fn print_status_log<S>(
    out: &mut dyn Write,
    read_models: &LeadReadModels<S>,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    writeln!(out, "\nStatus-change log, leads {STEFAN} and {LILYANA}:")?;
    let mut rows = Vec::new();
    for lead in [STEFAN, LILYANA] {
        for change in StatusLog::history(read_models.tables(), lead).await? {
            rows.push(vec![
                change.lead.to_string(),
                change.version.to_string(),
                change.at.to_string(),
                change.actor.unwrap_or_else(|| "-".to_owned()),
                change
                    .from
                    .map_or_else(|| "(new)".to_owned(), |s| s.to_string()),
                change.to.to_string(),
            ]);
        }
    }
    print_table(out, &["lead", "ver", "at", "actor", "from", "to"], &rows)?;
    Ok(())
}

async fn print_transitions<S>(
    out: &mut dyn Write,
    read_models: &LeadReadModels<S>,
) -> Result<(), Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    writeln!(
        out,
        "\nThe analysis: how often leads moved from one status to another (StatusLog::transitions):"
    )?;
    let rows: Vec<Vec<String>> = StatusLog::transitions(read_models.tables())
        .await?
        .into_iter()
        .map(|transition| {
            vec![
                transition
                    .from
                    .map_or_else(|| "(new)".to_owned(), |s| s.to_string()),
                transition.to.to_string(),
                transition.count.to_string(),
            ]
        })
        .collect();
    print_table(out, &["from", "to", "times"], &rows)?;
    Ok(())
}

/// Rebuilds [`LeadSearch`] beside the live table, `batch_size` events per transaction, printing
/// each batch's progress, switches it in, and checks that the demo's searches answer as they
/// did before ([`LeadReadModels::rebuild_lead_search`]). Stop any live runner first.
pub async fn tell_rebuild<S>(
    read_models: &LeadReadModels<S>,
    batch_size: usize,
    out: &mut dyn Write,
) -> Result<Rebuilt, Box<dyn Error>>
where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let before = searches(read_models).await?;
    writeln!(
        out,
        "\nRebuild: LeadSearch is projected again from the whole log into `{REBUILD_TABLE}`, \
         beside the live\ntable, which keeps serving; {batch_size} events per transaction, under \
         the checkpoint `{REBUILD_NAME}`."
    )?;
    let mut lines = Vec::new();
    let mut handled = 0;
    let rebuilt = read_models
        .rebuild_lead_search(batch_size, |progress| {
            let at = progress
                .position
                .map_or_else(|| "-".to_owned(), |p| p.to_string());
            let caught_up = if progress.caught_up {
                ", caught up"
            } else {
                ""
            };
            lines.push(format!(
                "  batch {}: {}, checkpoint at {at}{caught_up}",
                lines.len() + 1,
                events(progress.handled - handled),
            ));
            handled = progress.handled;
        })
        .await?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "Switched in, in one transaction: `{REBUILD_TABLE}` is now `{}`, whose checkpoint moved to \
         {}\n({} in {} transactions); `{REBUILD_NAME}` is gone.",
        LeadSearch::TABLE,
        rebuilt.position,
        events(rebuilt.events),
        rebuilt.batches,
    )?;
    let after = searches(read_models).await?;
    if after == before {
        writeln!(
            out,
            "The demo's {} searches answer as before the rebuild.",
            after.len()
        )?;
    } else {
        writeln!(out, "The searches answer differently after the rebuild:")?;
        for ((text, was), (_, now)) in before.iter().zip(&after) {
            writeln!(out, "  {text}: {} before, {} now", leads(was), leads(now))?;
        }
    }
    Ok(rebuilt)
}

/// `1 event`, `2 events`.
fn events(n: u64) -> String {
    if n == 1 {
        "1 event".to_owned()
    } else {
        format!("{n} events")
    }
}
