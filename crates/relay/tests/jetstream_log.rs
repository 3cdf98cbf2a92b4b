//! Several relays over one JetStream log (`LogStore::JetStream`) are one Delivery Service: against a real 3-node
//! nats-server cluster with an R3 log stream, two relays give one order per channel to subscribers on either, one
//! commit per epoch when both receive competing commits at once, one stored copy of a msg-id resent through the
//! other relay, resumption from a seq or an epoch on either, and a head that retention never resets.

mod common;
#[path = "common/minter.rs"]
mod minter;
#[path = "common/nats.rs"]
#[allow(dead_code)] // the cluster's node controls are for the JetStream tests
mod nats;

use std::time::{Duration, Instant};

use common::mls_group::new_group;
use common::{ack_seq, blob, channel, config, epoch, error_code, head, is_error, meta, seq, start, From, Stream};
use futures::future::join;
use nats::NatsCluster;
use skytale_proto::meta::{self as keys, error_code as code};
use skytale_relay::{LogStore, LogStreamConfig, NatsServers, RelayAuth, RelayConfig, RelayHandle};

/// A relay with auth off on the log stream `stream`, with a replica on every server of `nats`.
fn on_cluster(nats: &NatsCluster, stream: &str, dir: &tempfile::TempDir) -> RelayConfig {
    let mut config = config(dir.path());
    config.store = LogStore::JetStream {
        servers: NatsServers::parse(&nats.urls().join(",")).expect("the cluster's URLs"),
        stream: LogStreamConfig {
            stream: stream.to_owned(),
            replicas: nats.urls().len(),
            ..LogStreamConfig::default()
        },
    };
    config
}

