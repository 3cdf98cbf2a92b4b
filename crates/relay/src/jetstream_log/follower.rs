//! Live delivery across relays: while a channel's feed is in use on this relay, an ordered JetStream consumer
//! on the channel's subject hands the feed every message stored after the feed's start, whichever relay stored
//! it. It lives exactly as long as the feed: when the feed's last user lets go, its head watch closes and the
//! follower (with its consumer) ends. No polling: the consumer pushes. A push consumer rather than a pull one:
//! its server sends a heartbeat every 5 s, so one lost with its server is noticed and replaced within seconds
//! (a pull consumer's heartbeat is 15 s, missed twice before it is replaced).

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use futures::StreamExt;

use super::entry::Entry;
use crate::channel::ChannelFeed;

/// Between attempts to (re)create a follower's consumer while JetStream does not answer.
const RETRY: Duration = Duration::from_secs(1);

/// Starts following `subject` from stream sequence `from` into `feed`, with consumers delivering to `client`.
pub fn spawn(client: Client, stream: Stream, subject: String, from: u64, feed: &Arc<ChannelFeed>) {
    let closed = feed.watch_head();
    tokio::spawn(follow(client, stream, subject, from, Arc::downgrade(feed), closed));
}

async fn follow(
    client: Client,
    stream: Stream,
    subject: String,
    mut from: u64,
    feed: Weak<ChannelFeed>,
    mut closed: tokio::sync::watch::Receiver<u64>,
) {
    loop {
        let config = OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: subject.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
            ..Default::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%subject, %error, "cannot follow a channel's subject; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue,
                    // Only ever an error: the feed is gone.
                    _ = wait_closed(&mut closed) => return,
                }
            }
        };
        loop {
            tokio::select! {
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        let Some(feed) = feed.upgrade() else { return };
                        let stream_seq = match message.info() {
                            Ok(info) => info.stream_sequence,
                            Err(error) => {
                                tracing::error!(%subject, %error, "a followed message has no stream sequence");
                                continue;
                            }
                        };
                        from = stream_seq + 1;
                        match Entry::decode(stream_seq, message.headers.as_ref(), &message.payload) {
                            Ok(entry) => {
                                feed.append_next(Arc::new(entry.message), entry.epoch_after);
                            }
                            Err(error) => tracing::error!(%subject, %error, "skipped an unreadable message"),
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%subject, %error, "following a channel's subject failed; resuming");
                        break;
                    }
                    None => break,
                },
                _ = wait_closed(&mut closed) => return,
            }
        }
    }
}

/// Resolves once the feed is gone (its head's sender dropped).
async fn wait_closed(closed: &mut tokio::sync::watch::Receiver<u64>) {
    while closed.changed().await.is_ok() {}
}
