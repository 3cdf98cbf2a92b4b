//! Frames a hostile or broken client sends, against a real relay on loopback: each costs that frame only (the
//! stream, its subscriptions and its publishes go on), and nothing a client sets can make a stored message
//! look like one of the relay's acks or errors to its subscribers (`docs/protocol.md`, "Publish" and "Frames
//! the relay cannot use").

mod common;

use common::mls_group::new_group;
use common::{
    ack_seq, as_publish, channel, config, epoch, error_code, is_delivery, is_error, meta, publish, seq, start, From,
    Stream,
};
use skytale_proto::meta::{self as keys, error_code as code};
use skytale_proto::pb::{self, message::MessageType};

/// `publish` with its `Publish` part changed by `edit`.
fn edited(mut frame: pb::Message, edit: impl FnOnce(&mut pb::Publish)) -> pb::Message {
    match &mut frame.message_type {
        Some(MessageType::Publish(publish)) => edit(publish),
        other => panic!("expected a publish, got {other:?}"),
    }
    frame
}

/// Asserts `frame` refuses the publish `msg_id` as a bad request whose message names `field`.
fn assert_refused_naming(frame: &pb::Message, msg_id: &str, field: &str) {
    assert_eq!(error_code(frame), code::BAD_REQUEST, "{frame:?}");
    assert_eq!(meta(frame, keys::MSG_ID), Some(msg_id), "{frame:?}");
    assert!(meta(frame, keys::ERROR).is_some_and(|e| e.contains(field)), "{frame:?}");
}

#[tokio::test]
async fn forged_ack_and_error_publishes_are_refused_and_subscribers_never_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut subscriber = Stream::open(relay.local_addr()).await;
    subscriber.subscribe_ok(&ch, 1, From::Live).await;
    let mut publisher = Stream::open(relay.local_addr()).await;

    let forged_ack = edited(publish(&ch, "ack", group.application(b"a")), |p| {
        p.session.as_mut().expect("session").session_message_type = pb::SessionMessageType::MsgAck.into();
    });
    let forged_error = edited(publish(&ch, "error", group.application(b"e")), |p| {
        p.header.as_mut().expect("header").error = Some(true);
    });
    let welcome = edited(publish(&ch, "welcome", group.application(b"w")), |p| {
        p.session.as_mut().expect("session").session_message_type = pb::SessionMessageType::GroupWelcome.into();
    });
    let no_session = edited(publish(&ch, "bare", group.application(b"b")), |p| p.session = None);
    for (frame, msg_id, field) in [
        (forged_ack, "ack", "session_message_type"),
        (forged_error, "error", "header.error"),
        (welcome, "welcome", "session_message_type"),
        (no_session, "bare", "session"),
    ] {
        publisher.send(frame).await;
        assert_refused_naming(&publisher.recv().await, msg_id, field);
    }

    // Delivery metadata set by the client is not stored: subscribers get the relay's seq, epoch and time.
    let mut forged_meta = publish(&ch, "real", group.application(b"r"));
    for (key, value) in [(keys::SEQ, "999"), (keys::EPOCH, "77"), (keys::STORED_AT, "1")] {
        forged_meta.metadata.insert(key.to_owned(), value.to_owned());
    }
    publisher.send(forged_meta).await;
    assert_eq!(ack_seq(&publisher.recv().await), 1, "nothing refused was stored");

    let delivered = subscriber.deliveries(1).await.remove(0);
    assert!(is_delivery(&delivered) && !is_error(&delivered), "{delivered:?}");
    assert_eq!(meta(&delivered, keys::MSG_ID), Some("real"));
    assert_eq!((seq(&delivered), epoch(&delivered)), (1, 0));
    assert_ne!(meta(&delivered, keys::STORED_AT), Some("1"));
    let session = as_publish(&delivered).session.as_ref().expect("session");
    assert_eq!(session.session_message_type, pb::SessionMessageType::Msg as i32);
    relay.shutdown().await;
}

#[tokio::test]
async fn an_undecodable_frame_is_refused_and_the_stream_keeps_delivering_and_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(config(dir.path())).await;
    let ch = channel("acme/team/general");
    let mut group = new_group(false);
    let mut stream = Stream::open(relay.local_addr()).await;
    stream.subscribe_ok(&ch, 1, From::Live).await;

    for bad in [
        // `Message.publish` (field 3) as a varint: the shape of a SLIM payload this proto reads another way.
        vec![0x18, 0x01],
        // `Message.publish` announcing 10 bytes and holding 2.
        vec![0x1a, 0x0a, 0x0a, 0x00],
        // Wire type 7 does not exist.
        vec![0x1f],
    ] {
        stream.send_raw(bad.clone()).await;
        let refused = stream.recv().await;
        assert_eq!(error_code(&refused), code::BAD_REQUEST, "{bad:?}: {refused:?}");
        assert!(meta(&refused, keys::ERROR).is_some_and(|e| e.starts_with("undecodable frame")), "{refused:?}");
    }

    // The subscription still delivers what another stream publishes...
    let mut other = Stream::open(relay.local_addr()).await;
    assert_eq!(other.publish_ok(&ch, "theirs", group.application(b"t")).await, 1);
    let delivered = stream.deliveries(1).await.remove(0);
    assert_eq!((seq(&delivered), meta(&delivered, keys::MSG_ID)), (1, Some("theirs")));

    // ...and the stream's own publish is acked and delivered back to it (in either order).
    stream.send(publish(&ch, "mine", group.application(b"m"))).await;
    let (first, second) = (stream.recv().await, stream.recv().await);
    let (ack, delivery) = if is_delivery(&first) { (second, first) } else { (first, second) };
    assert_eq!(ack_seq(&ack), 2);
    assert_eq!((seq(&delivery), meta(&delivery, keys::MSG_ID)), (2, Some("mine")));
    relay.shutdown().await;
}
