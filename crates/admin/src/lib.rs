//! The admin listener every Skytale server can open (`--admin-listen ADDR`, docs/operations.md, "Health and
//! metrics"): `/healthz` (the process answers), `/readyz` (each component's store answers in time) and `/metrics`
//! (Prometheus, OpenMetrics text).
//!
//! A server describes itself as a [`Component`]: its metrics registry and its readiness check. `skytale relay` and
//! `skytale api` serve one component each; `skytale dev` serves the relay's and the API's on one listener. Each
//! server keeps its own [`Registry`](prometheus_client::registry::Registry) rather than a process-wide one, so two
//! relays in one process (tests, embedders) never mix their counts.

mod gauge;
mod histogram;
mod server;

pub use gauge::GaugeGuard;
pub use histogram::AtomicHistogram;
pub use server::{AdminError, AdminHandle, AdminServer, Component, Readiness, READINESS_TIMEOUT};
