//! Entry points for the fuzz targets in `fuzz/` (docs/security.md, "Fuzzing") and for the tests that replay
//! their seed corpus: the client's reading of one relay frame, without a network or a data_dir. Not a stable
//! API (hidden from the docs).
//!
//! [`relay_frame`] runs a frame through the same code the link reader does: decoding, [`frames::classify`], the
//! transport's dispatch to waiting requests and routed channels (`transport/requests.rs`, `routes.rs`), and for a
//! delivery the inbound worker's reading of the MLS message before it reaches the group.

use std::collections::HashMap;

use mls_rs::MlsMessage;
use prost::Message as _;
use skytale_proto::pb;
use skytale_proto::ChannelName;

use crate::frames::{self, Incoming};
use crate::inbound;
use crate::transport::{fuzzing as transport, ChannelEvent};

/// The channel routed (and subscribed twice) while a frame is read.
pub const CHANNEL: &str = "acme/team/general";

/// The MLS group the routed channel holds.
pub const GROUP_ID: &[u8] = b"skytale-fuzz-group";

/// What the client made of a relay frame.
#[derive(Debug)]
pub struct Read {
    /// How the frame was classified: `undecodable`, `link reply`, `subscription ack`, `publish ack`, `head reply`,
    /// `publish refused`, `delivery` or `ignored: <why>`.
    pub kind: String,
    /// The waiting requests the frame answered (`publish`, `head`, `refresh`, `subscription`), with the answer.
    pub answered: HashMap<&'static str, String>,
    /// A delivery, whichever channel it is for.
    pub delivery: Option<Delivered>,
    /// What the routed channel's inbound worker got: `None` if nothing was routed to it.
    pub routed: Option<String>,
}

/// A delivery as classified.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivered {
    pub channel: String,
    pub seq: u64,
    pub stored_at_ms: Option<u64>,
    pub blob: Vec<u8>,
}

/// Runs `frame` (the bytes of one gRPC message from the relay) through the client's reading of relay frames.
pub fn relay_frame(frame: &[u8]) -> Read {
    let Ok(message) = pb::Message::decode(frame) else {
        return Read { kind: "undecodable".into(), answered: HashMap::new(), delivery: None, routed: None };
    };
    let incoming = frames::classify(message);
    let (kind, delivery) = match &incoming {
        Incoming::LinkReply { .. } => ("link reply".to_owned(), None),
        Incoming::SubscriptionAck { .. } => ("subscription ack".to_owned(), None),
        Incoming::PublishAck { .. } => ("publish ack".to_owned(), None),
        Incoming::HeadReply { .. } => ("head reply".to_owned(), None),
        Incoming::PublishRefused { .. } => ("publish refused".to_owned(), None),
        Incoming::Delivery(d) => {
            let delivered = Delivered {
                channel: d.channel.to_string(),
                seq: d.seq,
                stored_at_ms: d.stored_at_ms,
                blob: d.blob.clone(),
            };
            ("delivery".to_owned(), Some(delivered))
        }
        Incoming::Ignored(why) => (format!("ignored: {why}"), None),
    };
    let channel = ChannelName::parse(CHANNEL).expect("a valid channel name");
    let (answered, event) = transport::dispatch(&channel, incoming);
    let routed = event.map(|event| match event {
        ChannelEvent::Delivery(delivery) => {
            assert_eq!(delivery.channel, channel, "only the routed channel's deliveries reach it");
            match inbound::read_message(&delivery, GROUP_ID) {
                Ok(message) => describe(&message),
                Err(reason) => format!("inbox failure: {reason}"),
            }
        }
        ChannelEvent::SubscriptionRefused(refusal) => format!("subscription refused: {}", refusal.code),
    });
    Read { kind, answered, delivery, routed }
}

/// What the inbound worker learns of a message before handing it to the group.
fn describe(message: &MlsMessage) -> String {
    format!("mls {:?} epoch {:?}", message.wire_format(), message.epoch())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// The committed seeds of the `client_delivery` target (the relay's answers to the `relay_frames` seeds, see
    /// `crates/relay/tests/fuzz_corpus.rs`) reach every kind of frame the client reads, and the deliveries of the
    /// routed channel's group reach its inbound worker as MLS messages.
    #[test]
    fn the_committed_corpus_reaches_every_kind_of_relay_frame() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/client_delivery");
        let mut kinds = BTreeSet::new();
        let mut answered = BTreeSet::new();
        let mut mls = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let read = relay_frame(&std::fs::read(&path).expect("seed"));
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            if name.starts_with("delivery-of-") {
                assert_eq!(read.kind, "delivery", "{name}");
                let routed = read.routed.as_deref().unwrap_or_default();
                assert!(routed.starts_with("mls "), "{name}: {routed}");
                mls += 1;
            }
            kinds.insert(read.kind.split(':').next().unwrap_or_default().to_owned());
            answered.extend(read.answered.into_keys());
        }
        let all =
            ["link reply", "subscription ack", "publish ack", "head reply", "publish refused", "delivery", "ignored"];
        assert_eq!(kinds, all.iter().map(|k| k.to_string()).collect());
        assert_eq!(answered, BTreeSet::from(["publish", "head", "refresh", "subscription"]));
        assert!(mls >= 6, "{mls} deliveries read as MLS");
    }
}
