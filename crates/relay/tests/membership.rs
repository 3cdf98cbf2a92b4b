//! Only a channel's MLS members write and read it (docs/security.md, "Who can do what to a channel"), against a
//! real relay on loopback with JWT auth on. Every member is a real mls-rs group member whose streams prove its
//! signing key; the attacker ("mallory") is an account of the same org with a key of its own, which is exactly
//! what the org-wide authorisation used to let in.

mod common;
#[path = "common/minter.rs"]
mod minter;

use common::mls_member::{member, Member};
use common::{channel, error_code, meta, subscription_ack, From, Stream};
use minter::Minter;
use mls_rs::client_builder::MlsConfig;
use skytale_proto::meta as keys;
use skytale_proto::ChannelName;
use skytale_relay::RelayHandle;
use tempfile::TempDir;

/// A relay with auth on and the tokens for it.
struct Setup {
    minter: Minter,
    relay: RelayHandle,
    dir: TempDir,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let minter = Minter::new();
        let relay = minter.relay(&dir).await;
        Self { minter, relay, dir }
    }

    /// A stream of an `acme` account that proves `who`'s member key.
    async fn stream<C: MlsConfig>(&self, who: &Member<C>) -> Stream {
        let token = self.minter.token(&format!("acct_{}", who.name), "acme", &[]);
        Stream::open_as(self.relay.local_addr(), &token, &who.proof_headers(&token)).await.unwrap()
    }
}

/// Where the epoch starts in `blob`, a PublicMessage or PrivateMessage: after version, wire format and group id.
fn epoch_offset(blob: &[u8]) -> usize {
    let prefix_len = 1 << (blob[4] >> 6);
    let mut group_id_len = usize::from(blob[4] & 0x3F);
    for &b in &blob[5..4 + prefix_len] {
        group_id_len = (group_id_len << 8) | usize::from(b);
    }
    4 + prefix_len + group_id_len
}

/// `blob` with its clear-text epoch replaced: what anyone can forge from a message it received.
fn at_epoch(blob: &[u8], epoch: u64) -> Vec<u8> {
    let mut forged = blob.to_vec();
    let at = epoch_offset(blob);
    forged[at..at + 8].copy_from_slice(&epoch.to_be_bytes());
    forged
}

/// `blob` (a PrivateMessage) with its clear-text epoch and content type replaced.
fn forged_private(blob: &[u8], epoch: u64, content_type: u8) -> Vec<u8> {
    let mut forged = at_epoch(blob, epoch);
    forged[epoch_offset(blob) + 8] = content_type;
    forged
}

const COMMIT: u8 = 3;
const APPLICATION: u8 = 1;

/// Alice creates `name` and adds Bob; returns their streams (each subscribed from the start of its membership).
async fn alice_and_bob<C: MlsConfig>(
    setup: &Setup,
    name: &ChannelName,
    alice: &mut Member<C>,
    bob: &mut Member<C>,
) -> (Stream, Stream) {
    let mut alice_stream = setup.stream(alice).await;
    assert_eq!(alice_stream.publish_ok(name, "create", alice.create()).await, 1);
    let (commit, welcome) = alice.add(&bob.key_package());
    assert_eq!(alice_stream.publish_ok(name, "add-bob", commit).await, 2);
    bob.join(&welcome);
    let mut bob_stream = setup.stream(bob).await;
    bob_stream.subscribe_ok(name, 1, From::Epoch(1)).await;
    (alice_stream, bob_stream)
}

fn assert_refused(reply: &skytale_proto::pb::Message, code: &str, naming: &str) {
    assert_eq!(error_code(reply), code, "{reply:?}");
    let why = meta(reply, keys::ERROR).unwrap_or_default();
    assert!(why.contains(naming), "expected {naming:?} in {why:?}");
}

