//! Retention (docs/relay.md, "Retention"): a background task that periodically drops messages older than the
//! configured age, and the oldest ones beyond the per-channel byte budget. Subscriptions that ask for dropped
//! messages get `retention_expired` instead of a silent gap (see [`crate::channel::ChannelFeed`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

use crate::error::RelayError;
use crate::log::ChannelLog;
use crate::stored::unix_millis;

/// Sweeps run every tenth of the retention period, within these bounds, so expiry lags by at most ~10%.
const MIN_SWEEP_PERIOD: Duration = Duration::from_secs(1);
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(60);

/// What to keep.
#[derive(Clone, Copy, Debug)]
pub struct RetentionPolicy {
    pub max_age: Duration,
    pub max_bytes: Option<u64>,
}

/// Removes everything the policy no longer keeps, now, counting the messages removed in `removed`.
pub async fn sweep(log: &dyn ChannelLog, policy: RetentionPolicy, removed: &Counter) -> Result<(), RelayError> {
    let max_age_ms = i64::try_from(policy.max_age.as_millis()).unwrap_or(i64::MAX);
    let cutoff_ms = unix_millis().saturating_sub(max_age_ms);
    for expiry in log.expire(cutoff_ms, policy.max_bytes).await? {
        removed.inc_by(expiry.removed);
        tracing::info!(channel = %expiry.channel, through_seq = expiry.through_seq, "retention removed messages");
    }
    Ok(())
}

/// Sweeps periodically until `shutdown` turns true.
pub async fn run(
    log: Arc<dyn ChannelLog>,
    policy: RetentionPolicy,
    removed: Counter,
    mut shutdown: watch::Receiver<bool>,
) {
    let period = (policy.max_age / 10).clamp(MIN_SWEEP_PERIOD, MAX_SWEEP_PERIOD);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = sweep(log.as_ref(), policy, &removed).await {
                    tracing::error!(%error, "retention sweep failed");
                }
            }
            _ = crate::stopped(&mut shutdown) => return,
        }
    }
}
