//! Head queries (docs/protocol.md "Head query") against a real relay on loopback: the answer covers every
//! publish the relay stored before it, including the asking stream's own pipelined ones, and is authorised and
//! validated like the other frames.

mod common;

use common::mls_group::new_group;
use common::{
    ack_seq, as_publish, channel, config, error_code, head_query, is_error, meta, publish, seq, start, From, Stream,
};
use skytale_proto::meta::{self as keys, error_code as code};
use skytale_proto::pb::{self, message::MessageType};
use skytale_proto::ChannelName;

/// A head query that only counts what a subscription from `epoch` delivers.
fn head_query_from_epoch(channel: &ChannelName, query_id: &str, epoch: u64) -> pb::Message {
    let mut frame = head_query(channel, Some(query_id));
    frame.metadata.insert(keys::FROM_EPOCH.to_owned(), epoch.to_string());
    frame
}

/// The head a successful head reply carries, after checking it answers `query_id`.
fn head_of(frame: &pb::Message, query_id: &str) -> u64 {
    assert!(!is_error(frame), "head query refused: {frame:?}");
    assert_eq!(
        as_publish(frame).session.as_ref().map(|s| s.session_message_type),
        Some(pb::SessionMessageType::MsgAck as i32)
    );
    assert_eq!(meta(frame, keys::MSG_ID), Some(query_id));
    assert_eq!(meta(frame, keys::SEQ), None, "a head reply is not a publish ack");
    meta(frame, keys::HEAD_SEQ).expect("skytale-head-seq").parse().expect("decimal head")
}

#[tokio::test]
async fn a_head_query_answers_after_the_streams_earlier_publishes_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut sender = Stream::open(relay.local_addr()).await;

    // Pipelined without waiting: three publishes, then the query; its answer comes after their acks.
    for i in 0..3 {
        sender.send(publish(&ch, &format!("m{i}"), group.application(b"x"))).await;
    }
    sender.send(head_query(&ch, Some("q1"))).await;
    for expected_seq in 1..=3 {
        assert_eq!(ack_seq(&sender.recv().await), expected_seq);
    }
    assert_eq!(head_of(&sender.recv().await, "q1"), 3);

    // Another stream, not subscribed, sees the same head; an unknown channel's head is 0.
    let mut other = Stream::open(relay.local_addr()).await;
    other.send(head_query(&ch, Some("q2"))).await;
    assert_eq!(head_of(&other.recv().await, "q2"), 3);
    other.send(head_query(&channel("acme/team/empty"), Some("q3"))).await;
    assert_eq!(head_of(&other.recv().await, "q3"), 0);

    // The query stored nothing: the next publish still gets seq 4.
    sender.send(publish(&ch, "m3", group.application(b"y"))).await;
    assert_eq!(ack_seq(&sender.recv().await), 4);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_head_query_without_an_id_or_a_channel_is_refused_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut stream = Stream::open(relay.local_addr()).await;

    stream.send(head_query(&ch, None)).await;
    assert_eq!(error_code(&stream.recv().await), code::BAD_REQUEST);

    let mut no_channel = head_query(&ch, Some("q"));
    if let Some(MessageType::Publish(p)) = &mut no_channel.message_type {
        p.header = None;
    }
    stream.send(no_channel).await;
    let refused = stream.recv().await;
    assert_eq!(error_code(&refused), code::BAD_REQUEST);
    assert_eq!(meta(&refused, keys::MSG_ID), Some("q"));

    stream.send(head_query(&ch, Some("q4"))).await;
    assert_eq!(head_of(&stream.recv().await, "q4"), 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_head_query_from_an_epoch_counts_only_what_a_subscription_from_it_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut stream = Stream::open(relay.local_addr()).await;

    stream.publish_ok(&ch, "m1", group.application(b"x")).await;
    // The commit that creates epoch 1 is itself framed in epoch 0: a member joining at epoch 1 never gets it.
    stream.publish_ok(&ch, "c1", group.commit()).await;
    stream.send(head_query_from_epoch(&ch, "q1", 1)).await;
    assert_eq!(head_of(&stream.recv().await, "q1"), 0);

    stream.publish_ok(&ch, "m2", group.application(b"y")).await;
    stream.send(head_query_from_epoch(&ch, "q2", 1)).await;
    assert_eq!(head_of(&stream.recv().await, "q2"), 3);
    stream.send(head_query_from_epoch(&ch, "q3", 0)).await;
    assert_eq!(head_of(&stream.recv().await, "q3"), 3);

    let mut from_seq = head_query(&ch, Some("q4"));
    from_seq.metadata.insert(keys::FROM_SEQ.to_owned(), "1".to_owned());
    stream.send(from_seq).await;
    assert_eq!(error_code(&stream.recv().await), code::BAD_REQUEST);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_from_epoch_beyond_every_stored_epoch_answers_0_and_subscribes_to_nothing_yet() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut publisher = Stream::open(relay.local_addr()).await;
    publisher.publish_ok(&ch, "m1", group.application(b"x")).await;
    publisher.publish_ok(&ch, "m2", group.application(b"y")).await;
    let mut stream = Stream::open(relay.local_addr()).await;

    // 2^63 and up are no SQLite integers; the relay stores no epoch that large, so these mean "nothing yet".
    for (query_id, epoch) in [("q1", 1u64 << 63), ("q2", u64::MAX)] {
        stream.send(head_query_from_epoch(&ch, query_id, epoch)).await;
        assert_eq!(head_of(&stream.recv().await, query_id), 0, "from epoch {epoch}");
    }
    // 2^64 is not a u64 at all: refused, naming the key.
    let mut too_big = head_query(&ch, Some("q3"));
    too_big.metadata.insert(keys::FROM_EPOCH.to_owned(), "18446744073709551616".to_owned());
    stream.send(too_big).await;
    let refused = stream.recv().await;
    assert_eq!(error_code(&refused), code::BAD_REQUEST);
    assert!(meta(&refused, keys::ERROR).is_some_and(|e| e.contains(keys::FROM_EPOCH)), "{refused:?}");

    // A subscription from 2^63 is accepted and delivers nothing, neither what is stored nor what comes next.
    stream.subscribe_ok(&ch, 1, From::Epoch(1 << 63)).await;
    publisher.publish_ok(&ch, "m3", group.application(b"z")).await;
    // Replacing it: the next frame is the new subscription's ack (so the old one sent nothing), and the same
    // stream then delivers the whole log from seq 1 and answers queries.
    stream.subscribe_ok(&ch, 2, From::Seq(1)).await;
    let seqs: Vec<u64> = stream.deliveries(3).await.iter().map(seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    stream.send(head_query_from_epoch(&ch, "q4", 1 << 63)).await;
    assert_eq!(head_of(&stream.recv().await, "q4"), 0);
    stream.send(head_query(&ch, Some("q5"))).await;
    assert_eq!(head_of(&stream.recv().await, "q5"), 3);
    relay.shutdown().await;
}
