//! Who may write a channel: the relay follows each channel's MLS group as an external observer (RFC 9420 §12.4's
//! "Delivery Service" view, mls-rs's `ExternalGroup`), from the creator's GroupInfo through every commit and
//! proposal, all of which travel as PublicMessage. That lets it check what the MLS framing alone cannot: that a
//! handshake is signed by a current member and applies to the group as it is, and which signature keys the
//! current members hold.
//!
//! The observer sees no secret: it cannot read application messages, and of a commit it checks the signature,
//! the proposals, the new tree and its parent hashes, but not the confirmation tag (that needs the epoch's
//! secrets). A member can therefore still commit garbage its peers will refuse; what no longer works is a
//! non-member, or a removed member, moving the channel's epoch.
//!
//! Validation runs only for the rare handshake messages; an application message costs one lookup of its
//! stream's key in [`ObservedGroup::is_member`].

use std::collections::HashSet;
use std::fmt;

use mls_rs::external_client::builder::{
    ExternalBaseConfig, IntoConfigOutput, WithCryptoProvider, WithIdentityProvider,
};
use mls_rs::external_client::{ExternalClient, ExternalGroup, ExternalReceivedMessage, ExternalSnapshot};
use mls_rs::identity::basic::BasicIdentityProvider;
use mls_rs::{CipherSuite, CipherSuiteProvider, CryptoProvider, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use crate::mls_framing::{ContentType, MlsHeader, WireFormat};

type ObserverConfig = IntoConfigOutput<
    WithCryptoProvider<RustCryptoProvider, WithIdentityProvider<BasicIdentityProvider, ExternalBaseConfig>>,
>;

/// The one ciphersuite of every Skytale channel (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519): its signature
/// scheme is the one a stream's member proof is checked with.
const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// The public key of a member's MLS signing identity (a leaf's signature key): what a stream proves it holds
/// and what the relay looks up in a channel's roster.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MemberKey(Vec<u8>);

impl MemberKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Checks `signature` by this key over `message` (the stream's member proof).
    pub fn verify(&self, signature: &[u8], message: &[u8]) -> bool {
        let Some(suite) = RustCryptoProvider::default().cipher_suite_provider(CIPHER_SUITE) else {
            return false;
        };
        suite.verify(&self.0.clone().into(), signature, message).is_ok()
    }
}

impl fmt::Debug for MemberKey {
    /// A short prefix is enough to tell keys apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix: String = self.0.iter().take(6).map(|b| format!("{b:02x}")).collect();
        write!(f, "MemberKey({prefix}..)")
    }
}

/// Why a handshake message (or a creating GroupInfo) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The stream's key is not the member that signed the message, or not a member at all.
    #[error("{0}")]
    NotMember(String),
    /// The message is not a valid handshake for the group as it is.
    #[error("{0}")]
    Invalid(String),
}

/// Follows MLS groups from outside.
pub struct Observer {
    client: ExternalClient<ObserverConfig>,
}

impl Default for Observer {
    fn default() -> Self {
        let client = ExternalClient::builder()
            .identity_provider(BasicIdentityProvider)
            .crypto_provider(RustCryptoProvider::default())
            .build();
        Self { client }
    }
}

/// One channel's group as the relay last accepted it.
#[derive(Clone)]
pub struct ObservedGroup {
    group: ExternalGroup<ObserverConfig>,
    members: HashSet<MemberKey>,
}

/// How an accepted handshake changed the roster.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RosterChange {
    pub added: Vec<MemberKey>,
    pub removed: Vec<MemberKey>,
}

fn invalid(what: &str) -> impl Fn(mls_rs::error::MlsError) -> Rejection + '_ {
    move |error| Rejection::Invalid(format!("{what}: {error}"))
}

impl Observer {
    /// Starts following a group from the GroupInfo (with its ratchet tree) that creates a channel. It must be
    /// signed by `creator`, the key the publishing stream proved.
    pub fn create(&self, blob: &[u8], creator: &MemberKey) -> Result<ObservedGroup, Rejection> {
        let (observed, signed_by) = self.observe(blob)?;
        if signed_by.as_ref() != Some(creator) {
            return Err(Rejection::NotMember(
                "the GroupInfo is not signed by this stream's member key: a channel is created by its first member"
                    .to_owned(),
            ));
        }
        Ok(observed)
    }

    /// Follows a group again from the GroupInfo that created its channel, read back from the log: the
    /// [`Observer::create`] that stored it checked its signer against the stream.
    pub fn recreate(&self, blob: &[u8]) -> Result<ObservedGroup, Rejection> {
        self.observe(blob).map(|(observed, _)| observed)
    }

