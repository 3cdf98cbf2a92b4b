//! Publish, acknowledgement and delivery against a real relay on loopback: ordering, idempotency, one commit per
//! epoch, refusals, routing of several channels, unsubscribe.

mod common;

use common::mls_group::new_group;
use common::{
    ack_seq, blob, channel, config, destination, epoch, error_code, is_delivery, meta, publish, seq, start,
    subscription_ack, unsubscribe, From, Stream,
};
use skytale_proto::meta::{self as keys, error_code as code};
use skytale_proto::pb::{self, message::MessageType};

#[tokio::test]
async fn publishes_are_acked_and_delivered_in_order_to_every_subscriber_including_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut alice = Stream::open(relay.local_addr()).await;
    let mut bob = Stream::open(relay.local_addr()).await;
    let mut sender = Stream::open(relay.local_addr()).await;
    alice.subscribe_ok(&ch, 1, From::Live).await;
    bob.subscribe_ok(&ch, 7, From::Live).await;
    sender.subscribe_ok(&ch, 1, From::Live).await;

    // Pipelined: epoch 0 traffic, the commit that opens epoch 1, then epoch 1 traffic.
    let blobs = vec![group.application(b"one"), group.application(b"two"), group.commit(), group.application(b"three")];
    for (i, b) in blobs.iter().enumerate() {
        sender.send(publish(&ch, &format!("m{i}"), b.clone())).await;
    }

    // The sender gets an ack per message, in publish order, interleaved with its own deliveries.
    let (mut acks, mut own) = (Vec::new(), Vec::new());
    while acks.len() < blobs.len() || own.len() < blobs.len() {
        let frame = sender.recv().await;
        if is_delivery(&frame) {
            own.push(frame);
        } else {
            acks.push((meta(&frame, keys::MSG_ID).unwrap().to_owned(), ack_seq(&frame)));
        }
    }
    let expected_acks: Vec<_> = (0..blobs.len()).map(|i| (format!("m{i}"), i as u64 + 1)).collect();
    assert_eq!(acks, expected_acks);

    for deliveries in [alice.deliveries(4).await, bob.deliveries(4).await, own] {
        let seqs: Vec<u64> = deliveries.iter().map(seq).collect();
        let epochs: Vec<u64> = deliveries.iter().map(epoch).collect();
        let ids: Vec<&str> = deliveries.iter().map(|d| meta(d, keys::MSG_ID).unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(epochs, [0, 0, 0, 1]);
        assert_eq!(ids, ["m0", "m1", "m2", "m3"]);
        for (delivery, sent) in deliveries.iter().zip(&blobs) {
            assert_eq!(blob(delivery), sent.as_slice());
            assert_eq!(destination(delivery), ch);
        }
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn link_negotiation_announces_the_payload_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_payload = 12345;
    let relay = start(cfg).await;
    let mut stream = Stream::open(relay.local_addr()).await;
    stream.send(common::link_negotiation("link-1")).await;
    let reply = stream.recv().await;
    let Some(MessageType::Link(pb::Link { link_type: Some(pb::link::LinkType::LinkNegotiation(n)) })) =
        &reply.message_type
    else {
        panic!("expected a link reply, got {reply:?}");
    };
    assert_eq!(n.link_id, "link-1");
    assert!(n.is_reply);
    assert_eq!(meta(&reply, keys::MAX_PAYLOAD), Some("12345"));
    relay.shutdown().await;
}

#[tokio::test]
async fn a_retried_publish_is_acked_with_its_original_seq_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/retry");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;
    let first = group.application(b"first");
    assert_eq!(publisher.publish_ok(&ch, "a", first.clone()).await, 1);
    assert_eq!(publisher.publish_ok(&ch, "b", group.application(b"second")).await, 2);
    assert_eq!(publisher.publish_ok(&ch, "a", first).await, 1, "retry keeps the original seq");

    let mut reader = Stream::open(relay.local_addr()).await;
    reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    assert_eq!(publisher.publish_ok(&ch, "c", group.application(b"third")).await, 3);
    let ids: Vec<String> =
        reader.deliveries(3).await.iter().map(|d| meta(d, keys::MSG_ID).unwrap().to_owned()).collect();
    assert_eq!(ids, ["a", "b", "c"], "the retried message was not stored twice");
    relay.shutdown().await;
}

