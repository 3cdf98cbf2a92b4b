//! The client's reading of one relay frame (`skytale_client::fuzzing::relay_frame`): decoding, classification
//! (link reply, subscription ack, publish ack, head reply, refusal, delivery), the transport's dispatch to the
//! requests waiting for an answer and to the routed channel, and the inbound worker's decoding of a delivered
//! MLS message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let read = skytale_client::fuzzing::relay_frame(frame);
    if read.routed.is_some() {
        assert!(read.delivery.is_some() || read.kind == "subscription ack", "{read:?}");
    }
});
