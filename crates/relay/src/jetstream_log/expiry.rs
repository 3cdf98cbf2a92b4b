//! Retention on the JetStream log (docs/relay.md, "Retention"). JetStream's own age limit would empty an idle
//! channel's subject, and with it the channel's head and group binding: its next message would be seq 1 again,
//! which clients resuming from their positions would take for one they had. So the relay removes old messages
//! itself, a prefix of each subject, always keeping the channel's newest message.

use futures::TryStreamExt;
use skytale_proto::ChannelName;

use super::{reads, JetStreamLog};
use crate::stored::{Expiry, StoreError};

fn nats(error: impl std::fmt::Display) -> StoreError {
    StoreError::Nats(format!("retention: {error}"))
}

impl JetStreamLog {
    /// Removes, per channel, every message stored before `cutoff_ms` except the newest.
    pub(super) async fn sweep(&self, cutoff_ms: i64) -> Result<Vec<Expiry>, StoreError> {
        let prefix = &self.config.subject_prefix;
        let subjects: Vec<(String, usize)> = self
            .stream
            .info_with_subjects(format!("{prefix}>"))
            .await
            .map_err(nats)?
            .try_collect()
            .await
            .map_err(nats)?;
        let mut expiries = Vec::new();
        for (subject, _) in subjects {
            let Some(channel) = channel_of(prefix, &subject) else {
                tracing::warn!(%subject, "a subject of the log stream names no channel; left alone");
                continue;
            };
            if let Some(expiry) = self.expire_channel(&channel, &subject, cutoff_ms).await? {
                expiries.push(expiry);
            }
        }
        Ok(expiries)
    }

    async fn expire_channel(
        &self,
        channel: &ChannelName,
        subject: &str,
        cutoff_ms: i64,
    ) -> Result<Option<Expiry>, StoreError> {
        let Some((first, last)) = reads::ends(&self.stream, subject).await? else {
            return Ok(None);
        };
        let first_seq = first.stream_seq;
        let kept =
            reads::search(&self.stream, subject, first, last.clone(), |entry| entry.message.stored_at_ms >= cutoff_ms)
                .await?
                .unwrap_or_else(|| last.clone());
        if first_seq >= kept.stream_seq {
            return Ok(None);
        }
        if let Some(groups) = &self.groups {
            // The handshakes about to go must be in the channel's group record first.
            groups.settle(channel, &last).await?;
        }
        let purged = self.stream.purge().filter(subject).sequence(kept.stream_seq).await.map_err(nats)?;
        let through_seq = kept.message.seq - 1;
        let through_epoch = kept.previous_epoch.unwrap_or(kept.message.epoch);
        if let Some(feed) = self.hub.expired(channel, through_seq, through_epoch) {
            feed.expire_through(through_seq, through_epoch);
        }
        Ok(Some(Expiry { channel: channel.to_string(), through_seq, through_epoch, removed: purged.purged }))
    }
}

/// The channel whose subject `subject` is.
fn channel_of(prefix: &str, subject: &str) -> Option<ChannelName> {
    let name = hex::decode(subject.strip_prefix(prefix)?).ok()?;
    ChannelName::parse(std::str::from_utf8(&name).ok()?).ok()
}
