//! Keeping this member's messages decryptable after the relay refused some of them (docs/client.md, "Quotas").
//!
//! Every application message this member encrypts takes the next key of its ratchet, whether the relay then
//! stores the message or not. A receiver derives keys forward from the last message of this sender it read, at
//! most 1 024 generations ahead (mls-rs); a message further ahead cannot be decrypted, ever. Messages refused in a
//! row (a flood over the account's publish rate, a retry loop) would open such a gap, so once [`UPDATE_AFTER`]
//! keys have gone without a stored message, the next send first commits an update: in the new epoch every ratchet
//! starts afresh. Kept in memory only: a process restarted mid-flood starts counting again.

/// Half the receivers' window: a batch whose refusals straddle the count still lands well inside it.
pub(crate) const UPDATE_AFTER: u32 = 512;

/// The keys this member used in `epoch` since the relay last stored one of its messages.
#[derive(Debug, Default)]
pub(crate) struct RatchetGap {
    epoch: u64,
    unstored: u32,
}

impl RatchetGap {
    /// The relay stored a message of `epoch`: receivers have caught up to its key.
    pub fn stored(&mut self, epoch: u64) {
        *self = Self { epoch, unstored: 0 };
    }

    /// `count` messages of `epoch` were refused, or never answered: their keys are used up.
    pub fn unstored(&mut self, epoch: u64, count: u32) {
        if self.epoch != epoch {
            *self = Self { epoch, unstored: 0 };
        }
        self.unstored = self.unstored.saturating_add(count);
    }

    /// Whether the next message of `epoch` must wait for an update commit.
    pub fn needs_update(&self, epoch: u64) -> bool {
        self.epoch == epoch && self.unstored >= UPDATE_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_needed_after_enough_unstored_keys_in_a_row_of_one_epoch() {
        let mut gap = RatchetGap::default();
        gap.unstored(3, UPDATE_AFTER - 1);
        assert!(!gap.needs_update(3));
        gap.unstored(3, 1);
        assert!(gap.needs_update(3));
        // A new epoch starts the ratchets afresh.
        assert!(!gap.needs_update(4));
        gap.unstored(4, 1);
        assert!(!gap.needs_update(4));
        // A stored message resets the count.
        gap.unstored(4, UPDATE_AFTER);
        gap.stored(4);
        assert!(!gap.needs_update(4));
    }
}
