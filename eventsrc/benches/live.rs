//! Live latency on the memory store: from an append returning to a read model having applied
//! it, through a `Runner` woken by the store's append signal. Prints p50 and p99.
//!
//! Run with `cargo bench -p eventsrc --bench live`.

use std::time::{Duration, Instant};

use eventsrc::Projection;
use eventsrc::{
    Event, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, RecordedEvent, StreamId,
};
use eventsrc::{InMemory, Runner};
use serde::{Deserialize, Serialize};

#[derive(Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ItemAdded {
    sku: String,
    quantity: u32,
}

#[derive(Event, Debug)]
enum Sales {
    Added(ItemAdded),
}

/// Units sold: the read model the appends update.
#[derive(Default)]
struct Units(u64);

impl Projection for Units {
    const NAME: &'static str = "units";
    type Event = Sales;
    type Error = std::convert::Infallible;
    fn apply(&mut self, event: Sales, _: &RecordedEvent) -> Result<(), Self::Error> {
        let Sales::Added(added) = event;
        self.0 += u64::from(added.quantity);
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    const SAMPLES: usize = 20_000;
    const WARM_UP: usize = 1_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = MemoryStore::new();
        let target = InMemory::new(Units::default());
        let model = target.model();
        let runner = Runner::new(store.clone(), target);
        let progress = runner.progress();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(runner.run(async {
            stopped.await.ok();
        }));
        let stream = StreamId::new("cart", "1").expect("a stream id");
        let mut samples = Vec::with_capacity(SAMPLES);
        for n in 0..WARM_UP + SAMPLES {
            let event = ItemAdded {
                sku: format!("sku-{}", n % 97),
                quantity: 1,
            };
            let new = NewEvent::from_event(&event, Metadata::new()).expect("encodes");
            let appended = store
                .append(&stream, ExpectedVersion::Any, vec![new])
                .await
                .expect("appends");
            let returned = Instant::now();
            progress
                .wait_for(appended.position, Duration::from_secs(10))
                .await
                .expect("the read model follows");
            if n >= WARM_UP {
                samples.push(returned.elapsed());
            }
        }
        assert_eq!(model.read().0, (WARM_UP + SAMPLES) as u64);
        stop.send(()).ok();
        task.await.expect("joins").expect("runs");
        samples.sort();
        println!("\n| live read model latency, memory store | p50 | p99 |");
        println!("|---|---:|---:|");
        println!(
            "| append returned → `InMemory` projection applied ({SAMPLES} appends, `Runner` woken by the append signal) | {:.1} µs | {:.1} µs |",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6
        );
    });
}
