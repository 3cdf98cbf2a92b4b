//! Reading a channel's subject by the channel's own positions. JetStream numbers messages across the whole
//! stream, so a channel's seq N is not stream sequence N: a read from a seq or an epoch first bisects the subject
//! (one direct get per step, about 30 for a billion messages) for where it starts, then reads on from there. A
//! subscription reads here only when it is behind its feed's cache of recent messages.

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};

use super::entry::Entry;
use crate::stored::{ReadLimit, StoreError, StoredMessage};

fn unreadable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Nats(format!("cannot read the log stream: {error}"))
}

/// The subject's first message, if it has any.
pub async fn first(stream: &Stream, subject: &str) -> Result<Option<Entry>, StoreError> {
    next_from(stream, subject, None).await
}

/// The subject's newest message, if it has any.
pub async fn last(stream: &Stream, subject: &str) -> Result<Option<Entry>, StoreError> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(message) => Entry::decode(message.sequence, Some(&message.headers), &message.payload).map(Some),
        Err(error) if matches!(error.kind(), DirectGetErrorKind::NotFound) => Ok(None),
        Err(error) => Err(unreadable(error)),
    }
}

/// The subject's first message at stream sequence `from` or later (from the start with `None`).
pub async fn next_from(stream: &Stream, subject: &str, from: Option<u64>) -> Result<Option<Entry>, StoreError> {
    match stream.direct_get_next_for_subject(subject, from).await {
        Ok(message) => Entry::decode(message.sequence, Some(&message.headers), &message.payload).map(Some),
        Err(error) if matches!(error.kind(), DirectGetErrorKind::NotFound) => Ok(None),
        Err(error) => Err(unreadable(error)),
    }
}

/// The message at stream sequence `stream_seq`, if the stream still holds it.
pub async fn at(stream: &Stream, stream_seq: u64) -> Result<Option<Entry>, StoreError> {
    match stream.direct_get(stream_seq).await {
        Ok(message) => Entry::decode(message.sequence, Some(&message.headers), &message.payload).map(Some),
        Err(error) if matches!(error.kind(), DirectGetErrorKind::NotFound) => Ok(None),
        Err(error) => Err(unreadable(error)),
    }
}

/// The subject's first and newest messages, if it has any.
pub async fn ends(stream: &Stream, subject: &str) -> Result<Option<(Entry, Entry)>, StoreError> {
    let Some(first) = first(stream, subject).await? else {
        return Ok(None);
    };
    Ok(last(stream, subject).await?.map(|last| (first, last)))
}

/// The subject's first message for which `reached` holds, where `reached` never turns false again along the
/// subject (seqs and epochs only grow), or `None` if it holds for none.
pub async fn first_where(
    stream: &Stream,
    subject: &str,
    reached: impl Fn(&Entry) -> bool,
) -> Result<Option<Entry>, StoreError> {
    match ends(stream, subject).await? {
        Some((first, last)) => search(stream, subject, first, last, reached).await,
        None => Ok(None),
    }
}

/// [`first_where`] between the subject's `first` and `last` messages, already read.
pub async fn search(
    stream: &Stream,
    subject: &str,
    first: Entry,
    last: Entry,
    reached: impl Fn(&Entry) -> bool,
) -> Result<Option<Entry>, StoreError> {
    if reached(&first) {
        return Ok(Some(first));
    }
    if !reached(&last) {
        return Ok(None);
    }
    // Invariant: the subject's next message from `low` does not reach, the one from `high` does.
    let (mut low, mut high, mut found) = (first.stream_seq, last.stream_seq, last);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        match next_from(stream, subject, Some(middle)).await? {
            Some(entry) if reached(&entry) => {
                high = middle;
                found = entry;
            }
            Some(entry) if entry.stream_seq < high => low = entry.stream_seq,
            // Nothing between `middle` and `high` (the message found is `high`'s, or retention took the rest).
            _ => low = middle,
        }
    }
    Ok(Some(found))
}

/// Messages of the subject from the channel's seq `from_seq` on, in order, within `limit` (at least one if any
/// exists). The first may come after `from_seq` when retention removed it: the caller checks.
pub async fn read_from(
    stream: &Stream,
    subject: &str,
    from_seq: u64,
    limit: ReadLimit,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut next = first_where(stream, subject, |entry| entry.message.seq >= from_seq).await?;
    let (mut out, mut bytes) = (Vec::new(), 0);
    while let Some(entry) = next {
        bytes += entry.message.size();
        let after = entry.stream_seq + 1;
        out.push(entry.message);
        if out.len() >= limit.max_messages || bytes >= limit.max_bytes {
            break;
        }
        next = next_from(stream, subject, Some(after)).await?;
    }
    Ok(out)
}
