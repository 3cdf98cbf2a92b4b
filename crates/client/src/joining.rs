//! Joiner side of the invite flow: redeem the token with a key package, then wait for the owner's answer.
//!
//! The wait is the API's long-poll (`GET /v1/channels/join/{id}`), which returns as soon as the owner welcomes
//! or rejects the request; only a failed request (e.g. the API restarting) is retried after a short pause.

use std::time::Duration;

use skytale_proto::ChannelName;
use tokio::time::{sleep, timeout_at, Instant};

use crate::api::{ApiClient, JoinStatus, LONG_POLL_WAIT};
use crate::error::Error;

/// Pause before retrying a long-poll that failed for a transient reason.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Redeems `token` for `channel` and returns the Welcome once the owner admitted this client.
pub(crate) async fn wait_for_welcome(
    api: &ApiClient,
    channel: &ChannelName,
    token: &str,
    identity: &[u8],
    key_package: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    let deadline = Instant::now() + timeout;
    let timed_out = || {
        Error::Transport(format!(
            "timed out after {}s waiting for the channel owner to admit this client to {channel}",
            timeout.as_secs_f64()
        ))
    };
    let join_id = timeout_at(deadline, api.request_join(token, channel.as_str(), identity, key_package))
        .await
        .map_err(|_| timed_out())??;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Whole seconds, rounded up so a short remainder still waits instead of answering at once.
        let wait =
            Duration::from_secs(remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0)).min(LONG_POLL_WAIT);
        match timeout_at(deadline, api.join_status(&join_id, wait)).await {
            Err(_) => return Err(timed_out()),
            Ok(Ok(JoinStatus::Pending)) => {}
            Ok(Ok(JoinStatus::Welcomed(welcome))) => return Ok(welcome),
            Ok(Ok(JoinStatus::Rejected)) => {
                return Err(Error::Channel(format!(
                    "the owner of {channel} rejected the join request (its key package or identity was refused)"
                )))
            }
            Ok(Err(failure)) if failure.is_transient() => {
                tracing::warn!(%channel, error = %failure, "waiting for admission failed; retrying");
                if timeout_at(deadline, sleep(RETRY_PAUSE)).await.is_err() {
                    return Err(timed_out());
                }
            }
            Ok(Err(failure)) => return Err(failure.into()),
        }
    }
}
