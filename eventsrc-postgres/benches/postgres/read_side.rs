//! The read side's part of the PostgreSQL bench: a projection rebuilt over the seeded log
//! beside the same rebuild by hand, the live latency from an append to a read model, and what
//! an inline projection costs an append.

use std::time::{Duration, Instant};

use eventsrc::Runner;
use eventsrc::Tenants;
use eventsrc::{EventStore, ExpectedVersion, RecordedEvent, StreamVersion, Tenant};
use eventsrc_postgres::deadpool_postgres::Transaction;
use eventsrc_postgres::tokio_postgres;
use eventsrc_postgres::{BatchError, PgProjection, PgReadModel};

use super::{Bench, ItemAdded, Row, new_event, rate, raw_scan, scale, store_scan, stream};

/// The rebuild's read model: items sold and revenue per SKU (97 SKUs), one additive upsert
/// per event (exactly once, so adding is safe).
#[derive(Clone)]
struct SkuTotals {
    table: String,
}

impl SkuTotals {
    /// The upsert, for both sides: `$1` SKU, `$2` items, `$3` cents.
    fn upsert(&self) -> String {
        format!(
            "INSERT INTO {} AS t (sku, items, total_cents) VALUES ($1, $2, $3) \
             ON CONFLICT (sku) DO UPDATE SET items = t.items + excluded.items, \
                 total_cents = t.total_cents + excluded.total_cents",
            self.table
        )
    }

    fn create(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (sku text PRIMARY KEY, items bigint NOT NULL, \
                 total_cents bigint NOT NULL)",
            self.table
        )
    }
}

impl PgProjection for SkuTotals {
    const NAME: &'static str = "sku_totals";
    type Event = ItemAdded;
    type Error = tokio_postgres::Error;

    async fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        tx.batch_execute(&self.create()).await
    }

    async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: ItemAdded,
        _: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        let statement = tx.prepare_cached(&self.upsert()).await?;
        let items = i64::from(event.quantity);
        let total = event.price_cents as i64 * items;
        tx.execute(&statement, &[&event.sku, &items, &total])
            .await
            .map(drop)
    }
}

/// Raw: the same rebuild by hand, on one connection: pages of `batch` events read in log
/// order with a plain keyset `SELECT` (short statements, as the runner's, so that no
/// snapshot stays open for the whole rebuild and keeps the upserted rows' old versions
/// alive), each page in one transaction of upserts with the same prepared statement and the
/// checkpoint row moved before `COMMIT`.
async fn raw_rebuild(bench: &Bench, model: &SkuTotals, batch: u64) -> u64 {
    let client = bench.client().await;
    client
        .batch_execute(&model.create())
        .await
        .expect("creates");
    let page = client
        .prepare(&format!(
            "SELECT payload::text, transaction_id, position FROM {} \
             WHERE tenant = 'default' AND (transaction_id, position) > ($1, $2) \
             ORDER BY transaction_id, position LIMIT $3",
            bench.table()
        ))
        .await
        .expect("prepares");
    let upsert = client.prepare(&model.upsert()).await.expect("prepares");
    let checkpoint = client
        .prepare(&format!(
            "INSERT INTO \"{}\".checkpoints (tenant, subscriber, commit_id, sequence) \
             VALUES ('default', 'raw_rebuild', $1, $2) ON CONFLICT (tenant, subscriber) \
             DO UPDATE SET commit_id = excluded.commit_id, sequence = excluded.sequence",
            bench.schema
        ))
        .await
        .expect("prepares");
    let (mut seen, mut last) = (0u64, (0i64, 0i64));
    loop {
        let found = client
            .query(&page, &[&last.0, &last.1, &(batch as i64)])
            .await
            .expect("reads a page");
        let Some(end) = found.last() else { break };
        client.batch_execute("BEGIN").await.expect("begins");
        for row in &found {
            let event: ItemAdded = serde_json::from_str(row.get(0)).expect("decodes");
            let items = i64::from(event.quantity);
            let total = event.price_cents as i64 * items;
            client
                .execute(&upsert, &[&event.sku, &items, &total])
                .await
                .expect("upserts");
        }
        last = (end.get(1), end.get(2));
        client
            .execute(&checkpoint, &[&last.0, &last.1])
            .await
            .expect("checkpoints");
        client.batch_execute("COMMIT").await.expect("commits");
        seen += found.len() as u64;
    }
    seen
}

/// Figures of the read side that have no raw counterpart: a rate or a latency.
pub(crate) struct Figure {
    pub name: String,
    pub value: String,
}

