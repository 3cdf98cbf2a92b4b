//! Why a publish was not appended to its channel's log: the outcome the log writer hands back to the stream.

use skytale_proto::ChannelName;

use crate::membership::Rejection;

/// Why an append was not stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("message epoch {message_epoch} is not the channel's current epoch {channel_epoch}")]
    StaleEpoch { message_epoch: u64, channel_epoch: u64 },
    #[error("message belongs to another MLS group than the one channel {0} is bound to")]
    ForeignGroup(ChannelName),
    #[error("channel {0} already exists: a GroupInfo only creates a channel")]
    ChannelExists(ChannelName),
    #[error("channel {0} does not exist: it is created by its first member's GroupInfo")]
    NotCreated(ChannelName),
    #[error(
        "channel {0} was created while the relay ran without auth, so the relay does not know its members and \
         accepts no more writes to it: create a new channel"
    )]
    Untracked(ChannelName),
    #[error("{0}")]
    NotMember(String),
    #[error("{0}")]
    InvalidHandshake(String),
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("the relay could not store the message: {0}")]
    Storage(String),
}

impl From<Rejection> for AppendError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::NotMember(why) => AppendError::NotMember(why),
            Rejection::Invalid(why) => AppendError::InvalidHandshake(why),
        }
    }
}

/// The sequence number of the stored message (the original one for a retried msg id).
pub type AppendResult = Result<u64, AppendError>;
