//! Per-account limits on what authenticated streams do (docs/operations.md, "Quotas"): how many streams an account
//! has open at once, and how fast it publishes, in messages and in bytes.
//!
//! Every limit is the account's own: stream counts and token buckets are keyed by account, so an account over its
//! limit is refused with `quota_exceeded` and never slows another. Nothing here is held across an await: a count
//! is one short lock, a bucket one lock-free update ([`governor`]'s GCRA over a sharded map). Streams on a relay
//! with auth off have no account and no such limit. The counts live in the process: several relays each enforce
//! them for the streams they serve.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use skytale_proto::meta::{self, error_code};
use tokio::sync::watch;
use tonic::metadata::MetadataValue;
use tonic::Status;

use crate::config::PublishRate;
use crate::error::RelayError;
use crate::frames::Refusal;

/// How often the buckets of accounts quiet long enough to have full buckets again are dropped.
const FORGET_IDLE_ACCOUNTS_EVERY: Duration = Duration::from_secs(60);

type OpenStreams = HashMap<String, usize>;

/// The limits and every active account's counts.
pub struct AccountQuotas {
    max_streams: usize,
    rate: PublishRate,
    /// Streams open per account; an account leaves the map with its last stream.
    streams: Arc<Mutex<OpenStreams>>,
    messages: DefaultKeyedRateLimiter<String>,
    bytes: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

fn lock(streams: &Mutex<OpenStreams>) -> MutexGuard<'_, OpenStreams> {
    streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AccountQuotas {
    /// Checks the limits against each other: a bytes burst below `max_payload` would refuse a maximal message
    /// forever, so it is a configuration error rather than a quota.
    pub fn new(max_streams: usize, rate: PublishRate, max_payload: usize) -> Result<Self, RelayError> {
        if max_streams == 0 {
            return Err(RelayError::NoStreamsPerAccount);
        }
        if (rate.bytes_burst.get() as usize) < max_payload {
            return Err(RelayError::PublishBytesBurstBelowMaxPayload { burst: rate.bytes_burst.get(), max_payload });
        }
        let messages = Quota::per_second(rate.messages_per_second).allow_burst(rate.message_burst);
        let bytes = Quota::per_second(rate.bytes_per_second).allow_burst(rate.bytes_burst);
        Ok(Self {
            max_streams,
            rate,
            streams: Arc::default(),
            messages: DefaultKeyedRateLimiter::keyed(messages),
            bytes: DefaultKeyedRateLimiter::keyed(bytes),
            clock: DefaultClock::default(),
        })
    }

    /// Counts a new stream of `account` until the returned slot is dropped (however the stream ends); refuses it
    /// with `RESOURCE_EXHAUSTED` and `skytale-error-code: quota_exceeded` when the account has its limit open.
    pub fn open_stream(&self, account: &str) -> Result<StreamSlot, Status> {
        let mut streams = lock(&self.streams);
        let open = streams.entry(account.to_owned()).or_default();
        if *open >= self.max_streams {
            let message = format!(
                "account {account} has {open} streams open, the relay's limit per account \
                 (--max-streams-per-account): close one, or ask the operator for more"
            );
            let mut status = Status::resource_exhausted(message);
            status.metadata_mut().insert(meta::ERROR_CODE, MetadataValue::from_static(error_code::QUOTA_EXCEEDED));
            return Err(status);
        }
        *open += 1;
        Ok(StreamSlot { account: account.to_owned(), streams: Arc::clone(&self.streams) })
    }

    /// Counts a publish of `size` bytes (its MLS message) against `account`'s buckets; refuses it, naming the
    /// limit and when to retry, when either is empty. A publish refused by the bytes bucket has still used a
    /// message token: the buckets are checked one after the other, without a lock around both.
    pub fn publish(&self, account: &str, size: usize) -> Result<(), Refusal> {
        let key = account.to_owned();
        let rate = self.rate;
        if let Err(not_until) = self.messages.check_key(&key) {
            let retry = not_until.wait_time_from(self.clock.now());
            return Err(over_rate(
                account,
                &format!(
                    "{} messages per second (burst {}; --publishes-per-second, --publish-burst)",
                    rate.messages_per_second, rate.message_burst
                ),
                retry,
            ));
        }
        let bytes_limit = || {
            format!(
                "{} bytes per second (burst {}; --publish-bytes-per-second, --publish-bytes-burst)",
                rate.bytes_per_second, rate.bytes_burst
            )
        };
        let cost = NonZeroU32::new(u32::try_from(size).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match self.bytes.check_key_n(&key, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(over_rate(account, &bytes_limit(), not_until.wait_time_from(self.clock.now()))),
            // Only a message larger than the burst, which `new` makes larger than `max_payload`: refused before.
            Err(_) => Err(Refusal::new(
                error_code::QUOTA_EXCEEDED,
                format!("a message of {size} bytes is larger than the publish rate's burst: {}", bytes_limit()),
            )),
        }
    }

    /// Every minute until `shutdown`, drops the buckets of accounts quiet long enough to have full buckets again,
    /// so memory follows the accounts active lately.
    pub async fn forget_idle_accounts(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(FORGET_IDLE_ACCOUNTS_EVERY) => {
                    self.messages.retain_recent();
                    self.bytes.retain_recent();
                }
                () = crate::stopped(&mut shutdown) => return,
            }
        }
    }
}

fn over_rate(account: &str, limit: &str, retry: Duration) -> Refusal {
    // At least a millisecond: "retry in 0 ms" would invite a busy loop.
    let retry_ms = retry.as_millis().max(1);
    Refusal::new(
        error_code::QUOTA_EXCEEDED,
        format!("account {account} is over its publish rate of {limit}: nothing was stored; retry in {retry_ms} ms"),
    )
}

/// One open stream of an account, counted until dropped.
pub struct StreamSlot {
    account: String,
    streams: Arc<Mutex<OpenStreams>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = lock(&self.streams);
        if let Some(open) = streams.get_mut(&self.account) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&self.account);
            }
        }
    }
}
