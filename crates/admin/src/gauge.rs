//! Gauges of things open: up while a guard lives.

use prometheus_client::metrics::gauge::Gauge;

/// Keeps a gauge one higher while it lives, so that whatever holds it (a stream, a subscription, a long-poll) is
/// counted exactly as long as it exists, however it ends.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
