//! One stored message as JetStream holds it: the `Publish` frame as the payload, and what the relay assigned in
//! headers, so that any relay reading the subject knows the message's seq, epochs and group without another
//! lookup.

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::HeaderMap;
use skytale_proto::ChannelName;

use crate::stored::{StoreError, StoredMessage};

const SEQ: &str = "Skytale-Seq";
const EPOCH: &str = "Skytale-Epoch";
/// The channel's epoch after this message: one more than [`EPOCH`] after a commit.
const EPOCH_AFTER: &str = "Skytale-Epoch-After";
/// The epoch of the channel's message before this one: once retention removed everything before this message,
/// the epoch of the newest removed message, which resuming from an epoch is checked against.
const PREVIOUS_EPOCH: &str = "Skytale-Previous-Epoch";
const GROUP: &str = "Skytale-Group";
const MSG_ID: &str = "Skytale-Msg-Id";
const STORED_AT: &str = "Skytale-Stored-At";
/// On a message stored by a relay that follows the channel's MLS group: the stream sequence of the channel's newest
/// handshake before it (0 for the creating GroupInfo), so a reader of any one message knows which handshakes made
/// the group as of that message, and follows them back one by one ([`super::groups`]).
const PRIOR_HANDSHAKE: &str = "Skytale-Prior-Handshake";
/// Present (`1`) on a handshake (the creating GroupInfo, a commit, a proposal) stored by a relay that follows groups.
const HANDSHAKE: &str = "Skytale-Handshake";

/// The subject of `channel`'s messages under `prefix`. Channel names may hold `.`, a subject separator, so the
/// name is hex-encoded into one token.
pub fn subject(prefix: &str, channel: &ChannelName) -> String {
    format!("{prefix}{}", hex::encode(channel.as_str()))
}

/// The `Nats-Msg-Id` of a message: JetStream deduplicates across the whole stream, and a client's msg-id is
/// unique only within its channel, so both go in. Hex keeps any msg-id a valid header value.
pub fn nats_msg_id(channel: &ChannelName, msg_id: &str) -> String {
    format!("{}.{}", hex::encode(channel.as_str()), hex::encode(msg_id))
}

/// A message read back from the stream.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its sequence in the JetStream stream (all channels together).
    pub stream_seq: u64,
    pub message: StoredMessage,
    pub msg_id: String,
    pub group_id: Vec<u8>,
    pub epoch_after: u64,
    pub previous_epoch: Option<u64>,
    /// Where it stands among the channel's handshakes; `None` if stored without followed groups.
    pub handshakes: Option<Handshakes>,
}

/// A message's place among its channel's handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshakes {
    /// Stream sequence of the channel's newest handshake before the message; 0 before the channel's creation.
    pub prior: u64,
    /// Whether the message is a handshake itself.
    pub is_handshake: bool,
}

impl Entry {
    /// Stream sequence of the channel's newest handshake as of this message (itself, if it is one); `None` if the
    /// message was stored without followed groups.
    pub fn newest_handshake(&self) -> Option<u64> {
        self.handshakes.map(|marks| if marks.is_handshake { self.stream_seq } else { marks.prior })
    }
}

/// A message about to be stored, with what the relay assigned to it: the headers it is published with, and the
/// [`Entry`] it becomes once JetStream gives it a stream sequence.
pub struct Assigned {
    pub message: StoredMessage,
    pub msg_id: String,
    pub group_id: Vec<u8>,
    pub epoch_after: u64,
    pub previous_epoch: Option<u64>,
    pub handshakes: Option<Handshakes>,
}

impl Assigned {
    /// The headers the message of `channel` is published with, its `Nats-Msg-Id` included.
    pub fn headers(&self, channel: &ChannelName) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SEQ, self.message.seq.to_string().as_str());
        headers.insert(EPOCH, self.message.epoch.to_string().as_str());
        headers.insert(EPOCH_AFTER, self.epoch_after.to_string().as_str());
        if let Some(previous) = self.previous_epoch {
            headers.insert(PREVIOUS_EPOCH, previous.to_string().as_str());
        }
        headers.insert(GROUP, hex::encode(&self.group_id).as_str());
        headers.insert(MSG_ID, hex::encode(&self.msg_id).as_str());
        headers.insert(STORED_AT, self.message.stored_at_ms.to_string().as_str());
        if let Some(marks) = self.handshakes {
            headers.insert(PRIOR_HANDSHAKE, marks.prior.to_string().as_str());
            if marks.is_handshake {
                headers.insert(HANDSHAKE, "1");
            }
        }
        headers.insert(NATS_MESSAGE_ID, nats_msg_id(channel, &self.msg_id));
        headers
    }

    /// The message as stored at `stream_seq`.
    pub fn stored_at(self, stream_seq: u64) -> Entry {
        let Self { message, msg_id, group_id, epoch_after, previous_epoch, handshakes } = self;
        Entry { stream_seq, message, msg_id, group_id, epoch_after, previous_epoch, handshakes }
    }
}

