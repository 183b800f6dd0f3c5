//! Handlers read the time through `eventsrc::time::now()`, which the repository pins to its clock.

use std::time::Duration;

use eventsrc::{
    Decision, Event, MemoryStore, Metadata, Repository, SnapshotStore, Timestamp, aggregate,
    command,
};

use eventsrc::time::ManualClock;
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Stamped {
    at: Timestamp,
}

#[derive(Default, Debug, Serialize, Deserialize)]
struct Ticket {
    stamps: Vec<Timestamp>,
}

#[aggregate(id = u32, snapshot = 1, snapshot_every = 1)]
impl Ticket {
    fn on_stamped(&mut self, event: &Stamped) {
        self.stamps.push(event.at);
    }
}

#[command(aggregate = Ticket, handler = Ticket::stamp)]
struct Stamp {
    #[id]
    ticket: u32,
}

impl Ticket {
    fn stamp(&self, _: &Stamp) -> Decision<Self> {
        Ok(vec![
            Stamped {
                at: eventsrc::time::now(),
            }
            .into(),
        ])
    }
}

#[tokio::test]
async fn handlers_see_the_repository_clock_and_snapshots_carry_it() {
    let start = Timestamp::from_micros(1_500_000_000_000_000);
    let clock = ManualClock::new(start);
    let store = MemoryStore::new();
    let repository = Repository::new(store.clone())
        .with_snapshots(store.clone())
        .with_clock(clock.clone());

    repository
        .send(Stamp { ticket: 1 }, Metadata::new())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    repository
        .send(Stamp { ticket: 1 }, Metadata::new())
        .await
        .unwrap();

    let ticket = repository.load::<Ticket>(&1).await.unwrap();
    assert_eq!(
        ticket.state.stamps,
        vec![start, start + Duration::from_secs(60)]
    );
    let stream = eventsrc::StreamId::new("ticket", 1).unwrap();
    let snapshot = store
        .load_snapshot(&stream)
        .await
        .unwrap()
        .expect("a snapshot every event");
    assert_eq!(snapshot.taken_at, start + Duration::from_secs(60));
}

#[test]
fn outside_a_decision_now_is_the_system_time() {
    let pinned = Timestamp::from_micros(0);
    assert_eq!(eventsrc::time::at_time(pinned, eventsrc::time::now), pinned);
    assert!(eventsrc::time::now() > Timestamp::from_micros(1_600_000_000_000_000));
}
