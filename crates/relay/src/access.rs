//! Who may read a channel. Before a channel exists, its name is the token's to read (org or invite grant), so a
//! creator can subscribe before its first publish; once it exists, only its members may, by the member key the
//! stream proved: a subscription or head query needs a key that is or was a member, and a subscription's cursor
//! delivers only the epochs during which that key was one. A removed member thus still gets the commit that
//! removed it (stored in its last epoch), and then its subscription ends with `unauthorized`.

use std::sync::Arc;

use skytale_proto::meta::error_code;
use skytale_proto::ChannelName;

use crate::append::AppendError;
use crate::auth::StreamIdentity;
use crate::frames::Refusal;
use crate::log::ChannelLog;
use crate::membership::MemberKey;
use crate::stored::{EpochSpan, Membership};

/// What a subscription's cursor checks before each epoch it delivers.
pub struct MemberGate {
    channel: ChannelName,
    key: Option<MemberKey>,
    log: Arc<dyn ChannelLog>,
    /// The epoch last found deliverable: its messages pass without another look.
    admitted_epoch: Option<u64>,
}

/// What a cursor does with a message.
pub enum Verdict {
    Deliver,
    /// From an epoch before the key was (again) a member: nothing it could decrypt.
    Skip,
    /// The key is no longer a member: the subscription ends with this.
    End(Refusal),
}

fn unauthorized(message: String) -> Refusal {
    Refusal::new(error_code::UNAUTHORIZED, message)
}

fn unreadable(error: impl std::fmt::Display) -> Refusal {
    Refusal::new(error_code::STORAGE, format!("cannot read the channel's members: {error}"))
}

async fn membership(
    log: &dyn ChannelLog,
    channel: &ChannelName,
    key: Option<&MemberKey>,
) -> Result<Membership, Refusal> {
    log.membership(channel, key.map(MemberKey::as_bytes).unwrap_or_default()).await.map_err(unreadable)
}

fn not_a_member(channel: &ChannelName, key: Option<&MemberKey>) -> Refusal {
    match key {
        None => unauthorized(format!(
            "this stream proved no MLS member key, and only members may read {channel}: open the stream with {} and {}",
            skytale_proto::meta::MEMBER_KEY,
            skytale_proto::meta::MEMBER_PROOF
        )),
        Some(_) => unauthorized(format!("this stream's member key {} {channel}", skytale_proto::meta::NOT_A_MEMBER)),
    }
}

/// Whether the stream `identity` may read `channel` now. With `follows_groups` (auth on), `Some` is the gate its
/// subscription must keep passing; without, the token alone decides.
pub async fn authorize_read(
    identity: &StreamIdentity,
    log: &Arc<dyn ChannelLog>,
    channel: &ChannelName,
    follows_groups: bool,
) -> Result<Option<MemberGate>, Refusal> {
    if !follows_groups {
        return identity.authorize(channel).map(|()| None);
    }
    let key = identity.member_key();
    match membership(log.as_ref(), channel, key).await? {
        Membership::NoChannel => identity.authorize(channel)?,
        Membership::Untracked => return Err(unauthorized(AppendError::Untracked(channel.clone()).to_string())),
        Membership::Tracked(spans) if spans.is_empty() || key.is_none() => return Err(not_a_member(channel, key)),
        Membership::Tracked(_) => identity.authorize_token(channel)?,
    }
    Ok(Some(MemberGate { channel: channel.clone(), key: key.cloned(), log: Arc::clone(log), admitted_epoch: None }))
}

impl MemberGate {
    /// What to do with a message of `epoch`. The key's spans are read again at every new epoch: the commit that
    /// started an epoch, and the roster change it made, are stored before any message of that epoch.
    pub async fn check(&mut self, epoch: u64) -> Verdict {
        if self.admitted_epoch == Some(epoch) {
            return Verdict::Deliver;
        }
        let Some(key) = &self.key else {
            return Verdict::End(not_a_member(&self.channel, None));
        };
        let spans = match membership(self.log.as_ref(), &self.channel, Some(key)).await {
            Ok(Membership::Tracked(spans)) => spans,
            Ok(Membership::NoChannel | Membership::Untracked) => Vec::new(),
            Err(refusal) => return Verdict::End(refusal),
        };
        if spans.iter().any(|span| span.contains(epoch)) {
            self.admitted_epoch = Some(epoch);
            return Verdict::Deliver;
        }
        match spans.last() {
            Some(EpochSpan { until: Some(until), .. }) if *until <= epoch => Verdict::End(unauthorized(format!(
                "removed from {} at epoch {until}: a removed member gets nothing after the commit that removed it",
                self.channel
            ))),
            Some(_) => Verdict::Skip,
            None => Verdict::End(not_a_member(&self.channel, Some(key))),
        }
    }
}
