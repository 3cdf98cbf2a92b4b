//! Real MLS messages for tests, made by an mls-rs group with one member, so the relay's framing parser and
//! Delivery-Service rules are exercised by the bytes a real client sends.
#![allow(dead_code)] // each test binary uses a different subset

use mls_rs::client_builder::{MlsConfig, PaddingMode};
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::mls_rules::{DefaultMlsRules, EncryptionOptions};
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Group};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// Authenticated data attached to every message, so parsers must skip a non-empty vector.
const AAD: &[u8] = b"skytale-test";

/// A one-member MLS group producing messages at its current epoch.
pub struct MlsGroup<C: MlsConfig> {
    group: Group<C>,
}

/// A new group at epoch 0. With `encrypted_control`, commits and proposals are PrivateMessages;
/// otherwise they are PublicMessages (application messages are always PrivateMessages).
pub fn new_group(encrypted_control: bool) -> MlsGroup<impl MlsConfig> {
    let group = client(b"test-member", encrypted_control).group_builder().expect("group builder").build();
    MlsGroup { group: group.expect("group") }
}

/// [`new_group`] with the group id given.
pub fn new_group_with_id(encrypted_control: bool, group_id: &[u8]) -> MlsGroup<impl MlsConfig> {
    let builder = client(b"test-member", encrypted_control).group_builder().expect("group builder");
    MlsGroup { group: builder.with_group_id(group_id.to_vec()).build().expect("group") }
}

fn client(identity: &[u8], encrypted_control: bool) -> Client<impl MlsConfig> {
    let crypto = RustCryptoProvider::default();
    let suite = crypto.cipher_suite_provider(CIPHER_SUITE).expect("cipher suite");
    let (secret, public) = suite.signature_key_generate().expect("signature key");
    let credential = BasicCredential::new(identity.to_vec()).into_credential();
    let rules =
        DefaultMlsRules::new().with_encryption_options(EncryptionOptions::new(encrypted_control, PaddingMode::None));
    Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(crypto)
        .mls_rules(rules)
        .signing_identity(SigningIdentity::new(credential, public), secret, CIPHER_SUITE)
        .build()
}

/// What adding a member produces: the joiner's KeyPackage, the commit adding it and the Welcome it joins with.
pub struct Added {
    pub key_package: Vec<u8>,
    pub commit: Vec<u8>,
    pub welcome: Vec<u8>,
}

impl<C: MlsConfig> MlsGroup<C> {
    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    pub fn group_id(&self) -> Vec<u8> {
        self.group.group_id().to_vec()
    }

    /// An application message at the current epoch.
    pub fn application(&mut self, text: &[u8]) -> Vec<u8> {
        let msg = self.group.encrypt_application_message(text, AAD.to_vec()).expect("encrypt");
        msg.to_bytes().expect("encode")
    }

    /// The group's GroupInfo with the ratchet tree: what a client publishes to create its channel.
    pub fn group_info(&self) -> Vec<u8> {
        self.group.group_info_message(true).expect("group info").to_bytes().expect("encode")
    }

    /// An update proposal at the current epoch (the next message must then be a commit).
    pub fn proposal(&mut self) -> Vec<u8> {
        let msg = self.group.propose_update(AAD.to_vec()).expect("propose");
        msg.to_bytes().expect("encode")
    }

    /// A commit at the current epoch, applied locally: the group moves to the next epoch.
    pub fn commit(&mut self) -> Vec<u8> {
        let bytes = self.pending_commit();
        self.group.apply_pending_commit().expect("apply commit");
        bytes
    }

    /// A commit at the current epoch that is then discarded, as a member does whose commit lost the race:
    /// the group stays at its epoch and can produce a competing commit for the same epoch.
    pub fn unapplied_commit(&mut self) -> Vec<u8> {
        let bytes = self.pending_commit();
        self.group.clear_pending_commit();
        bytes
    }

    /// Adds a new member with a commit at the current epoch, applied locally: the group moves to the next epoch.
    pub fn add_member(&mut self) -> Added {
        let joiner = client(b"test-joiner", false);
        let key_package =
            joiner.generate_key_package_message(Default::default(), Default::default(), None).expect("key package");
        let output = self
            .group
            .commit_builder()
            .add_member(key_package.clone())
            .expect("add member")
            .authenticated_data(AAD.to_vec())
            .build()
            .expect("commit");
        self.group.apply_pending_commit().expect("apply commit");
        Added {
            key_package: key_package.to_bytes().expect("encode"),
            commit: output.commit_message.to_bytes().expect("encode"),
            welcome: output.welcome_messages[0].to_bytes().expect("encode"),
        }
    }

    fn pending_commit(&mut self) -> Vec<u8> {
        let output = self.group.commit(AAD.to_vec()).expect("commit");
        output.commit_message.to_bytes().expect("encode")
    }
}