#[tokio::test]
async fn the_first_commit_of_an_epoch_wins_and_later_ones_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/epochs");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;

    let old_application = group.application(b"epoch 0");
    assert_eq!(publisher.publish_ok(&ch, "app0", old_application.clone()).await, 1);
    let losing_commit = group.unapplied_commit();
    let winning_commit = group.commit();
    assert_eq!(publisher.publish_ok(&ch, "win", winning_commit).await, 2);

    let refused = publisher.publish(&ch, "lose", losing_commit).await;
    assert_eq!(error_code(&refused), code::STALE_EPOCH);
    assert_eq!(meta(&refused, keys::MSG_ID), Some("lose"));
    let reason = meta(&refused, keys::ERROR).unwrap();
    assert!(reason.contains("epoch 0") && reason.contains("epoch 1"), "{reason}");

    // The epoch-0 application message again, under a new id: epoch 0 is over, so it is stale too.
    let refused = publisher.publish(&ch, "late", old_application).await;
    assert_eq!(error_code(&refused), code::STALE_EPOCH);

    assert_eq!(publisher.publish_ok(&ch, "app1", group.application(b"epoch 1")).await, 3);
    let mut reader = Stream::open(relay.local_addr()).await;
    let ack = reader.subscribe_ok(&ch, 1, From::Seq(1)).await;
    assert_eq!(meta(&ack, keys::CHANNEL_EPOCH), Some("1"));
    let ids: Vec<String> =
        reader.deliveries(3).await.iter().map(|d| meta(d, keys::MSG_ID).unwrap().to_owned()).collect();
    assert_eq!(ids, ["app0", "win", "app1"], "refused messages are not in the log");
    relay.shutdown().await;
}

#[tokio::test]
async fn proposals_and_private_commits_follow_the_same_epoch_rule() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/private");
    let mut group = new_group(true);
    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_ok(&ch, "p", group.proposal()).await, 1);
    let losing = group.unapplied_commit();
    assert_eq!(publisher.publish_ok(&ch, "c", group.commit()).await, 2);
    assert_eq!(error_code(&publisher.publish(&ch, "l", losing).await), code::STALE_EPOCH);
    assert_eq!(publisher.publish_ok(&ch, "a", group.application(b"x")).await, 3);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_channel_is_bound_to_the_group_of_its_first_message() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/bound");
    let (mut ours, mut theirs) = (new_group(false), new_group(false));
    let mut publisher = Stream::open(relay.local_addr()).await;
    assert_eq!(publisher.publish_ok(&ch, "1", ours.application(b"ours")).await, 1);
    let refused = publisher.publish(&ch, "2", theirs.application(b"theirs")).await;
    assert_eq!(error_code(&refused), code::BAD_MESSAGE);
    relay.shutdown().await;
}

#[tokio::test]
async fn garbage_and_malformed_frames_get_error_frames_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/garbage");
    let mut group = new_group(false);
    let mut stream = Stream::open(relay.local_addr()).await;

    let refused = stream.publish(&ch, "g", b"definitely not MLS".to_vec()).await;
    assert_eq!(error_code(&refused), code::BAD_MESSAGE);
    assert_eq!(meta(&refused, keys::MSG_ID), Some("g"));

    let mut welcome_like = group.application(b"x");
    welcome_like[3] = 3; // wire format 3 = Welcome: not channel traffic
    assert_eq!(error_code(&stream.publish(&ch, "w", welcome_like).await), code::BAD_MESSAGE);

    let mut no_id = publish(&ch, "x", group.application(b"x"));
    no_id.metadata.clear();
    stream.send(no_id).await;
    assert_eq!(error_code(&stream.recv().await), code::BAD_REQUEST);

    let mut forged = publish(&ch, "f", group.application(b"x"));
    if let Some(MessageType::Publish(p)) = &mut forged.message_type {
        let name = p.header.as_mut().unwrap().destination.as_mut().unwrap();
        name.name.as_mut().unwrap().component_1 ^= 1;
    }
    stream.send(forged).await;
    assert_eq!(error_code(&stream.recv().await), code::BAD_REQUEST);

    stream.send(pb::Message { message_type: None, metadata: Default::default() }).await;
    assert_eq!(error_code(&stream.recv().await), code::BAD_REQUEST);

    let mut both = common::subscribe(&ch, 9, From::Seq(1));
    both.metadata.insert(keys::FROM_EPOCH.to_owned(), "0".to_owned());
    stream.send(both).await;
    let ack = stream.recv().await;
    assert!(!subscription_ack(&ack).success);
    assert_eq!(meta(&ack, keys::ERROR_CODE), Some(code::BAD_REQUEST));

    assert_eq!(stream.publish_ok(&ch, "ok", group.application(b"fine")).await, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn an_oversize_payload_is_refused_naming_size_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_payload = 4096;
    let relay = start(cfg).await;
    let ch = channel("acme/team/big");
    let mut group = new_group(false);
    let mut stream = Stream::open(relay.local_addr()).await;

    let refused = stream.publish(&ch, "big", vec![0u8; 4097]).await;
    assert_eq!(error_code(&refused), code::PAYLOAD_TOO_LARGE);
    let reason = meta(&refused, keys::ERROR).unwrap();
    assert!(reason.contains("4097") && reason.contains("4096"), "{reason}");
    assert_eq!(stream.publish_ok(&ch, "small", group.application(b"fits")).await, 1);

    // Far beyond the limit, gRPC itself refuses the frame and ends the stream with a clear status.
    stream.send(publish(&ch, "huge", vec![0u8; 1 << 20])).await;
    let status = stream.try_recv().await.expect_err("the stream fails");
    assert!(status.message().contains("too large"), "{status}");
    relay.shutdown().await;
}

