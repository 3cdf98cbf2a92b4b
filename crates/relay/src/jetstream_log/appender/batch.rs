//! Several queued appends of one channel stored by one JetStream atomic batch (nats-server 2.12, ADR-50): one
//! round trip, and one compare-and-set on the channel's subject, for all of them. A channel's appends go through
//! one task one at a time otherwise, so without batches a channel stores at most one message per JetStream round
//! trip however many its publishers have in flight.
//!
//! Only application messages of the channel's current epoch, which the rules accept alike and which change
//! nothing but the head, go in a batch: a handshake, a refusal or a retry is appended alone, as before. JetStream
//! stores a batch whole or not at all, with consecutive stream sequences, checking the batch's expected last
//! subject sequence (on its first message) against the subject as it was before the batch. Anything the batch
//! does not make plain (a lost ack, a msg-id JetStream already holds, too many batches in flight) hands the
//! appends back to the one-by-one path, whose msg-ids make a batch stored after all count once.

use async_nats::header::{
    NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL, NATS_BATCH_ID, NATS_BATCH_SEQUENCE, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
};
use skytale_proto::ChannelName;

use super::super::entry::Assigned;
use super::{feed_locally, judge, GroupChange, Job, Tail, Target, Verdict};
use crate::mls_framing::ContentType;
use crate::nats::is_wrong_last_sequence;
use crate::stored::{unix_millis, StoredMessage};

/// Messages in one batch at most: JetStream's own limit is 1000 (`jetstream { limits { batch { max_msgs } } }`).
pub const MAX_BATCH: usize = 256;

/// What became of a batch.
pub enum Outcome {
    /// Stored, each at the returned seq, in order.
    Stored(Vec<u64>),
    /// Another relay stored a message in the channel first; the tail has caught up, so judge the appends again.
    Moved,
    /// Not plainly stored nor refused: append them one by one.
    Unsure,
}

/// How many of `jobs`, from the first, can go in one batch against `tail`.
pub fn batchable(target: &Target, tail: &Tail, jobs: &[Job]) -> usize {
    if tail.bound.is_none() {
        return 0;
    }
    let groups = target.groups.as_deref();
    jobs.iter()
        .take(MAX_BATCH)
        .take_while(|job| {
            let request = &job.request;
            request.header.content_type == ContentType::Application
                && !tail.recent_ids.seqs.contains_key(&request.msg_id)
                && matches!(judge(tail, request, groups), Verdict::Store { group: GroupChange::Unchanged, .. })
        })
        .count()
}

/// Publishes `jobs` (all [`batchable`]) as one atomic batch after the channel's newest message as `tail` knows it.
pub async fn publish(target: &Target, channel: &ChannelName, tail: &mut Tail, jobs: &[Job]) -> Outcome {
    let Some(last) = jobs.len().checked_sub(1) else {
        return Outcome::Stored(Vec::new());
    };
    let client = target.js.client();
    let batch_id = nuid::next().to_string();
    let stored_at_ms = unix_millis();
    let epoch = jobs[0].request.header.epoch;
    let handshakes = tail.handshakes(target.groups.is_some(), &jobs[0].request);
    let mut assigned = Vec::with_capacity(jobs.len());
    let mut acked = None;
    for (index, Job { request, .. }) in jobs.iter().enumerate() {
        let seq = tail.head + 1 + index as u64;
        let message = Assigned {
            message: StoredMessage::new(seq, epoch, stored_at_ms, &request.msg_id, &request.frame),
            msg_id: request.msg_id.clone(),
            group_id: request.header.group_id.clone(),
            epoch_after: epoch,
            previous_epoch: if index == 0 { tail.last_epoch } else { Some(epoch) },
            handshakes,
        };
        let mut headers = message.headers(channel);
        headers.insert(NATS_BATCH_ID, batch_id.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, (index + 1).to_string());
        if index == 0 {
            headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, tail.stream_seq.to_string());
        }
        let (subject, frame) = (tail.subject.clone(), request.frame.clone());
        if index < last {
            // No reply wanted: JetStream answers only the commit, for the whole batch.
            if client.publish_with_headers(subject, headers, frame).await.is_err() {
                return Outcome::Unsure;
            }
        } else {
            headers.insert(NATS_BATCH_COMMIT, NATS_BATCH_COMMIT_FINAL);
            acked = Some(match target.js.publish_with_headers(subject, headers, frame).await {
                Ok(ack) => ack.await,
                Err(error) => Err(error),
            });
        }
        assigned.push(message);
    }
    match acked {
        Some(Ok(ack)) if !ack.duplicate && ack.batch_size == Some(jobs.len() as u64) && ack.sequence > last as u64 => {
            let first_stream_seq = ack.sequence - last as u64;
            let mut seqs = Vec::with_capacity(jobs.len());
            for (offset, message) in assigned.into_iter().enumerate() {
                let entry = message.stored_at(first_stream_seq + offset as u64);
                tail.advance(&entry);
                seqs.push(tail.head);
                feed_locally(target, channel, entry.message, epoch);
            }
            Outcome::Stored(seqs)
        }
        Some(Err(error)) if is_wrong_last_sequence(&error) => {
            let before = tail.stream_seq;
            match tail.catch_up(target, channel).await {
                Ok(()) if tail.stream_seq != before => Outcome::Moved,
                _ => Outcome::Unsure,
            }
        }
        _ => Outcome::Unsure,
    }
}