fn corrupt(stream_seq: u64, what: &str) -> StoreError {
    StoreError::CorruptEntry(format!("message {stream_seq} of the log stream has {what}"))
}

fn text<'h>(headers: &'h HeaderMap, name: &str, stream_seq: u64) -> Result<&'h str, StoreError> {
    headers.get(name).map(|value| value.as_str()).ok_or_else(|| corrupt(stream_seq, &format!("no {name} header")))
}

fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str, stream_seq: u64) -> Result<T, StoreError> {
    text(headers, name, stream_seq)?.parse().map_err(|_| corrupt(stream_seq, &format!("an invalid {name} header")))
}

fn unhex(headers: &HeaderMap, name: &str, stream_seq: u64) -> Result<Vec<u8>, StoreError> {
    hex::decode(text(headers, name, stream_seq)?).map_err(|_| corrupt(stream_seq, &format!("an invalid {name} header")))
}

impl Entry {
    /// Reads a message of the log stream; one the relay did not write is reported, never guessed at.
    pub fn decode(stream_seq: u64, headers: Option<&HeaderMap>, frame: &[u8]) -> Result<Self, StoreError> {
        let headers = headers.ok_or_else(|| corrupt(stream_seq, "no headers"))?;
        let msg_id = String::from_utf8(unhex(headers, MSG_ID, stream_seq)?)
            .map_err(|_| corrupt(stream_seq, &format!("an invalid {MSG_ID} header")))?;
        let previous_epoch = match headers.get(PREVIOUS_EPOCH) {
            Some(_) => Some(number(headers, PREVIOUS_EPOCH, stream_seq)?),
            None => None,
        };
        let handshakes = match headers.get(PRIOR_HANDSHAKE) {
            Some(_) => Some(Handshakes {
                prior: number(headers, PRIOR_HANDSHAKE, stream_seq)?,
                is_handshake: headers.get(HANDSHAKE).is_some(),
            }),
            None => None,
        };
        let message = StoredMessage::new(
            number(headers, SEQ, stream_seq)?,
            number(headers, EPOCH, stream_seq)?,
            number(headers, STORED_AT, stream_seq)?,
            &msg_id,
            frame,
        );
        Ok(Self {
            stream_seq,
            message,
            msg_id,
            group_id: unhex(headers, GROUP, stream_seq)?,
            epoch_after: number(headers, EPOCH_AFTER, stream_seq)?,
            previous_epoch,
            handshakes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_what_was_assigned() {
        let channel = ChannelName::parse("acme/team/ops").unwrap();
        let assigned = |handshakes| Assigned {
            message: StoredMessage::new(7, 3, 1_700_000_000_000, "id\nwith newline", b"frame"),
            msg_id: "id\nwith newline".to_owned(),
            group_id: b"group".to_vec(),
            epoch_after: 4,
            previous_epoch: Some(2),
            handshakes,
        };
        let handshake = assigned(Some(Handshakes { prior: 30, is_handshake: true }));
        let entry = Entry::decode(42, Some(&handshake.headers(&channel)), b"frame").unwrap();
        assert_eq!(entry.handshakes, handshake.handshakes);
        assert_eq!(entry.newest_handshake(), Some(42));
        let application = assigned(Some(Handshakes { prior: 30, is_handshake: false }));
        assert_eq!(
            Entry::decode(43, Some(&application.headers(&channel)), b"frame").unwrap().newest_handshake(),
            Some(30)
        );
        let unfollowed = assigned(None);
        assert_eq!(Entry::decode(44, Some(&unfollowed.headers(&channel)), b"frame").unwrap().newest_handshake(), None);
        assert_eq!((entry.stream_seq, entry.message.seq, entry.message.epoch), (42, 7, 3));
        assert_eq!((entry.epoch_after, entry.previous_epoch), (4, Some(2)));
        assert_eq!((entry.msg_id.as_str(), entry.group_id.as_slice()), ("id\nwith newline", &b"group"[..]));
        assert_eq!(entry.message.frame(), b"frame");
        assert_eq!(entry.message.stored_at_ms, 1_700_000_000_000);
        let stored = handshake.stored_at(42);
        assert_eq!((stored.stream_seq, stored.message.seq, stored.msg_id.as_str()), (42, 7, "id\nwith newline"));
    }

    #[test]
    fn a_message_without_the_relays_headers_is_reported_by_its_sequence() {
        let error = Entry::decode(9, Some(&HeaderMap::new()), b"x").unwrap_err().to_string();
        assert!(error.contains("message 9") && error.contains("Skytale-Msg-Id"), "{error}");
        assert!(Entry::decode(9, None, b"x").unwrap_err().to_string().contains("no headers"));
    }

    #[test]
    fn subjects_and_msg_ids_are_single_tokens_whatever_the_name() {
        let channel = ChannelName::parse("my.org/a.b/c").unwrap();
        assert_eq!(subject("skytale.log.", &channel), format!("skytale.log.{}", hex::encode("my.org/a.b/c")));
        assert!(!nats_msg_id(&channel, "a b\r\n").contains([' ', '\r', '\n']));
    }
}