/// The projection rebuild, eventsrc beside raw, and the scan it reads in its pages.
pub(crate) async fn rebuild_rows(bench: &Bench, rows: &mut Vec<Row>, total: u64) {
    const BATCH: usize = 500;
    let store = &bench.store;
    let model = SkuTotals {
        table: format!("\"{}\".sku_totals", bench.schema),
    };
    let runner_model = PgReadModel::new(model.clone(), store.clone());
    let mut runner = Runner::new(store.clone(), runner_model).batch_size(BATCH);
    let started = Instant::now();
    let progress = runner.catch_up().await.expect("rebuilds");
    let store_time = started.elapsed();
    assert_eq!(progress.handled, total);

    let raw_model = SkuTotals {
        table: format!("\"{}\".sku_totals_raw", bench.schema),
    };
    let started = Instant::now();
    assert_eq!(raw_rebuild(bench, &raw_model, BATCH as u64).await, total);
    let raw_time = started.elapsed();
    let client = bench.client().await;
    let sums = |table: &str| {
        format!("SELECT sum(items)::bigint, sum(total_cents)::bigint, count(*) FROM {table}")
    };
    let ours = client
        .query_one(&sums(&model.table), &[])
        .await
        .expect("sums");
    let theirs = client
        .query_one(&sums(&raw_model.table), &[])
        .await
        .expect("sums");
    let sum = |row: &tokio_postgres::Row| {
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
        )
    };
    assert_eq!(sum(&ours), sum(&theirs), "both rebuilds agree");
    rows.push(Row {
        name: format!(
            "projection rebuild of {total} events into a table (Runner + PgReadModel, batches of \
             {BATCH}, one upsert per event)"
        ),
        eventsrc: rate(total, store_time),
        raw: rate(total, raw_time),
        unit: "events/s",
    });

    let select = client
        .prepare(&format!(
            "SELECT position, transaction_id, stream, stream_version, event_id, event_type, \
             schema_version, payload::text, metadata::text, recorded_at FROM {} \
             WHERE tenant = 'default' ORDER BY transaction_id, position",
            bench.table()
        ))
        .await
        .expect("prepares");
    let started = Instant::now();
    assert_eq!(store_scan(store, BATCH).await, total);
    let store_time = started.elapsed();
    let started = Instant::now();
    assert_eq!(raw_scan(&client, &select).await, total);
    let raw_time = started.elapsed();
    let scan = rate(total, store_time);
    rows.push(Row {
        name: format!(
            "read-all scan of {total} events, what the rebuild reads (eventsrc in pages of \
             {BATCH}, raw in one SELECT)"
        ),
        eventsrc: scan,
        raw: rate(total, raw_time),
        unit: "events/s",
    });

    // The same read model written a batch at a time: one statement per batch.
    let batched = Batched(SkuTotals {
        table: format!("\"{}\".sku_totals_batched", bench.schema),
    });
    let table = batched.0.table.clone();
    let mut runner =
        Runner::new(store.clone(), PgReadModel::new(batched, store.clone())).batch_size(BATCH);
    let started = Instant::now();
    let progress = runner.catch_up().await.expect("rebuilds");
    let batched_time = started.elapsed();
    assert_eq!(progress.handled, total);
    let batched_sums = client.query_one(&sums(&table), &[]).await.expect("sums");
    assert_eq!(
        sum(&batched_sums),
        sum(&theirs),
        "the batched rebuild agrees"
    );
    rows.push(Row {
        name: format!(
            "projection rebuild of {total} events, `apply_batch` writing each batch of {BATCH} \
             in one statement, beside eventsrc's read-all scan (the \"raw\" column)"
        ),
        eventsrc: rate(total, batched_time),
        raw: scan,
        unit: "events/s",
    });
}

/// [`SkuTotals`] applying a whole batch with one statement: the batch's rows summed per SKU
/// from arrays (`unnest`), then one upsert.
struct Batched(SkuTotals);

impl PgProjection for Batched {
    const NAME: &'static str = "sku_totals_batched";
    type Event = ItemAdded;
    type Error = tokio_postgres::Error;

    async fn setup(&mut self, tx: &Transaction<'_>) -> Result<(), Self::Error> {
        self.0.setup(tx).await
    }

    async fn apply(
        &mut self,
        tx: &Transaction<'_>,
        event: ItemAdded,
        record: &RecordedEvent,
    ) -> Result<(), Self::Error> {
        self.0.apply(tx, event, record).await
    }

