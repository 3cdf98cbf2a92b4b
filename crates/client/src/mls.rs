//! The mls-rs configuration of a Skytale client and small helpers around mls-rs types.
//!
//! Ciphersuite MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 with the pure-Rust crypto provider, basic
//! credentials carrying the agent identity, key packages in mls-rs-provider-sqlite (`data_dir/keys.db`) and group
//! state in [`GroupStore`] (so it commits together with the channel registry).

use std::path::Path;
use std::sync::Arc;

use mls_rs::client_builder::{
    BaseConfig, WithCryptoProvider, WithGroupStateStorage, WithIdentityProvider, WithKeyPackageRepo,
};
use mls_rs::group::{CommitMessageDescription, Member};
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs_provider_sqlite::connection_strategy::FileConnectionStrategy;
use mls_rs_provider_sqlite::storage::SqLiteKeyPackageStorage;
use mls_rs_provider_sqlite::SqLiteDataStorageEngine;

use crate::error::Error;
use crate::identity::{SigningKey, CIPHER_SUITE};
use crate::signing::CachedKeyProvider;
use crate::store::{GroupStore, Store};

pub(crate) type MlsConfig = WithCryptoProvider<
    CachedKeyProvider,
    WithIdentityProvider<
        BasicIdentityProvider,
        WithGroupStateStorage<GroupStore, WithKeyPackageRepo<SqLiteKeyPackageStorage, BaseConfig>>,
    >,
>;
pub(crate) type MlsClient = mls_rs::Client<MlsConfig>;
pub(crate) type MlsGroup = mls_rs::Group<MlsConfig>;

/// Builds the mls-rs client for `key`, with key packages in `key_db` and groups in `store`.
pub(crate) fn build_client(key: &SigningKey, key_db: &Path, store: Arc<Store>) -> Result<MlsClient, Error> {
    let key_packages = SqLiteDataStorageEngine::new(FileConnectionStrategy::new(key_db))
        .and_then(|engine| engine.key_package_storage())
        .map_err(Error::storage)?;
    let credential = BasicCredential::new(key.identity.clone()).into_credential();
    let signing_identity = SigningIdentity::new(credential, key.public.clone());
    Ok(mls_rs::Client::builder()
        .key_package_repo(key_packages)
        .group_state_storage(GroupStore(store))
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(CachedKeyProvider::new(&key.secret))
        .signing_identity(signing_identity, key.secret.clone(), CIPHER_SUITE)
        .build())
}

/// The identity bytes of a group member (empty for a non-basic credential, which this client never creates).
pub(crate) fn member_identity(member: &Member) -> Vec<u8> {
    member.signing_identity.credential.as_basic().map(|c| c.identifier.clone()).unwrap_or_default()
}

/// The identity of the member at leaf `index` of `group`.
pub(crate) fn identity_at(group: &MlsGroup, index: u32) -> Vec<u8> {
    group.member_at_index(index).map(|m| member_identity(&m)).unwrap_or_default()
}

/// Applies the echo of this member's own commit without `process_incoming_message`, when `blob` is exactly the
/// commit this member built (`own_commit`) and mls-rs still holds it as the pending commit. mls-rs would first
/// decode the whole pending commit (two copies of the ratchet tree) only to compare its hash, then decode it
/// again to apply it: at 1 000 members that first decode was a third of the echo's cost. `None`: not our
/// pending commit, process it normally.
pub(crate) fn apply_own_commit(
    group: &mut MlsGroup,
    own_commit: &mut Option<Vec<u8>>,
    blob: &[u8],
) -> Option<Result<CommitMessageDescription, mls_rs::error::MlsError>> {
    if own_commit.as_deref() != Some(blob) || !group.has_pending_commit() {
        return None;
    }
    *own_commit = None;
    Some(group.apply_pending_commit())
}

/// Parses an MLSMessage that must hold a key package.
pub(crate) fn parse_key_package(bytes: &[u8]) -> Result<mls_rs::MlsMessage, Error> {
    let message = mls_rs::MlsMessage::from_bytes(bytes).map_err(mls_err("malformed key package"))?;
    if message.as_key_package().is_none() {
        return Err(Error::Mls(format!("malformed key package: got a {:?} message", message.wire_format())));
    }
    Ok(message)
}

/// Wraps an mls-rs error with what the client was doing.
pub(crate) fn mls_err(context: &str) -> impl FnOnce(mls_rs::error::MlsError) -> Error + '_ {
    move |e| Error::Mls(format!("{context}: {e}"))
}
