//! Where the link supervisor's next attempt goes, and whether it waits first: the endpoints round robin, and the
//! reconnect backoff paid once per full round of failed attempts. Moving to another relay is free (it may well be
//! up while this one is not); asking the same ones again right away is what the backoff spares them.

use std::time::Duration;

const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two rounds of reconnect attempts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The supervisor's position in the endpoint list and its backoff.
pub(super) struct Rotation {
    endpoints: usize,
    index: usize,
    /// Attempts failed since the last link or the last wait: a full round is one per endpoint.
    failed_in_round: usize,
    backoff: Duration,
}

impl Rotation {
    /// Starting at `index` of `endpoints` (at least one).
    pub fn new(endpoints: usize, index: usize) -> Self {
        Self { endpoints, index, failed_in_round: 0, backoff: INITIAL_BACKOFF }
    }

    /// The endpoint the next attempt goes to.
    pub fn current(&self) -> usize {
        self.index
    }

    /// The endpoint after the current one, round the list.
    pub fn next(&self) -> usize {
        (self.index + 1) % self.endpoints
    }

    /// A link came up on the current endpoint: the next round of failures starts from scratch.
    pub fn linked(&mut self) {
        self.failed_in_round = 0;
        self.backoff = INITIAL_BACKOFF;
    }

    /// The current endpoint's link was lost or drained: the next attempt goes to the next endpoint, at once.
    pub fn link_ended(&mut self) {
        self.index = self.next();
    }

    /// An attempt on the current endpoint failed: the next goes to the next endpoint, after the returned wait when
    /// this completed a round (the backoff, doubled for the round after), at once otherwise.
    pub fn attempt_failed(&mut self) -> Option<Duration> {
        self.index = self.next();
        self.failed_in_round += 1;
        if self.failed_in_round < self.endpoints {
            return None;
        }
        self.failed_in_round = 0;
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn one_endpoint_waits_after_each_failure_doubling_up_to_the_cap() {
        let mut rotation = Rotation::new(1, 0);
        let waits: Vec<_> = (0..8).map(|_| rotation.attempt_failed()).collect();
        let expected = [50, 100, 200, 400, 800, 1600, 2000, 2000].map(|millis| Some(ms(millis)));
        assert_eq!(waits, expected);
        assert_eq!(rotation.current(), 0);
        rotation.linked();
        rotation.link_ended();
        assert_eq!((rotation.current(), rotation.attempt_failed()), (0, Some(ms(50))));
    }

    #[test]
    fn several_endpoints_are_tried_in_turn_waiting_once_per_round() {
        let mut rotation = Rotation::new(3, 1);
        let mut tried = vec![rotation.current()];
        let mut waits = Vec::new();
        for _ in 0..6 {
            waits.push(rotation.attempt_failed());
            tried.push(rotation.current());
        }
        assert_eq!(tried, [1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(waits, [None, None, Some(ms(50)), None, None, Some(ms(100))]);
    }

    #[test]
    fn a_lost_link_moves_on_at_once_and_a_link_resets_the_round_and_the_backoff() {
        let mut rotation = Rotation::new(2, 0);
        for _ in 0..4 {
            rotation.attempt_failed();
        }
        // Up on endpoint 0 after two rounds, then lost: endpoint 1 is next, and a full round waits 50 ms again.
        rotation.linked();
        rotation.link_ended();
        assert_eq!(rotation.current(), 1);
        assert_eq!(rotation.attempt_failed(), None);
        assert_eq!((rotation.current(), rotation.attempt_failed()), (0, Some(ms(50))));
    }
}
