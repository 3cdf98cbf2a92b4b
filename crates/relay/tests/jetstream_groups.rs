//! With auth on, relays over one JetStream log follow each channel's MLS group from the log itself
//! (docs/relay.md, "The JetStream log"): against a real 3-node nats-server cluster, a member admitted through one
//! relay writes through another and a non-member is refused on both; a removal stored through one relay is known to
//! the other at once; a relay that finds the channel's group record behind (its writer died before updating it)
//! replays the handshakes after it from the log, and retention removes old handshakes only once the record has
//! caught up; the channel quota counts creations through every relay.

mod common;
#[path = "common/minter.rs"]
mod minter;
#[path = "common/nats.rs"]
#[allow(dead_code)] // the cluster's node controls are for the JetStream tests
mod nats;

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use common::mls_member::{member, Member};
use common::{error_code, meta, subscription_ack, From, Stream};
use minter::Minter;
use mls_rs::client_builder::MlsConfig;
use nats::NatsCluster;
use skytale_proto::meta as keys;
use skytale_proto::ChannelName;
use skytale_relay::{ChannelQuota, LogStore, LogStreamConfig, NatsServers, RelayConfig, RelayHandle};
use tempfile::TempDir;

/// Relays with auth on over one R3 log stream, trusting one minter's tokens.
struct Cluster {
    nats: NatsCluster,
    minter: Minter,
    stream: &'static str,
    dirs: Vec<TempDir>,
}

impl Cluster {
    async fn start(stream: &'static str) -> Self {
        Self { nats: NatsCluster::start(3).await, minter: Minter::new(), stream, dirs: Vec::new() }
    }

    async fn relay(&mut self) -> RelayHandle {
        self.relay_with(|_| {}).await
    }

    async fn relay_with(&mut self, configure: impl FnOnce(&mut RelayConfig)) -> RelayHandle {
        let dir = tempfile::tempdir().unwrap();
        let (servers, stream) = (self.nats.urls().join(","), self.stream);
        let relay = self
            .minter
            .relay_with(&dir, |config| {
                config.store = LogStore::JetStream {
                    servers: NatsServers::parse(&servers).expect("the cluster's URLs"),
                    stream: LogStreamConfig { stream: stream.to_owned(), replicas: 3, ..LogStreamConfig::default() },
                };
                configure(config);
            })
            .await;
        self.dirs.push(dir);
        relay
    }

    /// A stream of an `acme` account (named after the member, or `account`) on `relay` proving `who`'s key.
    async fn stream<C: MlsConfig>(&self, relay: &RelayHandle, who: &Member<C>) -> Stream {
        self.stream_as(relay, who, &format!("acct_{}", who.name)).await
    }

    async fn stream_as<C: MlsConfig>(&self, relay: &RelayHandle, who: &Member<C>, account: &str) -> Stream {
        let token = self.minter.token(account, "acme", &[]);
        Stream::open_as(relay.local_addr(), &token, &who.proof_headers(&token)).await.unwrap()
    }

    /// The channels' group bucket of the log stream.
    async fn bucket(&self) -> jetstream::kv::Store {
        let client = async_nats::connect(self.nats.urls()[0].as_str()).await.expect("connect to NATS");
        jetstream::new(client).get_key_value(format!("{}_groups", self.stream)).await.expect("the group bucket")
    }
}

/// Alice creates `name` through `relay` and adds Bob; returns her stream.
async fn alice_adds_bob<C: MlsConfig>(
    cluster: &Cluster,
    relay: &RelayHandle,
    name: &ChannelName,
    alice: &mut Member<C>,
    bob: &mut Member<C>,
) -> Stream {
    let mut alice_stream = cluster.stream(relay, alice).await;
    assert_eq!(alice_stream.publish_ok(name, "create", alice.create()).await, 1);
    let (add_bob, welcome) = alice.add(&bob.key_package());
    assert_eq!(alice_stream.publish_ok(name, "add-bob", add_bob).await, 2);
    bob.join(&welcome);
    alice_stream
}

fn record_key(name: &ChannelName) -> String {
    format!("group.{}", hex::encode(name.as_str()))
}

