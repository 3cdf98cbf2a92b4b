//! The channels' MLS groups on the JetStream log, for relays with auth on: what every write is checked against and
//! membership is read from ([`crate::membership`]), derived from the log itself, so that every relay over one
//! stream judges a channel alike (docs/relay.md, "The JetStream log").
//!
//! A channel's group is made by its handshakes, all stored in its subject. Every message carries the stream
//! sequence of the channel's newest handshake before it ([`Handshakes`]), so from any one message a relay follows
//! back, handshake by handshake, those it has not applied yet. A record of each channel's group (the observer's
//! snapshot and every member key's epochs) is kept in a key-value bucket as of one handshake, written after each
//! handshake is stored; a relay starts from it and applies only the handshakes after it. The record is only a
//! shortcut, never trusted to be current: a relay that died between storing a handshake and writing the record
//! leaves the record one handshake behind, which the next reader catches up on. Retention removes a channel's old
//! messages, handshakes included, only once the record has caught up with them ([`Groups::settle`]).
//!
//! The bucket also counts the channels each account and org created, for the creation quota ([`Groups::reserve`]).

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::stream::{StorageType, Stream};
use bytes::Bytes;
use prost::Message as _;
use skytale_proto::pb;
use skytale_proto::ChannelName;

use super::entry::{Entry, Handshakes};
use super::reads;
use crate::append::AppendError;
use crate::auth::Creator;
use crate::config::ChannelQuota;
use crate::membership::{MemberKey, ObservedGroup, Observer, RosterChange};
use crate::mls_framing::{self, ContentType};
use crate::nats::{JetStreamConnection, LogStreamConfig, NatsError};
use crate::stored::{EpochSpan, Membership, StoreError};
use crate::{admission, publish};

/// Records kept in memory for membership checks; beyond, the oldest-inserted are dropped and read again.
const MAX_CACHED_RECORDS: usize = 4096;
/// Compare-and-set attempts on one key of the bucket before giving up: each lost one means another relay wrote it
/// meanwhile.
const MAX_KEY_RACES: usize = 32;

/// One channel's group as of one of its handshakes.
#[derive(Clone)]
pub struct GroupRecord {
    /// Stream sequence of the newest handshake the record reflects.
    pub as_of: u64,
    pub group: ObservedGroup,
    /// Every key that ever was a member, with the epochs it was one, oldest first.
    spans: HashMap<MemberKey, Vec<EpochSpan>>,
}

/// A channel as the relay follows it.
pub enum Followed {
    /// Nothing is stored under the name.
    NoChannel,
    /// The channel was created by a relay with auth off: its group is not followed.
    Untracked,
    Group(Box<GroupRecord>),
}

impl GroupRecord {
    /// The group of a channel created by the handshake at `as_of`, its members members from `epoch` on.
    pub fn created(as_of: u64, group: ObservedGroup, epoch: u64) -> Self {
        let spans = group.members().map(|key| (key.clone(), vec![EpochSpan { from: epoch, until: None }])).collect();
        Self { as_of, group, spans }
    }

    /// The group after the handshake at `as_of`, which made it `group` by `change` as of `epoch`.
    pub fn after(&self, as_of: u64, group: ObservedGroup, change: &RosterChange, epoch: u64) -> Self {
        let mut spans = self.spans.clone();
        for key in &change.added {
            let key_spans = spans.entry(key.clone()).or_default();
            if key_spans.last().is_none_or(|last| last.until.is_some()) {
                key_spans.push(EpochSpan { from: epoch, until: None });
            }
        }
        for key in &change.removed {
            if let Some(open) = spans.get_mut(key).and_then(|key_spans| key_spans.last_mut()) {
                open.until.get_or_insert(epoch);
            }
        }
        Self { as_of, group, spans }
    }

    /// The epochs during which `member` was a member.
    pub fn spans(&self, member: &[u8]) -> Vec<EpochSpan> {
        self.spans.get(&MemberKey::from_bytes(member.to_vec())).cloned().unwrap_or_default()
    }

    fn encode(&self) -> Result<Bytes, StoreError> {
        let snapshot = self.group.snapshot().map_err(|e| StoreError::CorruptGroup(e.to_string()))?;
        let members = self
            .spans
            .iter()
            .map(|(key, spans)| StoredMember {
                key: key.as_bytes().to_vec(),
                spans: spans.iter().map(|span| StoredSpan { from: span.from, until: span.until }).collect(),
            })
            .collect();
        Ok(StoredRecord { as_of: self.as_of, snapshot, members }.encode_to_vec().into())
    }