    /// The group a GroupInfo describes, and the key of the member that signed it.
    fn observe(&self, blob: &[u8]) -> Result<(ObservedGroup, Option<MemberKey>), Rejection> {
        let message = MlsMessage::from_bytes(blob).map_err(invalid("malformed GroupInfo"))?;
        let signer = message
            .as_group_info()
            .map(|info| info.sender())
            .ok_or_else(|| Rejection::Invalid("a channel is created by a GroupInfo".to_owned()))?;
        let group = self.client.observe_group(message, None, None).map_err(invalid("invalid GroupInfo"))?;
        let observed = ObservedGroup::new(group);
        let signed_by = observed.key_at(signer);
        Ok((observed, signed_by))
    }

    /// Restores a group saved with [`ObservedGroup::snapshot`].
    pub fn load(&self, snapshot: &[u8]) -> Result<ObservedGroup, mls_rs::error::MlsError> {
        let snapshot = ExternalSnapshot::from_bytes(snapshot)?;
        Ok(ObservedGroup::new(self.client.load_group(snapshot)?))
    }
}

impl ObservedGroup {
    fn new(group: ExternalGroup<ObserverConfig>) -> Self {
        let members = roster_keys(&group);
        Self { group, members }
    }

    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch
    }

    pub fn is_member(&self, key: &MemberKey) -> bool {
        self.members.contains(key)
    }

    pub fn members(&self) -> impl Iterator<Item = &MemberKey> {
        self.members.iter()
    }

    fn key_at(&self, leaf: u32) -> Option<MemberKey> {
        let member = self.group.roster().member_with_index(leaf).ok()?;
        Some(MemberKey(member.signing_identity.signature_key.to_vec()))
    }

    /// Validates a handshake message (`header` is its framing) sent on a stream holding `sender`, and returns
    /// the group after it with the roster change. The group itself is left as it was, so the caller keeps it
    /// until the message is durably stored.
    pub fn apply(
        &self,
        blob: &[u8],
        header: &MlsHeader,
        sender: &MemberKey,
    ) -> Result<(ObservedGroup, RosterChange), Rejection> {
        if header.wire_format != WireFormat::Public {
            return Err(Rejection::Invalid(
                "commits and proposals must be PublicMessages, so the relay can check who sent them".to_owned(),
            ));
        }
        let signed_by = header.member_sender.and_then(|leaf| self.key_at(leaf));
        if signed_by.as_ref() != Some(sender) {
            return Err(Rejection::NotMember(
                "the message's sender is not this stream's member key: only a current member may send commits \
                 and proposals, each on its own stream"
                    .to_owned(),
            ));
        }
        let message = MlsMessage::from_bytes(blob).map_err(invalid("malformed handshake message"))?;
        let mut next = self.group.clone();
        match next.process_incoming_message(message).map_err(invalid("refused by the group"))? {
            ExternalReceivedMessage::Commit(_) if header.content_type == ContentType::Commit => {}
            ExternalReceivedMessage::Proposal(_) if header.content_type == ContentType::Proposal => {}
            other => {
                return Err(Rejection::Invalid(format!("expected a commit or proposal, got {}", describe(&other))));
            }
        }
        let next = ObservedGroup::new(next);
        let change = RosterChange {
            added: next.members.difference(&self.members).cloned().collect(),
            removed: self.members.difference(&next.members).cloned().collect(),
        };
        Ok((next, change))
    }

    /// Applies a handshake read back from the log, which [`ObservedGroup::apply`] checked against the stream that
    /// sent it when it was stored.
    pub fn replay(&self, blob: &[u8], header: &MlsHeader) -> Result<(ObservedGroup, RosterChange), Rejection> {
        let signer = header.member_sender.and_then(|leaf| self.key_at(leaf)).ok_or_else(|| {
            Rejection::Invalid("a stored handshake is not signed by a member of the group as it was".to_owned())
        })?;
        self.apply(blob, header, &signer)
    }

    /// The group's state, for the store (restored with [`Observer::load`]).
    pub fn snapshot(&self) -> Result<Vec<u8>, mls_rs::error::MlsError> {
        self.group.snapshot().to_bytes()
    }
}

fn roster_keys(group: &ExternalGroup<ObserverConfig>) -> HashSet<MemberKey> {
    group.roster().members_iter().map(|member| MemberKey(member.signing_identity.signature_key.to_vec())).collect()
}

fn describe(message: &ExternalReceivedMessage) -> &'static str {
    match message {
        ExternalReceivedMessage::Commit(_) => "a commit",
        ExternalReceivedMessage::Proposal(_) => "a proposal",
        ExternalReceivedMessage::Ciphertext(_) => "an encrypted message",
        ExternalReceivedMessage::GroupInfo(_) => "a GroupInfo",
        ExternalReceivedMessage::Welcome => "a Welcome",
        ExternalReceivedMessage::KeyPackage(_) => "a key package",
    }
}