async fn two_relays(nats: &NatsCluster, stream: &str) -> (RelayHandle, RelayHandle, [tempfile::TempDir; 2]) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = start(on_cluster(nats, stream, &dirs[0])).await;
    let b = start(on_cluster(nats, stream, &dirs[1])).await;
    (a, b, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_either_relay_get_one_order_whichever_relay_stored_each_message() {
    let nats = NatsCluster::start(3).await;
    let (a, b, _dirs) = two_relays(&nats, "ORDER").await;
    let ch = channel("acme/cluster/order");
    let mut group = new_group(false);
    let mut on_a = Stream::open(a.local_addr()).await;
    let mut on_b = Stream::open(b.local_addr()).await;
    on_a.subscribe_ok(&ch, 1, From::Live).await;
    on_b.subscribe_ok(&ch, 1, From::Live).await;

    // Alternating relays, across a commit: each message is stored by one relay and delivered by both.
    let blobs = vec![
        group.application(b"one"),
        group.application(b"two"),
        group.commit(),
        group.application(b"three"),
        group.application(b"four"),
    ];
    let mut publishers = [Stream::open(a.local_addr()).await, Stream::open(b.local_addr()).await];
    for (i, sent) in blobs.iter().enumerate() {
        let seq = publishers[i % 2].publish_ok(&ch, &format!("m{i}"), sent.clone()).await;
        assert_eq!(seq, i as u64 + 1);
    }
    for deliveries in [on_a.deliveries(blobs.len()).await, on_b.deliveries(blobs.len()).await] {
        assert_eq!(deliveries.iter().map(seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(deliveries.iter().map(epoch).collect::<Vec<_>>(), [0, 0, 0, 1, 1]);
        for (delivery, sent) in deliveries.iter().zip(&blobs) {
            assert_eq!(blob(delivery), sent.as_slice());
        }
    }
    assert_eq!((head(a.local_addr(), &ch).await, head(b.local_addr(), &ch).await), (5, 5));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_commits_through_two_relays_at_once_store_exactly_one_and_the_other_is_stale() {
    let nats = NatsCluster::start(3).await;
    let (a, b, _dirs) = two_relays(&nats, "COMMITS").await;
    let mut on_a = Stream::open(a.local_addr()).await;
    let mut on_b = Stream::open(b.local_addr()).await;
    for round in 0..20 {
        let ch = channel(&format!("acme/cluster/race-{round}"));
        let mut group = new_group(false);
        on_a.publish_ok(&ch, "bind", group.application(b"bind")).await;
        let (first, second) = (group.unapplied_commit(), group.unapplied_commit());
        let (from_a, from_b) = join(on_a.publish(&ch, "commit-a", first), on_b.publish(&ch, "commit-b", second)).await;
        let mut outcomes = [from_a, from_b].map(|reply| match is_error(&reply) {
            false => Ok(ack_seq(&reply)),
            true => Err(error_code(&reply).to_owned()),
        });
        outcomes.sort();
        assert_eq!(outcomes, [Ok(2), Err(code::STALE_EPOCH.to_owned())], "round {round}");
        assert_eq!(head(b.local_addr(), &ch).await, 2, "round {round}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_msg_id_resent_through_the_other_relay_is_stored_once_with_its_first_seq() {
    let nats = NatsCluster::start(3).await;
    let (a, b, _dirs) = two_relays(&nats, "RETRY").await;
    let ch = channel("acme/cluster/retry");
    let mut group = new_group(false);
    let (hello, next) = (group.application(b"hello"), group.application(b"next"));
    let mut on_a = Stream::open(a.local_addr()).await;
    let mut on_b = Stream::open(b.local_addr()).await;
    assert_eq!(on_a.publish_ok(&ch, "hello", hello.clone()).await, 1);
    // As a client does after losing its link to relay A before the ack: the same frame, through relay B.
    assert_eq!(on_b.publish_ok(&ch, "hello", hello).await, 1);
    assert_eq!(on_b.publish_ok(&ch, "next", next).await, 2);
    // Also once the channel moved to the next epoch, when the message would now be refused as stale.
    let commit = group.commit();
    assert_eq!(on_a.publish_ok(&ch, "commit", commit.clone()).await, 3);
    assert_eq!(on_b.publish_ok(&ch, "commit", commit).await, 3);

    let mut reader = Stream::open(b.local_addr()).await;
    reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    let ids: Vec<String> =
        reader.deliveries(3).await.iter().map(|d| meta(d, keys::MSG_ID).unwrap().to_owned()).collect();
    assert_eq!(ids, ["hello", "next", "commit"]);
    assert_eq!(head(a.local_addr(), &ch).await, 3);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_relay_resumes_from_a_seq_or_an_epoch_and_a_new_relay_continues_the_log() {
    let nats = NatsCluster::start(3).await;
    let (a, b, _dirs) = two_relays(&nats, "RESUME").await;
    let ch = channel("acme/cluster/resume");
    let mut group = new_group(false);
    let mut writer = Stream::open(a.local_addr()).await;
    // Enough that a read from an old seq bisects the subject rather than hitting a cache: another channel's
    // messages interleave in the stream.
    let other = channel("acme/cluster/other");
    let mut other_group = new_group(false);
    for i in 0..40u64 {
        let blob = if i == 20 { group.commit() } else { group.application(format!("m{i}").as_bytes()) };
        assert_eq!(writer.publish_ok(&ch, &format!("m{i}"), blob).await, i + 1);
        writer.publish_ok(&other, &format!("o{i}"), other_group.application(b"noise")).await;
    }
    a.shutdown().await;

    let mut from_seq = Stream::open(b.local_addr()).await;
    from_seq.subscribe_ok(&ch, 1, From::Seq(7)).await;
    assert_eq!(from_seq.deliveries(34).await.iter().map(seq).collect::<Vec<_>>(), (7..=40).collect::<Vec<_>>());
    let mut from_epoch = Stream::open(b.local_addr()).await;
    from_epoch.subscribe_ok(&ch, 1, From::Epoch(1)).await;
    // The commit (seq 21) is the last message of epoch 0; epoch 1 starts at seq 22.
    assert_eq!(from_epoch.deliveries(19).await.iter().map(seq).collect::<Vec<_>>(), (22..=40).collect::<Vec<_>>());

    let dir = tempfile::tempdir().unwrap();
    let c = start(on_cluster(&nats, "RESUME", &dir)).await;
    let mut late = Stream::open(c.local_addr()).await;
    assert_eq!(late.publish_ok(&ch, "m40", group.application(b"after")).await, 41);
    assert_eq!(from_seq.deliveries(1).await.iter().map(seq).collect::<Vec<_>>(), [41]);
    b.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_messages_but_keeps_the_head_so_seqs_go_on() {
    let nats = NatsCluster::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = on_cluster(&nats, "RETENTION", &dir);
    config.retention = Duration::from_secs(1);
    let relay = start(config).await;
    let ch = channel("acme/cluster/retention");
    let mut group = new_group(false);
    let mut writer = Stream::open(relay.local_addr()).await;
    for i in 0..3u64 {
        writer.publish_ok(&ch, &format!("m{i}"), group.application(b"old")).await;
    }
    // Sweeps run every second; the two older messages go, the newest stays.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut reader = Stream::open(relay.local_addr()).await;
        let reply = reader.subscribe(&ch, 1, From::Seq(1)).await;
        if meta(&reply, keys::ERROR_CODE) == Some(code::RETENTION_EXPIRED) {
            break;
        }
        assert!(Instant::now() < deadline, "messages 1 and 2 were never removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reader = Stream::open(relay.local_addr()).await;
    reader.subscribe_ok(&ch, 1, From::Seq(3)).await;
    assert_eq!(reader.deliveries(1).await.iter().map(seq).collect::<Vec<_>>(), [3]);
    assert_eq!(writer.publish_ok(&ch, "m3", group.application(b"new")).await, 4);
    relay.shutdown().await;
}

/// `count` application messages of `group` with msg-ids `prefix-N`.
fn messages<C: mls_rs::client_builder::MlsConfig>(
    group: &mut common::mls_group::MlsGroup<C>,
    prefix: &str,
    count: usize,
) -> Vec<(String, Vec<u8>)> {
    (0..count).map(|i| (format!("{prefix}-{i}"), group.application(format!("{prefix} {i}").as_bytes()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_publishes_through_both_relays_at_once_are_stored_once_each_in_one_gap_free_order() {
    let nats = NatsCluster::start(3).await;
    let (a, b, _dirs) = two_relays(&nats, "PIPELINE").await;
    let ch = channel("acme/cluster/pipeline");
    let mut group = new_group(false);
    let mut on_a = Stream::open(a.local_addr()).await;
    assert_eq!(on_a.publish_ok(&ch, "bind", group.application(b"bind")).await, 1);
    let mut readers = [Stream::open(a.local_addr()).await, Stream::open(b.local_addr()).await];
    for reader in &mut readers {
        reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    }

    // Each relay's queue fills faster than JetStream answers, so appends go in batches, racing the other relay's.
    let from_a = messages(&mut group, "a", 150);
    let from_b = messages(&mut group, "b", 150);
    let mut on_b = Stream::open(b.local_addr()).await;
    let (seqs_a, seqs_b) = join(on_a.publish_all(&ch, from_a.clone()), on_b.publish_all(&ch, from_b.clone())).await;
    // Then a commit in the middle of A's queue, which ends a batch: the messages after it are of the next epoch.
    let mut next = vec![("commit".to_owned(), group.commit())];
    next.extend(messages(&mut group, "a-next", 150));
    let seqs_next = on_a.publish_all(&ch, next.clone()).await;
    for seqs in [&seqs_a, &seqs_b, &seqs_next] {
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "a publisher's messages keep its order: {seqs:?}");
    }
    let mut all: Vec<u64> = seqs_a.iter().chain(&seqs_b).chain(&seqs_next).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (2..=452).collect::<Vec<u64>>(), "every message stored once, gap-free after the first");

    // Resent through the other relay (a client after a failover), they are answered with their first seqs.
    assert_eq!(on_b.publish_all(&ch, from_a.clone()).await, seqs_a);
    assert_eq!(on_a.publish_all(&ch, from_b.clone()).await, seqs_b);

    let sent: std::collections::HashMap<String, Vec<u8>> = from_a.into_iter().chain(from_b).chain(next).collect();
    for reader in &mut readers {
        let delivered = reader.deliveries(452).await;
        assert_eq!(delivered.iter().map(seq).collect::<Vec<_>>(), (1..=452).collect::<Vec<u64>>());
        for delivery in &delivered[1..] {
            let msg_id = meta(delivery, keys::MSG_ID).expect("msg-id");
            assert_eq!(blob(delivery), sent[msg_id].as_slice(), "the bytes published as {msg_id}");
            let expected_epoch = u64::from(msg_id.starts_with("a-next"));
            assert_eq!(epoch(delivery), expected_epoch, "{msg_id}");
        }
    }
    assert_eq!(head(b.local_addr(), &ch).await, 452);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn with_auth_on_a_stream_name_that_cannot_name_its_group_bucket_is_refused_at_start_saying_why() {
    let nats = NatsCluster::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = on_cluster(&nats, "LOG+1", &dir);
    config.auth = RelayAuth::jwt(minter::Minter::new().issuer.verifier().unwrap());
    let error = skytale_relay::Relay::start(config).await.err().expect("refused").to_string();
    assert!(error.contains("\"LOG+1_groups\"") && error.contains("only letters, digits, _ and -"), "{error}");
}