    fn decode(observer: &Observer, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::CorruptGroup(format!("a group record {what}"));
        let stored = StoredRecord::decode(bytes).map_err(|e| corrupt(format!("cannot be decoded: {e}")))?;
        let group = observer.load(&stored.snapshot).map_err(|e| corrupt(format!("holds no usable group: {e}")))?;
        let spans = stored
            .members
            .into_iter()
            .map(|member| {
                let spans = member.spans.iter().map(|span| EpochSpan { from: span.from, until: span.until }).collect();
                (MemberKey::from_bytes(member.key), spans)
            })
            .collect();
        Ok(Self { as_of: stored.as_of, group, spans })
    }
}

/// A [`GroupRecord`] as the bucket holds it.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredRecord {
    #[prost(uint64, tag = "1")]
    as_of: u64,
    /// The observer's snapshot ([`ObservedGroup::snapshot`]).
    #[prost(bytes = "vec", tag = "2")]
    snapshot: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    members: Vec<StoredMember>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredMember {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    spans: Vec<StoredSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredSpan {
    #[prost(uint64, tag = "1")]
    from: u64,
    #[prost(uint64, optional, tag = "2")]
    until: Option<u64>,
}

/// The followed groups of one log stream, shared by every appender and reader of the relay.
pub struct Groups {
    bucket: kv::Store,
    stream: Stream,
    observer: Observer,
    quota: ChannelQuota,
    /// Records read or made lately, so that a membership check usually costs one read of the channel's newest
    /// message.
    cache: Mutex<HashMap<ChannelName, GroupRecord>>,
}

fn nats(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |error| StoreError::Nats(format!("{what}: {error}"))
}

fn group_key(channel: &ChannelName) -> String {
    format!("group.{}", hex::encode(channel.as_str()))
}

impl Groups {
    /// Uses (creating it if needed) the bucket of the log stream `config` names: `<stream>_groups`, with the
    /// stream's replicas.
    pub async fn open(
        connection: &JetStreamConnection,
        config: &LogStreamConfig,
        stream: Stream,
        quota: ChannelQuota,
    ) -> Result<Self, NatsError> {
        let bucket = format!("{}_groups", config.stream);
        if !bucket.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(NatsError::StreamConfig(format!(
                "with auth on, the relay keeps channels' groups in a key-value bucket named after the stream, \
                 {bucket:?}, and bucket names allow only letters, digits, _ and -: rename the stream {:?}",
                config.stream
            )));
        }
        let failed =
            |action: &'static str, reason: String| NatsError::Stream { stream: bucket.clone(), action, reason };
        let js = connection.jetstream();
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    description: "Skytale channels' MLS groups (docs/relay.md, \"The JetStream log\")".to_owned(),
                    history: 1,
                    num_replicas: config.replicas,
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|error| failed("create", error.to_string()))?,
        };
        Ok(Self { bucket: store, stream, observer: Observer::default(), quota, cache: Mutex::default() })
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// The group of `channel` as of `newest`, a message of its subject (`None`: the subject has none), starting
    /// from `known` when that is not newer.
    pub async fn as_of(
        &self,
        channel: &ChannelName,
        newest: Option<&Entry>,
        known: Option<&GroupRecord>,
    ) -> Result<Followed, StoreError> {
        let Some(newest) = newest else {
            return Ok(Followed::NoChannel);
        };
        let Some(target) = newest.newest_handshake() else {
            return Ok(Followed::Untracked);
        };
        let mut start = match known.filter(|record| record.as_of <= target) {
            Some(record) => Some(record.clone()),
            None => self.cached_or_stored(channel).await?.filter(|record| record.as_of <= target),
        };
        // Back from the newest handshake to the start's (or to the channel's creation).
        let mut chain = Vec::new();
        let mut at = target;
        while at != start.as_ref().map_or(0, |record| record.as_of) {
            if at < start.as_ref().map_or(0, |record| record.as_of) {
                // The start is no handshake of this channel's chain (a record of a channel since removed by
                // JetStream's age limit and created again): follow the chain to the creation instead.
                start = None;
                continue;
            }
            let entry = match reads::at(&self.stream, at).await? {
                Some(entry) => entry,
                None => {
                    return Err(StoreError::CorruptGroup(format!(
                        "the handshake of {channel} at stream sequence {at} is gone from the log, and no group \
                         record is as new: the channel's members cannot be known"
                    )))
                }
            };
            let Some(Handshakes { prior, .. }) = entry.handshakes else {
                return Err(StoreError::CorruptEntry(format!("the handshake at stream sequence {at} has no marks")));
            };
            chain.push(entry);
            at = prior;
        }
        let mut record = start;
        for entry in chain.iter().rev() {
            record = Some(self.apply(record.as_ref(), entry)?);
        }
        let record = record.ok_or_else(|| {
            StoreError::CorruptGroup(format!("{channel}'s messages name handshakes but none creates the channel"))
        })?;
        self.remember(channel, &record);
        Ok(Followed::Group(Box::new(record)))
    }

    /// Applies the stored handshake `entry` to `record` (`None`: `entry` creates the channel).
    fn apply(&self, record: Option<&GroupRecord>, entry: &Entry) -> Result<GroupRecord, StoreError> {
        let corrupt = |why: String| {
            StoreError::CorruptGroup(format!(
                "the handshake at stream sequence {} does not apply: {why}",
                entry.stream_seq
            ))
        };
        let publish = pb::Publish::decode(entry.message.frame()).map_err(|e| corrupt(e.to_string()))?;
        let blob = publish::mls_message(&publish).ok_or_else(|| corrupt("it carries no MLS message".to_owned()))?;
        let header = mls_framing::parse_header(blob).map_err(|e| corrupt(e.to_string()))?;
        match (record, header.content_type) {
            (None, ContentType::GroupInfo) => {
                let group = self.observer.recreate(blob).map_err(|e| corrupt(e.to_string()))?;
                Ok(GroupRecord::created(entry.stream_seq, group, header.epoch))
            }
            (Some(record), ContentType::Commit | ContentType::Proposal) => {
                let (group, change) = record.group.replay(blob, &header).map_err(|e| corrupt(e.to_string()))?;
                Ok(record.after(entry.stream_seq, group, &change, entry.epoch_after))
            }
            (None, _) => Err(corrupt("the channel's first handshake is no GroupInfo".to_owned())),
            (Some(_), _) => Err(corrupt("a GroupInfo of a channel that exists".to_owned())),
        }
    }

    async fn cached_or_stored(&self, channel: &ChannelName) -> Result<Option<GroupRecord>, StoreError> {
        if let Some(record) = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(channel) {
            return Ok(Some(record.clone()));
        }
        let stored =
            self.bucket.get(group_key(channel)).await.map_err(|e| nats("reading a group record")(e.to_string()))?;
        stored.map(|bytes| GroupRecord::decode(&self.observer, &bytes)).transpose()
    }

    fn remember(&self, channel: &ChannelName, record: &GroupRecord) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.get(channel).is_some_and(|cached| cached.as_of >= record.as_of) {
            return;
        }
        if !cache.contains_key(channel) && cache.len() >= MAX_CACHED_RECORDS {
            if let Some(evicted) = cache.keys().next().cloned() {
                cache.remove(&evicted);
            }
        }
        cache.insert(channel.clone(), record.clone());
    }

    /// Writes `record` as `channel`'s, unless the bucket already holds one as new.
    pub async fn save(&self, channel: &ChannelName, record: &GroupRecord) -> Result<(), StoreError> {
        self.remember(channel, record);
        let value = record.encode()?;
        let newer = |stored: Option<&Bytes>| {
            let stored_as_of = stored.and_then(|bytes| StoredRecord::decode(bytes.clone()).ok()).map(|s| s.as_of);
            Ok(stored_as_of.is_none_or(|as_of| as_of < record.as_of).then(|| value.clone()))
        };
        self.write(&group_key(channel), "writing a group record", newer).await.map(drop)
    }

    /// Makes the bucket's record of `channel` as new as `newest`, its subject's newest message, so that retention
    /// may remove every handshake before it.
    pub async fn settle(&self, channel: &ChannelName, newest: &Entry) -> Result<(), StoreError> {
        match self.as_of(channel, Some(newest), None).await? {
            Followed::Group(record) => self.save(channel, &record).await,
            Followed::NoChannel | Followed::Untracked => Ok(()),
        }
    }

    /// What the log knows of `member`'s place in `channel`, whose subject's newest message is `newest`.
    pub async fn membership(
        &self,
        channel: &ChannelName,
        newest: Option<&Entry>,
        member: &[u8],
    ) -> Result<Membership, StoreError> {
        Ok(match self.as_of(channel, newest, None).await? {
            Followed::NoChannel => Membership::NoChannel,
            Followed::Untracked => Membership::Untracked,
            Followed::Group(record) => Membership::Tracked(record.spans(member)),
        })
    }

    /// Counts a channel `creator` is about to create against its quota, or says why it may not. A creation that
    /// is not stored after all gives its count back with [`Groups::release`]; one lost with a relay in between is
    /// never given back, which errs towards refusing.
    pub async fn reserve(&self, creator: &Creator) -> Result<Result<(), AppendError>, StoreError> {
        let account = self.add(&format!("account.{}", hex::encode(&creator.account)), 1).await?;
        let org = self.add(&format!("org.{}", hex::encode(&creator.org)), 1).await?;
        // Counts after this creation: over the quota when the creation would make one more than allowed.
        let refusal = admission::over_quota(self.quota, creator, account - 1, org - 1);
        if refusal.is_some() {
            self.release(creator).await;
        }
        Ok(refusal.map_or(Ok(()), Err))
    }

    /// Gives back what [`Groups::reserve`] counted for `creator`.
    pub async fn release(&self, creator: &Creator) {
        for key in [format!("account.{}", hex::encode(&creator.account)), format!("org.{}", hex::encode(&creator.org))]
        {
            if let Err(error) = self.add(&key, -1).await {
                tracing::warn!(%error, %key, "cannot give back a channel creation's count; it stays counted");
            }
        }
    }

    /// Adds `delta` to the counter at `key` (missing: 0), returning its new value.
    async fn add(&self, key: &str, delta: i64) -> Result<u64, StoreError> {
        let count = |value: &Bytes| std::str::from_utf8(value).ok().and_then(|text| text.parse::<u64>().ok());
        let next = |stored: Option<&Bytes>| {
            let current = match stored {
                Some(value) => count(value)
                    .ok_or_else(|| StoreError::CorruptGroup(format!("the channel counter {key} is not a number")))?,
                None => 0,
            };
            Ok(Some(Bytes::from(current.saturating_add_signed(delta).to_string())))
        };
        let written = self.write(key, "counting channel creations", next).await?;
        Ok(written.as_ref().and_then(count).unwrap_or_default())
    }

    /// Writes what `next` makes of the value at `key` (`None` if missing) with a compare-and-set on its revision,
    /// reading again when another relay wrote it meanwhile; `next` answering `None` writes nothing. Returns what
    /// was written.
    async fn write(
        &self,
        key: &str,
        what: &str,
        next: impl Fn(Option<&Bytes>) -> Result<Option<Bytes>, StoreError>,
    ) -> Result<Option<Bytes>, StoreError> {
        let failed = nats(what);
        for _ in 0..MAX_KEY_RACES {
            let stored = self.bucket.entry(key).await.map_err(|e| failed(e.to_string()))?;
            let stored = stored.filter(|entry| entry.operation == kv::Operation::Put);
            let Some(value) = next(stored.as_ref().map(|entry| &entry.value))? else {
                return Ok(None);
            };
            let written = match stored {
                Some(entry) => self
                    .bucket
                    .update(key, value.clone(), entry.revision)
                    .await
                    .map(drop)
                    .map_err(|error| (error.kind() == UpdateErrorKind::WrongLastRevision, error.to_string())),
                None => self
                    .bucket
                    .create(key, value.clone())
                    .await
                    .map(drop)
                    .map_err(|error| (matches!(error.kind(), CreateErrorKind::AlreadyExists), error.to_string())),
            };
            match written {
                Ok(()) => return Ok(Some(value)),
                Err((true, _lost_race)) => continue,
                Err((false, error)) => return Err(failed(error)),
            }
        }
        Err(failed(format!("other relays wrote {key} {MAX_KEY_RACES} times in a row meanwhile")))
    }
}