#[tokio::test]
async fn several_channels_on_one_stream_are_routed_to_their_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let (red, blue) = (channel("acme/colors/red"), channel("acme/colors/blue"));
    let (mut red_group, mut blue_group) = (new_group(false), new_group(false));
    let mut reader = Stream::open(relay.local_addr()).await;
    reader.subscribe_ok(&red, 1, From::Live).await;
    reader.subscribe_ok(&blue, 2, From::Live).await;

    let mut publisher = Stream::open(relay.local_addr()).await;
    let mut sent = Vec::new();
    for i in 0..10 {
        let (ch, group_blob) = if i % 3 == 0 {
            (&blue, blue_group.application(format!("blue {i}").as_bytes()))
        } else {
            (&red, red_group.application(format!("red {i}").as_bytes()))
        };
        publisher.publish_ok(ch, &format!("m{i}"), group_blob.clone()).await;
        sent.push((ch.clone(), group_blob));
    }

    let deliveries = reader.deliveries(sent.len()).await;
    for ch in [&red, &blue] {
        let got: Vec<(u64, &[u8])> =
            deliveries.iter().filter(|d| destination(d) == *ch).map(|d| (seq(d), blob(d))).collect();
        let want: Vec<(u64, &[u8])> =
            sent.iter().filter(|(c, _)| c == ch).enumerate().map(|(i, (_, b))| (i as u64 + 1, b.as_slice())).collect();
        assert_eq!(got, want, "channel {ch}");
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_on_that_channel_only() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let (left, right) = (channel("acme/sides/left"), channel("acme/sides/right"));
    let (mut left_group, mut right_group) = (new_group(false), new_group(false));
    let mut reader = Stream::open(relay.local_addr()).await;
    reader.subscribe_ok(&left, 1, From::Live).await;
    reader.subscribe_ok(&right, 2, From::Live).await;

    let mut publisher = Stream::open(relay.local_addr()).await;
    publisher.publish_ok(&left, "l1", left_group.application(b"l1")).await;
    assert_eq!(seq(&reader.deliveries(1).await[0]), 1);

    reader.send(unsubscribe(&left, 1)).await;
    assert!(subscription_ack(&reader.recv().await).success);
    publisher.publish_ok(&left, "l2", left_group.application(b"l2")).await;
    // Live again on `left`: only what is published from now on, so l2 must never show up.
    reader.subscribe_ok(&left, 3, From::Live).await;
    publisher.publish_ok(&right, "r1", right_group.application(b"r1")).await;
    publisher.publish_ok(&left, "l3", left_group.application(b"l3")).await;

    let got: Vec<String> =
        reader.deliveries(2).await.iter().map(|d| meta(d, keys::MSG_ID).unwrap().to_owned()).collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, ["l3", "r1"], "got {got:?}");
    relay.shutdown().await;
}
