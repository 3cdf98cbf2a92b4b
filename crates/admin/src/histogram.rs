//! A latency histogram recorded with atomics only.
//!
//! `prometheus_client`'s own histogram takes a mutex per observation; the relay's log writer records one per
//! append on its single thread, so this one costs three relaxed atomic additions instead, and a scrape reads the
//! buckets without stopping the writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A histogram of durations, in seconds, over fixed bucket bounds; clones record into the same one.
#[derive(Clone, Debug)]
pub struct AtomicHistogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    /// Upper bounds in seconds, increasing; observations above the last go to the implicit `+Inf` bucket.
    bounds: &'static [f64],
    /// One count per bound plus `+Inf`: the observations that fell in that bucket (not cumulative).
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Total of the observations in nanoseconds: an integer, so that it can be added atomically.
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these bucket upper bounds (seconds, increasing).
    pub fn new(bounds: &'static [f64]) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Buckets { bounds, counts, count: AtomicU64::new(0), sum_nanos: AtomicU64::new(0) }))
    }

    /// Records one observation.
    pub fn observe(&self, duration: Duration) {
        let histogram = &self.0;
        let seconds = duration.as_secs_f64();
        let bucket = histogram.bounds.iter().position(|&bound| seconds <= bound).unwrap_or(histogram.bounds.len());
        histogram.counts[bucket].fetch_add(1, Ordering::Relaxed);
        histogram.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        histogram.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // A scrape may see an observation in `count` before its bucket; Prometheus tolerates such a skew of a
        // few, and locking to avoid it is what this type exists not to do.
        let histogram = &self.0;
        let buckets: Vec<(f64, u64)> = histogram
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(histogram.counts.iter().map(|count| count.load(Ordering::Relaxed)))
            .collect();
        let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, histogram.count.load(Ordering::Relaxed), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