    async fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        events: Vec<(ItemAdded, &RecordedEvent)>,
    ) -> Result<(), BatchError<Self::Error>> {
        let mut skus = Vec::with_capacity(events.len());
        let mut items = Vec::with_capacity(events.len());
        let mut totals = Vec::with_capacity(events.len());
        for (event, _) in events {
            let count = i64::from(event.quantity);
            totals.push(event.price_cents as i64 * count);
            items.push(count);
            skus.push(event.sku);
        }
        let sql = format!(
            "INSERT INTO {} AS t (sku, items, total_cents) \
             SELECT sku, sum(items), sum(total) \
             FROM unnest($1::text[], $2::int8[], $3::int8[]) AS b(sku, items, total) \
             GROUP BY sku \
             ON CONFLICT (sku) DO UPDATE SET items = t.items + excluded.items, \
                 total_cents = t.total_cents + excluded.total_cents",
            self.0.table
        );
        let statement = tx.prepare_cached(&sql).await?;
        tx.execute(&statement, &[&skus, &items, &totals]).await?;
        Ok(())
    }
}

/// The `p`-th percentile of sorted `samples`.
fn percentile(samples: &[Duration], p: f64) -> Duration {
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at.min(samples.len() - 1)]
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Live latency: one append at a time into a tenant of its own, at its stream's exact version
/// as a command makes it, each timed from when the append returns to when a live runner's progress shows the read model committed past it.
/// Then what an inline projection costs an append.
pub(crate) async fn latency_figures(bench: &Bench, figures: &mut Vec<Figure>) {
    let samples = scale(2_000) as usize;
    let store = bench.store.with_tenant(Tenant::new("latency"));
    let model = SkuTotals {
        table: format!("\"{}\".sku_totals_live", bench.schema),
    };
    let runner = Runner::new(
        store.clone(),
        PgReadModel::new(model.clone(), store.clone()),
    )
    .poll_interval(Duration::from_secs(5));
    let progress = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async {
        stopped.await.ok();
    }));
    let (mut appends, mut reached) = (Vec::new(), Vec::new());
    for n in 0..samples as u64 {
        // At the version the stream is at, as a command appends.
        let expected = match n / 100 {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(StreamVersion(version)),
        };
        let started = Instant::now();
        let appended = store
            .append(&stream(n % 100), expected, vec![new_event(n)])
            .await
            .expect("appends");
        let returned = Instant::now();
        progress
            .wait_for(appended.position, Duration::from_secs(30))
            .await
            .expect("the read model follows");
        reached.push(returned.elapsed());
        appends.push(returned - started);
    }
    stop.send(()).ok();
    task.await
        .expect("the runner stopped")
        .expect("the runner ran");
    reached.sort();
    appends.sort();
    figures.push(Figure {
        name: format!(
            "live read model: append returned → read model committed, {samples} appends \
             (Runner + PgReadModel woken by NOTIFY), p50 / p99"
        ),
        value: format!(
            "{} / {}",
            millis(percentile(&reached, 0.5)),
            millis(percentile(&reached, 0.99))
        ),
    });
    figures.push(Figure {
        name: "the same appends' own latency, p50 / p99".into(),
        value: format!(
            "{} / {}",
            millis(percentile(&appends, 0.5)),
            millis(percentile(&appends, 0.99))
        ),
    });

    // An inline projection: the same appends, with and without, in alternating rounds.
    const ROUNDS: u64 = 4;
    let inline = store
        .with_tenant(Tenant::new("inline"))
        .with_inline(SkuTotals {
            table: format!("\"{}\".sku_totals_inline", bench.schema),
        })
        .await
        .expect("sets up");
    let plain = store.with_tenant(Tenant::new("inline"));
    let per_round = samples as u64 / ROUNDS;
    let (mut inline_time, mut plain_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        for (handle, time, offset) in [
            (&inline, &mut inline_time, 0),
            (&plain, &mut plain_time, 1_000),
        ] {
            let started = Instant::now();
            for n in 0..per_round {
                handle
                    .append(
                        &stream(offset + round * 100 + n % 100),
                        ExpectedVersion::Any,
                        vec![new_event(n)],
                    )
                    .await
                    .expect("appends");
            }
            *time += started.elapsed();
        }
    }
    figures.push(Figure {
        name: "single-event appends, 1 writer: with an inline projection (one upsert) / without"
            .into(),
        value: format!(
            "{:.0} / {:.0} appends/s",
            rate(per_round * ROUNDS, inline_time),
            rate(per_round * ROUNDS, plain_time)
        ),
    });
}
