//! Per-account limits on the API: requests per second, and invites per hour.
//!
//! One account must not take the API's whole capacity, nor mint invites without end (each one a standing offer to
//! join a channel). Both limits are GCRA token buckets keyed by account ([`governor`]): an account over its limit
//! gets `429 Too Many Requests` with `Retry-After`, and never slows another account, whose bucket is its own.
//! The buckets live in the process: with several API instances, each enforces them for the requests it serves.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ApiError;

/// The limits; [`Default`] gives the documented defaults (docs/operations.md, "Quotas").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiQuotas {
    /// Requests an account may make per second, sustained.
    pub requests_per_second: NonZeroU32,
    /// Requests an account may make at once after a quiet spell: room for many agents of one account
    /// starting together (a token, a join and a long-poll each).
    pub request_burst: NonZeroU32,
    /// Invites an account may create per hour, all of them at once if it likes.
    pub invites_per_hour: NonZeroU32,
}

impl Default for ApiQuotas {
    fn default() -> Self {
        Self {
            requests_per_second: NonZeroU32::new(100).expect("non-zero"),
            request_burst: NonZeroU32::new(200).expect("non-zero"),
            invites_per_hour: NonZeroU32::new(1000).expect("non-zero"),
        }
    }
}

/// The buckets of every account that made a request recently.
#[derive(Debug)]
pub(crate) struct Quotas {
    requests: DefaultKeyedRateLimiter<String>,
    invites: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl Quotas {
    pub(crate) fn new(limits: ApiQuotas) -> Self {
        let requests = Quota::per_second(limits.requests_per_second).allow_burst(limits.request_burst);
        Self {
            requests: DefaultKeyedRateLimiter::keyed(requests),
            invites: DefaultKeyedRateLimiter::keyed(Quota::per_hour(limits.invites_per_hour)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request of `account`; refuses it when the account is over its rate.
    pub(crate) fn request(&self, account: &str) -> Result<(), ApiError> {
        self.take(&self.requests, account, "requests per second")
    }

    /// Counts one invite of `account`; refuses it when the account is over its hourly allowance.
    pub(crate) fn invite(&self, account: &str) -> Result<(), ApiError> {
        self.take(&self.invites, account, "invites per hour")
    }

    fn take(
        &self,
        bucket: &DefaultKeyedRateLimiter<String>,
        account: &str,
        limit: &'static str,
    ) -> Result<(), ApiError> {
        bucket.check_key(&account.to_owned()).map_err(|not_until| ApiError::QuotaExceeded {
            limit,
            retry_after: not_until.wait_time_from(self.clock.now()).max(Duration::from_secs(1)),
        })
    }

    /// Forgets the accounts whose buckets are full again, so memory follows the accounts active lately.
    pub(crate) fn forget_idle_accounts(&self) {
        self.requests.retain_recent();
        self.invites.retain_recent();
    }
}