#[tokio::test]
async fn a_non_member_can_neither_move_the_epoch_nor_write_nor_read_and_members_carry_on() {
    let setup = Setup::new().await;
    let name = channel("acme/team/ops");
    let (mut alice, mut bob, mallory) = (member("alice"), member("bob"), member("mallory"));
    let (mut alice_stream, mut bob_stream) = alice_and_bob(&setup, &name, &mut alice, &mut bob).await;
    let mut mallory_stream = setup.stream(&mallory).await;

    // The attack: a framing-valid PrivateMessage "commit" at the current epoch, forged from a delivery.
    let seen = alice.application(b"hello");
    let fake_commit = forged_private(&seen, 1, COMMIT);
    let reply = mallory_stream.publish(&name, "fake-commit", fake_commit).await;
    assert_refused(&reply, "bad_message", "must be PublicMessages");
    // A member's real commit, replayed from a non-member's stream.
    let real_commit = alice.unapplied_commit();
    let reply = mallory_stream.publish(&name, "replayed", real_commit).await;
    assert_refused(&reply, "unauthorized", "not this stream's member key");
    // An application message forged from a delivery.
    let reply = mallory_stream.publish(&name, "fake-app", forged_private(&seen, 1, APPLICATION)).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/ops");
    // Reading: subscriptions and head queries.
    let ack = mallory_stream.subscribe(&name, 9, From::Seq(1)).await;
    assert!(!subscription_ack(&ack).success);
    assert!(subscription_ack(&ack).error.contains("not a member of acme/team/ops"), "{ack:?}");
    mallory_stream.send(common::head_query(&name, Some("q"))).await;
    assert_refused(&mallory_stream.recv().await, "unauthorized", "not a member");

    // The channel is still at epoch 1 and the members go on: messages, then a commit of Bob's.
    assert_eq!(alice_stream.publish_ok(&name, "a1", seen).await, 3);
    let mut bob_writer = setup.stream(&bob).await;
    assert_eq!(bob_writer.publish_ok(&name, "b1", bob.application(b"hi")).await, 4);
    let bob_commit = bob.commit();
    assert_eq!(bob_writer.publish_ok(&name, "b2", bob_commit.clone()).await, 5);
    alice.process(&bob_commit);
    assert_eq!(alice_stream.publish_ok(&name, "a2", alice.application(b"epoch 2")).await, 6);
    let delivered = bob_stream.deliveries(4).await;
    assert_eq!(delivered.iter().map(common::seq).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
    assert_eq!(common::epoch(&delivered[3]), 2);
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn a_name_is_created_only_by_a_groupinfo_of_its_first_member_in_the_accounts_org() {
    let setup = Setup::new().await;
    let name = channel("acme/team/new");
    let (mut alice, mut mallory) = (member("alice"), member("mallory"));
    let mut mallory_stream = setup.stream(&mallory).await;
    let mut alice_stream = setup.stream(&alice).await;
    let alice_info = alice.create();

    // Squatting with an application message (the attack) binds nothing.
    let mallory_info = mallory.create();
    let squat = forged_private(&mallory.application(b"mine"), 0, APPLICATION);
    let reply = mallory_stream.publish(&name, "squat", squat).await;
    assert_refused(&reply, "bad_message", "is created by its first member's GroupInfo");
    // Nor with someone else's GroupInfo.
    let reply = mallory_stream.publish(&name, "stolen", alice_info.clone()).await;
    assert_refused(&reply, "unauthorized", "not signed by this stream's member key");
    // Nor in another org.
    let reply = mallory_stream.publish(&channel("globex/team/new"), "other-org", mallory_info).await;
    assert_refused(&reply, "unauthorized", "in its own org");

    assert_eq!(alice_stream.publish_ok(&name, "create", alice_info).await, 1);
    // Once created, a name stays with its group: another GroupInfo is refused with its own code.
    let reply = mallory_stream.publish(&name, "again", mallory.group_info()).await;
    assert_refused(&reply, "channel_exists", "already exists");
    // The creator's retry of its own creation is acknowledged with the original seq.
    assert_eq!(alice_stream.publish_ok(&name, "create", alice.group_info()).await, 1);
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn a_removed_member_gets_the_commit_that_removed_it_and_then_nothing_and_cannot_write() {
    let setup = Setup::new().await;
    let name = channel("acme/team/rm");
    let (mut alice, mut bob) = (member("alice"), member("bob"));
    let (mut alice_stream, mut bob_stream) = alice_and_bob(&setup, &name, &mut alice, &mut bob).await;
    assert_eq!(alice_stream.publish_ok(&name, "a1", alice.application(b"before")).await, 3);
    let removal = alice.remove("bob");
    assert_eq!(alice_stream.publish_ok(&name, "remove-bob", removal).await, 4);
    assert_eq!(alice_stream.publish_ok(&name, "a2", alice.application(b"after")).await, 5);

    // Bob's subscription delivers through the commit that removed him, then ends.
    let delivered = bob_stream.deliveries(2).await;
    assert_eq!(delivered.iter().map(common::seq).collect::<Vec<_>>(), vec![3, 4]);
    let ended = bob_stream.recv().await;
    assert!(!subscription_ack(&ended).success, "{ended:?}");
    assert!(subscription_ack(&ended).error.contains("removed from acme/team/rm at epoch 2"), "{ended:?}");

    // Bob can still forge framing for the current epoch, but not write it.
    let forged = forged_private(&bob.application(b"still here"), 2, APPLICATION);
    assert_refused(&bob_stream.publish(&name, "b-after", forged).await, "unauthorized", "not a member");
    // His own commit moved to the current epoch: his leaf is no longer a member's.
    let reply = bob_stream.publish(&name, "b-commit", at_epoch(&bob.commit(), 2)).await;
    assert_refused(&reply, "unauthorized", "not this stream's member key");
    // A new subscription replays what he was a member for, then ends the same way.
    bob_stream.subscribe_ok(&name, 2, From::Seq(1)).await;
    let replayed = bob_stream.deliveries(2).await;
    assert_eq!(replayed.iter().map(common::seq).collect::<Vec<_>>(), vec![3, 4]);
    assert!(!subscription_ack(&bob_stream.recv().await).success);
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn a_subscription_from_before_a_channel_existed_ends_when_its_creator_is_someone_else() {
    let setup = Setup::new().await;
    let name = channel("acme/team/early");
    let (mut alice, mallory) = (member("alice"), member("mallory"));
    let mut mallory_stream = setup.stream(&mallory).await;
    mallory_stream.subscribe_ok(&name, 1, From::Seq(1)).await;
    // The creator may subscribe before creating, as its client does.
    let mut alice_reader = setup.stream(&alice).await;
    alice_reader.subscribe_ok(&name, 1, From::Seq(1)).await;
    let mut alice_stream = setup.stream(&alice).await;
    assert_eq!(alice_stream.publish_ok(&name, "create", alice.create()).await, 1);
    assert_eq!(common::seq(&alice_reader.deliveries(1).await[0]), 1);
    let ended = mallory_stream.recv().await;
    assert!(!subscription_ack(&ended).success, "{ended:?}");
    assert!(subscription_ack(&ended).error.contains("not a member of acme/team/early"), "{ended:?}");
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn a_member_proof_must_be_a_signature_over_the_streams_token() {
    let setup = Setup::new().await;
    let alice = member("alice");
    let token = setup.minter.token("acct_alice", "acme", &[]);
    let other_token = setup.minter.token("acct_other", "acme", &[]);
    let addr = setup.relay.local_addr();
    let refused = |result: Result<Stream, tonic::Status>| match result {
        Ok(_) => panic!("the relay accepted a bad member proof"),
        Err(status) => status,
    };

    let status = refused(Stream::open_as(addr, &token, &alice.proof_headers(&other_token)).await);
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("not a signature by skytale-member-key"), "{status:?}");
    let key_only = &alice.proof_headers(&token)[..1];
    let status = refused(Stream::open_as(addr, &token, key_only).await);
    assert!(status.message().contains("go together"), "{status:?}");
    let mut garbled = alice.proof_headers(&token);
    garbled[1].1 = "zz".to_owned();
    let status = refused(Stream::open_as(addr, &token, &garbled).await);
    assert!(status.message().contains("must be hex"), "{status:?}");
    // A stream without a proof is accepted but may write no channel.
    let mut anonymous = Stream::open_with(addr, Some(&token)).await.unwrap();
    let mut group = member("nobody");
    let reply = anonymous.publish(&channel("acme/team/x"), "m", group.create()).await;
    assert_refused(&reply, "unauthorized", "proved no MLS member key");
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn the_relay_follows_groups_across_a_restart() {
    let setup = Setup::new().await;
    let name = channel("acme/team/durable");
    let (mut alice, mut bob, mallory) = (member("alice"), member("bob"), member("mallory"));
    let (mut alice_stream, bob_stream) = alice_and_bob(&setup, &name, &mut alice, &mut bob).await;
    assert_eq!(alice_stream.publish_ok(&name, "a1", alice.application(b"one")).await, 3);
    drop((alice_stream, bob_stream));
    let Setup { minter, relay, dir } = setup;
    relay.shutdown().await;

    let relay = minter.relay(&dir).await;
    let setup = Setup { minter, relay, dir };
    let mut mallory_stream = setup.stream(&mallory).await;
    let reply = mallory_stream.publish(&name, "replayed", alice.unapplied_commit()).await;
    assert_refused(&reply, "unauthorized", "not this stream's member key");
    let mut bob_stream = setup.stream(&bob).await;
    let commit = bob.commit();
    assert_eq!(bob_stream.publish_ok(&name, "b1", commit.clone()).await, 4);
    alice.process(&commit);
    let mut alice_stream = setup.stream(&alice).await;
    assert_eq!(alice_stream.publish_ok(&name, "a2", alice.application(b"two")).await, 5);
    setup.relay.shutdown().await;
}

#[tokio::test]
async fn channel_creation_is_capped_per_account_and_per_org_and_counts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let minter = Minter::new();
    let quota = |config: &mut skytale_relay::RelayConfig| {
        config.channel_quota = skytale_relay::ChannelQuota { per_account: 2, per_org: 3 };
    };
    let relay = minter.relay_with(&dir, quota).await;
    let setup = Setup { minter, relay, dir };
    let mut alice = member("alice");
    let mut alice_stream = setup.stream(&alice).await;
    for n in 1..=2 {
        assert_eq!(alice_stream.publish_ok(&channel(&format!("acme/team/a{n}")), "c", alice.create()).await, 1);
    }
    let reply = alice_stream.publish(&channel("acme/team/a3"), "c", alice.create()).await;
    assert_refused(&reply, "quota_exceeded", "account acct_alice has created 2 channels");

    let Setup { minter, relay, dir } = setup;
    relay.shutdown().await;
    let relay = minter.relay_with(&dir, quota).await;
    let setup = Setup { minter, relay, dir };
    let (mut bob, mut carol) = (member("bob"), member("carol"));
    let mut bob_stream = setup.stream(&bob).await;
    assert_eq!(bob_stream.publish_ok(&channel("acme/team/b1"), "c", bob.create()).await, 1);
    let mut carol_stream = setup.stream(&carol).await;
    let reply = carol_stream.publish(&channel("acme/team/c1"), "c", carol.create()).await;
    assert_refused(&reply, "quota_exceeded", "org acme has created 3 channels");
    // Writing to the channels that exist is not creating: it goes on.
    assert_eq!(bob_stream.publish_ok(&channel("acme/team/b1"), "m", bob.application(b"still fine")).await, 2);
    setup.relay.shutdown().await;
}
