//! The channel log on NATS JetStream (`skytale relay --store nats://...`): several relays over one JetStream
//! cluster are one Delivery Service, any of them serving any channel (docs/relay.md, "The JetStream log").
//!
//! One stream holds every channel, one subject per channel ([`entry::subject`]); each message is the stored
//! `Publish` frame with what the relay assigned in headers ([`entry`]). The rules that make several relays one
//! Delivery Service are JetStream's to enforce, not memory local to a relay: each append is a compare-and-set on
//! the channel's subject and carries a `Nats-Msg-Id` ([`appender`]); each feed in use follows its subject with a
//! consumer, so live delivery reaches subscribers on every relay ([`follower`]); reads by seq or epoch find their
//! start on the subject ([`reads`]).

mod appender;
mod entry;
mod expiry;
mod follower;
mod groups;
mod reads;

use std::sync::Arc;

use async_nats::jetstream::{self, stream::Stream};
use futures::future::BoxFuture;
use skytale_admin::AtomicHistogram;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;

use crate::append::AppendResult;
use crate::channel::{ChannelFeed, ChannelHub, FeedStart};
use crate::error::RelayError;
use crate::log::{AppendRequest, ChannelLog, WriteRules};
use crate::nats::{JetStreamConnection, LogStreamConfig};
use crate::stored::{Expiry, Membership, ReadLimit, StoreError, StoredMessage};
use appender::{Appenders, Target};
use groups::Groups;

/// The log in a JetStream stream.
pub struct JetStreamLog {
    connection: JetStreamConnection,
    stream: Stream,
    config: LogStreamConfig,
    hub: Arc<ChannelHub>,
    appenders: Appenders,
    groups: Option<Arc<Groups>>,
}

impl JetStreamLog {
    /// Uses (creating it if needed) the log stream `config` names on `connection`, and with followed groups
    /// its group bucket ([`groups`]); appends follow `rules` and record their latency in `append_latency`.
    pub async fn open(
        connection: JetStreamConnection,
        config: LogStreamConfig,
        rules: WriteRules,
        append_latency: AtomicHistogram,
    ) -> Result<Self, RelayError> {
        let stream = connection.ensure_stream(&config).await?;
        let groups = match rules.follow_groups {
            true => Some(Arc::new(Groups::open(&connection, &config, stream.clone(), rules.channel_quota).await?)),
            false => None,
        };
        let hub = Arc::new(ChannelHub::default());
        let appenders = Appenders::new(Target {
            js: jetstream::ContextBuilder::new().timeout(appender::ACK_TIMEOUT).build(connection.client().clone()),
            stream: stream.clone(),
            subject_prefix: config.subject_prefix.clone(),
            hub: Arc::clone(&hub),
            append_latency,
            groups: groups.clone(),
        });
        Ok(Self { connection, stream, config, hub, appenders, groups })
    }

    fn subject(&self, channel: &ChannelName) -> String {
        entry::subject(&self.config.subject_prefix, channel)
    }

    /// The feed of `channel` in use, or a new one from the subject's state now, with its follower.
    async fn open_feed(&self, channel: &ChannelName) -> Result<Arc<ChannelFeed>, StoreError> {
        if let Some(feed) = self.hub.in_use(channel) {
            return Ok(feed);
        }
        let subject = self.subject(channel);
        let ends = reads::ends(&self.stream, &subject).await?;
        let (first, last) = (ends.as_ref().map(|(first, _)| first), ends.as_ref().map(|(_, last)| last));
        let start = FeedStart {
            head: last.map_or(0, |last| last.message.seq),
            epoch: last.map(|last| last.epoch_after),
            low_seq: first.map_or(1, |first| first.message.seq),
            expired_epoch: first.filter(|first| first.message.seq > 1).and_then(|first| first.previous_epoch),
        };
        let (feed, started) = self.hub.feed_from(channel, start);
        if started {
            let from = last.map_or(1, |last| last.stream_seq + 1);
            follower::spawn(self.connection.client().clone(), self.stream.clone(), subject, from, &feed);
        }
        Ok(feed)
    }
}

impl ChannelLog for JetStreamLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<oneshot::Receiver<AppendResult>, RelayError>> {
        Box::pin(async move { Ok(self.appenders.submit(request).await) })
    }

    fn feed(&self, channel: &ChannelName) -> BoxFuture<'_, Result<Arc<ChannelFeed>, StoreError>> {
        let channel = channel.clone();
        Box::pin(async move { self.open_feed(&channel).await })
    }

    fn read_from(
        &self,
        channel: &ChannelName,
        from_seq: u64,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<StoredMessage>, StoreError>> {
        let subject = self.subject(channel);
        Box::pin(async move { reads::read_from(&self.stream, &subject, from_seq, limit).await })
    }

    fn first_seq_from_epoch(
        &self,
        channel: &ChannelName,
        epoch: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let subject = self.subject(channel);
        Box::pin(async move {
            let first = reads::first_where(&self.stream, &subject, |entry| entry.message.epoch >= epoch).await?;
            Ok(first.map(|entry| entry.message.seq))
        })
    }

    fn membership(&self, channel: &ChannelName, member: &[u8]) -> BoxFuture<'_, Result<Membership, StoreError>> {
        let (channel, member, subject) = (channel.clone(), member.to_vec(), self.subject(channel));
        Box::pin(async move {
            let newest = reads::last(&self.stream, &subject).await?;
            match &self.groups {
                Some(groups) => groups.membership(&channel, newest.as_ref(), &member).await,
                None if newest.is_some() => Ok(Membership::Untracked),
                None => Ok(Membership::NoChannel),
            }
        })
    }

    fn expire(&self, cutoff_ms: i64, _max_bytes: Option<u64>) -> BoxFuture<'_, Result<Vec<Expiry>, RelayError>> {
        Box::pin(async move { Ok(self.sweep(cutoff_ms).await?) })
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.connection.jetstream().get_stream(&self.config.stream).await.map(drop).map_err(|error| {
                StoreError::Nats(format!("the log stream {} does not answer: {error}", self.config.stream))
            })
        })
    }

    fn channels_in_memory(&self) -> usize {
        self.hub.channels_in_memory()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.appenders.stop())
    }
}