fn assert_refused(reply: &skytale_proto::pb::Message, code: &str, naming: &str) {
    assert_eq!(error_code(reply), code, "{reply:?}");
    let why = meta(reply, keys::ERROR).unwrap_or_default();
    assert!(why.contains(naming), "expected {naming:?} in {why:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_admitted_through_one_relay_writes_through_another_and_a_removal_is_known_on_both() {
    let mut cluster = Cluster::start("GROUPS").await;
    let (a, b) = (cluster.relay().await, cluster.relay().await);
    let name = common::channel("acme/team/ops");
    let (mut alice, mut bob, mallory) = (member("alice"), member("bob"), member("mallory"));
    let mut alice_on_a = alice_adds_bob(&cluster, &a, &name, &mut alice, &mut bob).await;

    // Relay B never saw the channel: it knows Bob from the log, and Mallory for no member.
    let mut bob_on_b = cluster.stream(&b, &bob).await;
    bob_on_b.subscribe_ok(&name, 1, From::Epoch(1)).await;
    let mut bob_writer_on_b = cluster.stream(&b, &bob).await;
    assert_eq!(bob_writer_on_b.publish_ok(&name, "b1", bob.application(b"hi from b")).await, 3);
    let mut mallory_on_b = cluster.stream(&b, &mallory).await;
    let reply = mallory_on_b.publish(&name, "m1", bob.application(b"replayed by mallory")).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/ops");
    let ack = mallory_on_b.subscribe(&name, 9, From::Seq(1)).await;
    assert!(subscription_ack(&ack).error.contains("not a member of acme/team/ops"), "{ack:?}");
    let mut mallory_on_a = cluster.stream(&a, &mallory).await;
    let reply = mallory_on_a.publish(&name, "m2", bob.application(b"replayed again")).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/ops");

    // Alice removes Bob through B. A, whose view of the channel is from before, catches up with the new epoch
    // (and group) to store Alice's next message, and ends a subscription of Bob's after the removal.
    let mut alice_on_b = cluster.stream(&b, &alice).await;
    let remove_bob = alice.remove("bob");
    assert_eq!(alice_on_b.publish_ok(&name, "remove-bob", remove_bob).await, 4);
    assert_eq!(alice_on_a.publish_ok(&name, "a1", alice.application(b"bob is gone")).await, 5);
    let mut bob_on_a = cluster.stream(&a, &bob).await;
    bob_on_a.subscribe_ok(&name, 1, From::Seq(1)).await;
    for bob_stream in [&mut bob_on_b, &mut bob_on_a] {
        // His message and the commit that removed him (stored in his last epoch), then the end.
        let delivered = bob_stream.deliveries(2).await;
        assert_eq!(delivered.iter().map(common::seq).collect::<Vec<_>>(), [3, 4]);
        let end = bob_stream.recv().await;
        assert!(format!("{end:?}").contains("removed from acme/team/ops at epoch 2"), "{end:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Rounds of competing commits (the 100).
const RACE_ROUNDS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_two_relays_committing_at_once_get_one_winner_a_round_and_go_on_reading_each_other() {
    let mut cluster = Cluster::start("RACE").await;
    let (a, b) = (cluster.relay().await, cluster.relay().await);
    let name = common::channel("acme/team/race");
    let (mut alice, mut bob) = (member("alice"), member("bob"));
    let mut alice_on_a = alice_adds_bob(&cluster, &a, &name, &mut alice, &mut bob).await;
    let mut bob_on_b = cluster.stream(&b, &bob).await;
    let (mut alice_reader, mut bob_reader) = (cluster.stream(&a, &alice).await, cluster.stream(&b, &bob).await);
    alice_reader.subscribe_ok(&name, 1, From::Seq(3)).await;
    bob_reader.subscribe_ok(&name, 1, From::Seq(3)).await;

    let mut wins = [0; 2];
    for round in 0..RACE_ROUNDS {
        let (from_alice, from_bob) = (alice.pending_commit(), bob.pending_commit());
        let (to_alice, to_bob) = futures::future::join(
            alice_on_a.publish(&name, &format!("alice-commit-{round}"), from_alice.clone()),
            bob_on_b.publish(&name, &format!("bob-commit-{round}"), from_bob.clone()),
        )
        .await;
        let won = [&to_alice, &to_bob].map(|reply| !common::is_error(reply));
        assert_eq!(won.iter().filter(|&&won| won).count(), 1, "round {round}: {to_alice:?} {to_bob:?}");
        let loser = if won[0] { &to_bob } else { &to_alice };
        assert_eq!(error_code(loser), "stale_epoch", "round {round}: {loser:?}");
        let winner = if won[0] {
            alice.apply_pending();
            bob.discard_pending();
            bob.process(&from_alice);
            from_alice
        } else {
            bob.apply_pending();
            alice.discard_pending();
            alice.process(&from_bob);
            from_bob
        };
        wins[usize::from(!won[0])] += 1;
        assert_eq!((alice.epoch(), bob.epoch()), (round as u64 + 2, round as u64 + 2), "round {round}");

        let hello = format!("alice, round {round}");
        alice_on_a.publish_ok(&name, &format!("alice-{round}"), alice.application(hello.as_bytes())).await;
        let reply = format!("bob, round {round}");
        bob_on_b.publish_ok(&name, &format!("bob-{round}"), bob.application(reply.as_bytes())).await;
        // Both readers, each on its member's relay, get the winning commit, and each member reads the other's message.
        let (for_alice, for_bob) = (alice_reader.deliveries(3).await, bob_reader.deliveries(3).await);
        for delivered in [&for_alice, &for_bob] {
            assert_eq!(common::blob(&delivered[0]), winner.as_slice(), "round {round}");
        }
        assert_eq!(alice.read(common::blob(&for_alice[2])), reply.as_bytes(), "round {round}");
        assert_eq!(bob.read(common::blob(&for_bob[1])), hello.as_bytes(), "round {round}");
    }
    eprintln!("{RACE_ROUNDS} rounds: Alice's commit won {}, Bob's {}", wins[0], wins[1]);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_record_left_behind_is_caught_up_from_the_log_and_retention_waits_for_it() {
    let mut cluster = Cluster::start("BEHIND").await;
    let a = cluster.relay().await;
    let name = common::channel("acme/team/behind");
    let (mut alice, mut bob, mut carol, mallory) = (member("alice"), member("bob"), member("carol"), member("mallory"));
    let bucket = cluster.bucket().await;

    let mut alice_on_a = cluster.stream(&a, &alice).await;
    assert_eq!(alice_on_a.publish_ok(&name, "create", alice.create()).await, 1);
    let record_at_creation: Bytes = bucket.get(record_key(&name)).await.unwrap().expect("a record once created");
    let (add_bob, welcome) = alice.add(&bob.key_package());
    assert_eq!(alice_on_a.publish_ok(&name, "add-bob", add_bob).await, 2);
    bob.join(&welcome);
    let (add_carol, welcome) = alice.add(&carol.key_package());
    assert_eq!(alice_on_a.publish_ok(&name, "add-carol", add_carol.clone()).await, 3);
    carol.join(&welcome);
    bob.process(&add_carol);
    a.shutdown().await;

    // As if A had died right after storing each of the two adds: the record still says Alice alone.
    bucket.put(record_key(&name), record_at_creation.clone()).await.unwrap();
    let b = cluster.relay().await;
    let mut carol_on_b = cluster.stream(&b, &carol).await;
    assert_eq!(carol_on_b.publish_ok(&name, "c1", carol.application(b"hi")).await, 4);
    let mut mallory_on_b = cluster.stream(&b, &mallory).await;
    let reply = mallory_on_b.publish(&name, "m1", carol.application(b"replayed")).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/behind");
    b.shutdown().await;

    // No record at all: the handshakes from the channel's creation on.
    bucket.purge(record_key(&name)).await.unwrap();
    let b = cluster.relay().await;
    assert_eq!(cluster.stream(&b, &carol).await.publish_ok(&name, "c2", carol.application(b"again")).await, 5);
    let reply = cluster.stream(&b, &mallory).await.publish(&name, "m2", carol.application(b"replayed")).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/behind");
    b.shutdown().await;

    // Retention with the record behind: the sweep at start first catches the record up, then removes all but
    // the newest message, handshakes included.
    bucket.put(record_key(&name), record_at_creation).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = cluster.relay_with(|config| config.retention = Duration::from_secs(1)).await;
    c.shutdown().await;
    let d = cluster.relay().await;
    let mut bob_on_d = cluster.stream(&d, &bob).await;
    assert_eq!(bob_on_d.publish_ok(&name, "b1", bob.application(b"after retention")).await, 6);
    let reply = cluster.stream(&d, &mallory).await.publish(&name, "m3", bob.application(b"again")).await;
    assert_refused(&reply, "unauthorized", "not a member of acme/team/behind");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_quota_counts_creations_through_every_relay() {
    let mut cluster = Cluster::start("QUOTA").await;
    let quota = |config: &mut RelayConfig| config.channel_quota = ChannelQuota { per_account: 1, per_org: 3 };
    let (a, b) = (cluster.relay_with(quota).await, cluster.relay_with(quota).await);
    let (mut alice, mut bob) = (member("alice"), member("bob"));

    let mut on_a = cluster.stream_as(&a, &alice, "acct_one").await;
    assert_eq!(on_a.publish_ok(&common::channel("acme/q/first"), "c1", alice.create()).await, 1);
    let mut on_b = cluster.stream_as(&b, &bob, "acct_one").await;
    let reply = on_b.publish(&common::channel("acme/q/second"), "c2", bob.create()).await;
    assert_refused(&reply, "quota_exceeded", "account acct_one has created 1 channels");
    // Refused creations give their count back: another account of the org still has room.
    let mut other_on_b = cluster.stream_as(&b, &bob, "acct_two").await;
    assert_eq!(other_on_b.publish_ok(&common::channel("acme/q/second"), "c3", bob.group_info()).await, 1);
    a.shutdown().await;
    b.shutdown().await;
}
