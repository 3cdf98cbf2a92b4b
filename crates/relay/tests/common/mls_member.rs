//! MLS group members for tests against a relay with auth on: each has its own signing key (which its streams
//! prove with `skytale-member-key`/`-proof`), creates or joins a real mls-rs group with the client's settings
//! (handshakes as PublicMessage, the ratchet tree in Welcomes) and produces the messages a real client sends.
#![allow(dead_code)] // each test binary uses a different subset

use mls_rs::client_builder::MlsConfig;
use mls_rs::crypto::{SignaturePublicKey, SignatureSecretKey};
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, Group, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use skytale_proto::meta;

const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// One member: its client, key and (once created or joined) group.
pub struct Member<C: MlsConfig> {
    pub name: String,
    client: Client<C>,
    public: SignaturePublicKey,
    secret: SignatureSecretKey,
    group: Option<Group<C>>,
}

/// A member named `name` with a fresh key and no group yet.
pub fn member(name: &str) -> Member<impl MlsConfig> {
    let crypto = RustCryptoProvider::default();
    let suite = crypto.cipher_suite_provider(CIPHER_SUITE).expect("cipher suite");
    let (secret, public) = suite.signature_key_generate().expect("signature key");
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    let client = Client::builder()
        .identity_provider(BasicIdentityProvider)
        .crypto_provider(crypto)
        .signing_identity(SigningIdentity::new(credential, public.clone()), secret.clone(), CIPHER_SUITE)
        .build();
    Member { name: name.to_owned(), client, public, secret, group: None }
}

fn encode(message: MlsMessage) -> Vec<u8> {
    message.to_bytes().expect("encode")
}

impl<C: MlsConfig> Member<C> {
    /// The stream headers proving this member's key for a stream opened with `token`.
    pub fn proof_headers(&self, token: &str) -> Vec<(&'static str, String)> {
        self.proof_headers_signing(&meta::member_proof_message(token))
    }

    /// Headers claiming this member's key with a signature over `message` (tests of bad proofs).
    pub fn proof_headers_signing(&self, message: &[u8]) -> Vec<(&'static str, String)> {
        let suite = RustCryptoProvider::default().cipher_suite_provider(CIPHER_SUITE).expect("cipher suite");
        let proof = suite.sign(&self.secret, message).expect("sign");
        vec![(meta::MEMBER_KEY, hex::encode(self.public.as_bytes())), (meta::MEMBER_PROOF, hex::encode(proof))]
    }

    fn group(&mut self) -> &mut Group<C> {
        self.group.as_mut().expect("the member has a group")
    }

    /// Creates a group of one and returns its GroupInfo with the ratchet tree: what creates a channel.
    pub fn create(&mut self) -> Vec<u8> {
        self.group = Some(self.client.create_group(ExtensionList::new(), Default::default(), None).expect("group"));
        self.group_info()
    }

    pub fn group_info(&mut self) -> Vec<u8> {
        encode(self.group().group_info_message(true).expect("group info"))
    }

    pub fn key_package(&self) -> Vec<u8> {
        encode(self.client.generate_key_package_message(Default::default(), Default::default(), None).expect("kp"))
    }

    pub fn epoch(&mut self) -> u64 {
        self.group().current_epoch()
    }

    /// A commit adding the owner of `key_package`, applied locally; returns it with the Welcome.
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key_package = MlsMessage::from_bytes(key_package).expect("key package");
        let output = self.group().commit_builder().add_member(key_package).expect("add").build().expect("commit");
        self.group().apply_pending_commit().expect("apply");
        let welcome = output.welcome_messages.into_iter().next().expect("welcome");
        (encode(output.commit_message), encode(welcome))
    }

    /// A commit removing the member with identity `name`, applied locally.
    pub fn remove(&mut self, name: &str) -> Vec<u8> {
        let index = self
            .group()
            .roster()
            .members_iter()
            .find(|m| m.signing_identity.credential.as_basic().is_some_and(|c| c.identifier == name.as_bytes()))
            .expect("member to remove")
            .index;
        let output = self.group().commit_builder().remove_member(index).expect("remove").build().expect("commit");
        self.group().apply_pending_commit().expect("apply");
        encode(output.commit_message)
    }

    /// An empty commit (a key update), applied locally.
    pub fn commit(&mut self) -> Vec<u8> {
        let output = self.group().commit(Vec::new()).expect("commit");
        self.group().apply_pending_commit().expect("apply");
        encode(output.commit_message)
    }

    /// An empty commit that is not applied: the member can still send at its epoch.
    pub fn unapplied_commit(&mut self) -> Vec<u8> {
        let output = self.group().commit(Vec::new()).expect("commit");
        self.group().clear_pending_commit();
        encode(output.commit_message)
    }

    /// An empty commit left pending: [`Member::apply_pending`] if the channel took it, else
    /// [`Member::discard_pending`] and process the commit that won.
    pub fn pending_commit(&mut self) -> Vec<u8> {
        encode(self.group().commit(Vec::new()).expect("commit").commit_message)
    }

    pub fn apply_pending(&mut self) {
        self.group().apply_pending_commit().expect("apply");
    }

    pub fn discard_pending(&mut self) {
        self.group().clear_pending_commit();
    }

    /// The plaintext of another member's application message.
    pub fn read(&mut self, blob: &[u8]) -> Vec<u8> {
        let message = MlsMessage::from_bytes(blob).expect("message");
        match self.group().process_incoming_message(message).expect("decrypt") {
            ReceivedMessage::ApplicationMessage(message) => message.data().to_vec(),
            other => panic!("expected an application message, got {other:?}"),
        }
    }

    /// An update proposal at the current epoch.
    pub fn proposal(&mut self) -> Vec<u8> {
        encode(self.group().propose_update(Vec::new()).expect("propose"))
    }

    /// Joins with `welcome`.
    pub fn join(&mut self, welcome: &[u8]) {
        let welcome = MlsMessage::from_bytes(welcome).expect("welcome");
        let (group, _) = self.client.join_group(None, &welcome, None).expect("join");
        self.group = Some(group);
    }

    /// Processes another member's handshake.
    pub fn process(&mut self, blob: &[u8]) {
        let message = MlsMessage::from_bytes(blob).expect("message");
        self.group().process_incoming_message(message).expect("process");
    }

    /// An application message at the current epoch.
    pub fn application(&mut self, text: &[u8]) -> Vec<u8> {
        encode(self.group().encrypt_application_message(text, Vec::new()).expect("encrypt"))
    }
}
