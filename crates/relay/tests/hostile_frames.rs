//! Frames a hostile or broken client sends, against a real relay on loopback: each costs that frame only (the
//! stream, its subscriptions and its publishes go on; `docs/protocol.md`, "Frames the relay cannot use").

mod common;

use common::mls_group::new_group;
use common::{ack_seq, channel, config, error_code, is_delivery, meta, publish, seq, start, From, Stream};
use skytale_proto::meta::{self as keys, error_code as code};

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
