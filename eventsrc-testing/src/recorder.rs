//! [`MetricsRecorder`]: what eventsrc's metrics said while a test ran.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// A recorder of the [`metrics`] facade that keeps every value in memory, installed for the
/// length of one closure on the current thread ([`run`](Self::run)), so that tests running
/// side by side do not see each other's metrics. The names are in `eventsrc::telemetry`.
///
/// Run the code under test on a current-thread runtime inside [`run`](Self::run): the metrics
/// are recorded by the thread that polls eventsrc's futures.
///
/// ```
/// # use eventsrc::prelude::*;
/// use eventsrc::{ExpectedVersion, MemoryStore, NewEvent, StreamId};
/// use eventsrc_testing::MetricsRecorder;
///
/// let metrics = MetricsRecorder::new();
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// metrics.run(|| runtime.block_on(async {
///     let store = MemoryStore::new();
///     let stream = StreamId::new("cart", "1")?;
///     let event = NewEvent::raw("ItemAdded", 1, r#"{"sku":"A1"}"#);
///     store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
///     Ok::<_, Box<dyn std::error::Error>>(())
/// }))?;
/// let labels = [("backend", "memory"), ("outcome", "committed")];
/// assert_eq!(metrics.counter("eventsrc_appends_total", &labels), 1);
/// assert_eq!(metrics.histogram("eventsrc_append_seconds", &[("backend", "memory")]).len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MetricsRecorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MetricsRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("series", &self.inner.lock().len())
            .finish()
    }
}

/// A series: a metric's name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

#[derive(Default)]
struct Inner {
    series: Mutex<BTreeMap<Series, Arc<Slot>>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Series, Arc<Slot>>> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, key: &Key) -> Arc<Slot> {
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        labels.sort();
        let series = (key.name().to_owned(), labels);
        Arc::clone(self.lock().entry(series).or_default())
    }
}

/// One series' value: a counter's or gauge's number, a histogram's samples.
#[derive(Default)]
struct Slot {
    value: Mutex<f64>,
    samples: Mutex<Vec<f64>>,
}

impl Slot {
    fn update(&self, change: impl FnOnce(&mut f64)) {
        change(&mut self.value.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl CounterFn for Slot {
    fn increment(&self, value: u64) {
        self.update(|v| *v += value as f64);
    }

    fn absolute(&self, value: u64) {
        self.update(|v| *v = v.max(value as f64));
    }
}

impl GaugeFn for Slot {
    fn increment(&self, value: f64) {
        self.update(|v| *v += value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| *v -= value);
    }

    fn set(&self, value: f64) {
        self.update(|v| *v = value);
    }
}

impl HistogramFn for Slot {
    fn record(&self, value: f64) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

impl Recorder for Inner {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.slot(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.slot(key))
    }
}

impl MetricsRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with this recorder installed on the current thread, and returns what it
    /// returns.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&*self.inner, f)
    }

    /// The value of the counter `name` with exactly the labels `labels` (in any order); 0 if
    /// it never moved.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.value(name, labels).unwrap_or(0.0) as u64
    }

    /// The sum of the counter `name` over every series whose labels include `labels`.
    pub fn counter_sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels)
            .map(|slot| *slot.value.lock().unwrap_or_else(PoisonError::into_inner))
            .sum::<f64>() as u64
    }

    /// The value of the gauge `name` with exactly the labels `labels`, if it was ever set.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.value(name, labels)
    }

    /// The samples recorded into the histogram `name` with exactly the labels `labels`.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.find(name, labels)
            .map(|slot| {
                slot.samples
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// Every metric name that was recorded, each once, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.lock().keys().map(|(n, _)| n.clone()).collect();
        names.dedup();
        names
    }

    /// Every series of `name`, as its labels, sorted.
    pub fn series(&self, name: &str) -> Vec<Vec<(String, String)>> {
        self.inner
            .lock()
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, labels)| labels.clone())
            .collect()
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.find(name, labels)
            .map(|slot| *slot.value.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<Arc<Slot>> {
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        wanted.sort();
        self.inner
            .lock()
            .get(&(name.to_owned(), wanted))
            .map(Arc::clone)
    }

    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> impl Iterator<Item = Arc<Slot>> {
        let series = self.inner.lock();
        let found: Vec<Arc<Slot>> = series
            .iter()
            .filter(|((n, have), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, slot)| Arc::clone(slot))
            .collect();
        found.into_iter()
    }
}
