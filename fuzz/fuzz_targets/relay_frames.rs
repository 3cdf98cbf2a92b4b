//! The relay's handling of one client frame (`skytale_relay::fuzzing::client_frame`): its gRPC codec, the
//! reading of the frame into a request (link negotiation and token refresh, subscribe, unsubscribe, head query,
//! publish with its session header and MLS framing), the stream's authorisation and the reply frames. The
//! replies and, for a stored publish, the delivery are then read by the client as it reads the relay's frames:
//! every one must decode, and a delivery must reach the client as the blob that was published.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let handled = skytale_relay::fuzzing::client_frame(frame);
    for reply in &handled.replies {
        let read = skytale_client::fuzzing::relay_frame(reply);
        assert_ne!(read.kind, "undecodable", "reply to {frame:?} ({})", handled.kind);
        assert!(read.delivery.is_none(), "a reply is no delivery: {read:?}");
    }
    if let Some(delivered) = &handled.delivery {
        assert_eq!(skytale_client::fuzzing::relay_frame(&handled.replies[0]).kind, "publish ack");
        let read = skytale_client::fuzzing::relay_frame(&delivered.frame);
        let got = read.delivery.unwrap_or_else(|| panic!("the delivery of {frame:?} was read as {}", read.kind));
        assert_eq!(got.channel, delivered.channel.as_str());
        assert_eq!(got.blob, delivered.blob);
    }
});
