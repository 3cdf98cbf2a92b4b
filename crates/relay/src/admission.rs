//! The write rules that depend on a channel's MLS group, whichever log decides them ([`crate::sqlite_log`],
//! [`crate::jetstream_log`]): a channel is created by a GroupInfo its first member signed, within its creator's
//! quota; afterwards only members write, and a handshake must be valid for the group as it is.

use skytale_proto::ChannelName;

use crate::append::AppendError;
use crate::auth::Creator;
use crate::config::ChannelQuota;
use crate::membership::{MemberKey, ObservedGroup, Observer, RosterChange};
use crate::mls_framing::{ContentType, MlsHeader};

/// A message as its channel's group sees it.
pub struct Submission<'m> {
    pub channel: &'m ChannelName,
    pub header: &'m MlsHeader,
    /// The MLS message itself, for handshakes (commits, proposals, the creating GroupInfo).
    pub blob: Option<&'m [u8]>,
    /// The member key the publishing stream proved, if it did.
    pub sender: Option<&'m MemberKey>,
}

impl Submission<'_> {
    fn sender(&self) -> Result<&MemberKey, AppendError> {
        self.sender.ok_or_else(|| {
            AppendError::NotMember(format!(
                "this stream proved no MLS member key, so it may not write to {}: open the stream with {} and {}",
                self.channel,
                skytale_proto::meta::MEMBER_KEY,
                skytale_proto::meta::MEMBER_PROOF
            ))
        })
    }

    fn blob(&self) -> Result<&[u8], AppendError> {
        self.blob.ok_or_else(|| AppendError::InvalidHandshake("the handshake message is missing".to_owned()))
    }

    /// Checks the first message of a channel: it must be a GroupInfo signed by the publishing stream's member
    /// key. Returns the new group.
    pub fn create(&self, observer: &Observer) -> Result<ObservedGroup, AppendError> {
        if self.header.content_type != ContentType::GroupInfo {
            return Err(AppendError::NotCreated(self.channel.clone()));
        }
        let sender = self.sender()?;
        observer.create(self.blob()?, sender).map_err(AppendError::from)
    }

    /// Checks a message for an existing channel against its `group`. `Some` is the group after a handshake, with
    /// the roster change, to be recorded once the message is stored.
    pub fn check(&self, group: &ObservedGroup) -> Result<Option<(ObservedGroup, RosterChange)>, AppendError> {
        let sender = self.sender()?;
        match self.header.content_type {
            ContentType::Application if group.is_member(sender) => Ok(None),
            ContentType::Application => Err(AppendError::NotMember(format!(
                "this stream's member key is not a member of {} at epoch {}",
                self.channel,
                group.epoch()
            ))),
            // Only the first message of a channel is a GroupInfo, and that one is checked by `create`.
            ContentType::GroupInfo => Err(AppendError::ChannelExists(self.channel.clone())),
            ContentType::Commit | ContentType::Proposal => {
                let blob = self.blob()?;
                group.apply(blob, self.header, sender).map(Some).map_err(AppendError::from)
            }
        }
    }
}

/// Why `creator`, who has created `by_account` channels in its account and `by_org` in its org, may not create
/// another under `quota`, if it may not.
pub fn over_quota(quota: ChannelQuota, creator: &Creator, by_account: u64, by_org: u64) -> Option<AppendError> {
    if by_account >= quota.per_account {
        Some(AppendError::QuotaExceeded(format!(
            "account {} has created {by_account} channels, the relay's limit per account \
             (--max-channels-per-account): ask the operator for more",
            creator.account
        )))
    } else if by_org >= quota.per_org {
        Some(AppendError::QuotaExceeded(format!(
            "org {} has created {by_org} channels, the relay's limit per org (--max-channels-per-org): ask the \
             operator for more",
            creator.org
        )))
    } else {
        None
    }
}
