//! The relay's MLS framing parser (`crates/relay/src/mls_framing.rs`) on arbitrary bytes: it must refuse or
//! read every input without panicking, and what it reads must come from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytale_relay::mls_framing::{parse_header, WireFormat};

fuzz_target!(|blob: &[u8]| {
    if let Ok(header) = parse_header(blob) {
        // version, wire format, group id (at least its size prefix), epoch and content type were all read.
        assert!(blob.len() >= 4 + 1 + header.group_id.len() + 8 + 1, "{header:?} from {} bytes", blob.len());
        assert!(blob.windows(header.group_id.len().max(1)).any(|w| header.group_id.is_empty() || w == header.group_id));
        if header.wire_format == WireFormat::Private {
            // A PrivateMessage is read to its end: one byte more is refused.
            let mut longer = blob.to_vec();
            longer.push(0);
            assert!(parse_header(&longer).is_err());
        }
    }
});
