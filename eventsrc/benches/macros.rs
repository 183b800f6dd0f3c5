//! What the macros cost at run time: decoding stored events and applying them through the code
//! `#[derive(Event)]` and `#[aggregate]` generate, beside the same written by hand (a `match`
//! on the stored name, serde_json straight into the type, a `match` fold), in one criterion run.
//!
//! Run with: `cargo bench -p eventsrc --bench macros`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventsrc::{Aggregate, Event, aggregate};
use serde::{Deserialize, Serialize};

// The generated side: five event types of the leads domain.

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct LeadWasInitialized {
    id: u64,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct StatusChanged {
    status: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct NameChanged {
    name: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ContactInformationChanged {
    email: String,
    phone: String,
}

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct FollowupSet {
    date: String,
}

#[derive(Default, Debug, PartialEq)]
struct Lead {
    id: u64,
    status: String,
    name: String,
    contacts: usize,
    followups: usize,
}

#[aggregate(id = u64)]
impl Lead {
    fn on_initialized(&mut self, e: &LeadWasInitialized) {
        self.id = e.id;
    }
    fn on_status(&mut self, e: &StatusChanged) {
        self.status.clone_from(&e.status);
    }
    fn on_name(&mut self, e: &NameChanged) {
        self.name.clone_from(&e.name);
    }
    fn on_contact(&mut self, e: &ContactInformationChanged) {
        self.contacts += e.email.len() + e.phone.len();
    }
    fn on_followup(&mut self, e: &FollowupSet) {
        self.followups += e.date.len();
    }
}

// The hand-written side: the same types behind one enum, decoded and folded by hand.

enum ByHand {
    Initialized(LeadWasInitialized),
    Status(StatusChanged),
    Name(NameChanged),
    Contact(ContactInformationChanged),
    Followup(FollowupSet),
}

fn parse<T: serde::de::DeserializeOwned>(payload: &str) -> T {
    serde_json::from_str(payload).expect("decodes")
}

fn decode_by_hand(event_type: &str, payload: &str) -> ByHand {
    match event_type {
        "LeadWasInitialized" => ByHand::Initialized(parse(payload)),
        "StatusChanged" => ByHand::Status(parse(payload)),
        "NameChanged" => ByHand::Name(parse(payload)),
        "ContactInformationChanged" => ByHand::Contact(parse(payload)),
        "FollowupSet" => ByHand::Followup(parse(payload)),
        other => panic!("unknown {other}"),
    }
}

fn apply_by_hand(lead: &mut Lead, event: &ByHand) {
    match event {
        ByHand::Initialized(e) => lead.id = e.id,
        ByHand::Status(e) => lead.status.clone_from(&e.status),
        ByHand::Name(e) => lead.name.clone_from(&e.name),
        ByHand::Contact(e) => lead.contacts += e.email.len() + e.phone.len(),
        ByHand::Followup(e) => lead.followups += e.date.len(),
    }
}

/// A 1,000-event history as stored: (name, payload), every event type in turn.
fn history() -> Vec<(&'static str, String)> {
    (0..1_000u64)
        .map(|n| {
            let event: LeadEvent = match n % 5 {
                0 => LeadWasInitialized { id: n }.into(),
                1 => StatusChanged {
                    status: "FollowUp".into(),
                }
                .into(),
                2 => NameChanged {
                    name: format!("Stefan Ivanov {n}"),
                }
                .into(),
                3 => ContactInformationChanged {
                    email: "s@example.com".into(),
                    phone: "03-27243457".into(),
                }
                .into(),
                _ => FollowupSet {
                    date: "2016-11-23".into(),
                }
                .into(),
            };
            (event.event_type(), event.encode().expect("encodes"))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let stored = history();
    let mut group = c.benchmark_group("decode_and_apply_1000");
    group.throughput(Throughput::Elements(stored.len() as u64));
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    // Both sides must fold to the same state before either is timed.
    let (mut generated, mut by_hand) = (Lead::default(), Lead::default());
    for (name, payload) in &stored {
        generated.apply(&LeadEvent::decode(name, 1, payload).expect("decodes"));
        apply_by_hand(&mut by_hand, &decode_by_hand(name, payload));
    }
    assert_eq!(generated, by_hand);

    group.bench_function("generated", |b| {
        b.iter(|| {
            let mut lead = Lead::default();
            for (name, payload) in &stored {
                lead.apply(
                    &LeadEvent::decode(black_box(name), 1, black_box(payload)).expect("decodes"),
                );
            }
            black_box(lead)
        })
    });
    group.bench_function("by_hand", |b| {
        b.iter(|| {
            let mut lead = Lead::default();
            for (name, payload) in &stored {
                apply_by_hand(
                    &mut lead,
                    &decode_by_hand(black_box(name), black_box(payload)),
                );
            }
            black_box(lead)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
