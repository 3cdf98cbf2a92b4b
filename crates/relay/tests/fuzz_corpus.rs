//! The seed corpus of the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`; docs/security.md, "Fuzzing"): real
//! MLS messages from an mls-rs group (PublicMessage, PrivateMessage, Welcome, KeyPackage) and the real SLIM frames
//! of docs/protocol.md that carry them, each with what the relay must make of it. The client's seeds are the
//! relay's answers to its own: acks, refusals, head replies and deliveries.
//!
//! `SKYTALE_FUZZ_SEEDS=DIR cargo test -p skytale-relay --test fuzz_corpus` also writes a fresh set to
//! `DIR/<target>/<name>`: scripts/fuzz.sh does so before every run, and the committed corpus (`fuzz/corpus/`) was
//! written the same way. The MLS messages differ on every run (fresh keys), their kinds do not.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::mls_group::new_group_with_id;
use common::{channel, From};
use prost::Message as _;
use skytale_proto::pb;
use skytale_relay::fuzzing::{client_frame, ACCOUNT, MAX_PAYLOAD};
use skytale_relay::mls_framing::parse_header;

/// The channel the seeds publish to and subscribe: the one `skytale_client::fuzzing` routes.
const CHANNEL: &str = "acme/team/general";
/// The group those publishes belong to: the one `skytale_client::fuzzing` holds.
const GROUP_ID: &[u8] = b"skytale-fuzz-group";

/// The three corpora, by fuzz target: each seed's name with what it must become.
struct Corpus {
    /// MLS messages, with what the framing parser reads of them.
    mls_framing: BTreeMap<String, (Vec<u8>, String)>,
    /// Client frames, with the kind of request the relay reads (`skytale_relay::fuzzing::Handled::kind`).
    relay_frames: BTreeMap<String, (Vec<u8>, String)>,
    /// Relay frames (the relay's answers to `relay_frames`), checked by the client's own test.
    client_delivery: BTreeMap<String, Vec<u8>>,
}

fn framing(blob: &[u8]) -> String {
    match parse_header(blob) {
        Ok(header) => format!("{:?} {:?} epoch {}", header.wire_format, header.content_type, header.epoch),
        Err(error) => format!("refused: {error:?}"),
    }
}

/// A token for the fuzzed relay's key set (`skytale_relay::fuzzing::JWKS`), valid until 2100.
fn token(account: &str) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let der = key.to_pkcs8_der().expect("pkcs8");
    let claims = skytale_auth::Claims {
        iss: skytale_auth::ISSUER.to_owned(),
        aud: skytale_auth::AUDIENCE.to_owned(),
        sub: account.to_owned(),
        org: "acme".to_owned(),
        channels: vec![],
        iat: 1_700_000_000,
        exp: 4_102_444_800,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("fuzz".to_owned());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).expect("token")
}

/// `publish` with its `Publish` part changed by `edit`.
fn edited(mut frame: pb::Message, edit: impl FnOnce(&mut pb::Publish)) -> pb::Message {
    if let Some(pb::message::MessageType::Publish(publish)) = &mut frame.message_type {
        edit(publish);
    }
    frame
}

fn corpus() -> Corpus {
    let ch = channel(CHANNEL);
    // Control messages in the clear (PublicMessage), then encrypted (PrivateMessage); application messages are
    // always PrivateMessages.
    let mut public = new_group_with_id(false, GROUP_ID);
    let public_proposal = public.proposal();
    let public_commit = public.commit();
    let added = public.add_member();
    let application = public.application(b"hello, channel");
    let mut private = new_group_with_id(true, GROUP_ID);
    let private_proposal = private.proposal();
    let private_commit = private.commit();
    let messages = [
        ("public-proposal", public_proposal),
        ("public-commit", public_commit),
        ("public-commit-adding-a-member", added.commit),
        ("private-application", application),
        ("private-proposal", private_proposal),
        ("private-commit", private_commit),
        ("welcome", added.welcome),
        ("key-package", added.key_package),
    ];

    let mut frames = vec![
        ("link-negotiation", common::link_negotiation("l-1")),
        ("token-refresh", common::token_refresh("l-1", &token(ACCOUNT))),
        ("token-refresh-for-another-account", common::token_refresh("l-1", &token("acct_other"))),
        ("subscribe-live", common::subscribe(&ch, 1, From::Live)),
        ("subscribe-from-seq", common::subscribe(&ch, 2, From::Seq(5))),
        ("subscribe-from-epoch", common::subscribe(&ch, 3, From::Epoch(1))),
        ("subscribe-another-org", common::subscribe(&channel("other/team/general"), 4, From::Live)),
        ("unsubscribe", common::unsubscribe(&ch, 1)),
        ("head-query", common::head_query(&ch, Some("q-1"))),
    ];
    let mut from_epoch = common::head_query(&ch, Some("q-2"));
    from_epoch.metadata.insert(skytale_proto::meta::FROM_EPOCH.to_owned(), "2".to_owned());
    frames.push(("head-query-from-epoch", from_epoch));
    let mut frames: Vec<(String, pb::Message)> =
        frames.into_iter().map(|(name, frame)| (name.to_owned(), frame)).collect();
    for (name, blob) in &messages {
        // The client's fuzzing transport waits for the ack of publish `m-1`.
        let msg_id = if *name == "private-application" { "m-1".to_owned() } else { format!("m-{name}") };
        frames.push((format!("publish-{name}"), common::publish(&ch, &msg_id, blob.clone())));
    }
    let app = &messages[3].1;
    let forged_ack = edited(common::publish(&ch, "m-ack", app.clone()), |p| {
        p.session.as_mut().expect("session").session_message_type = pb::SessionMessageType::MsgAck.into();
    });
    let forged_error = edited(common::publish(&ch, "m-error", app.clone()), |p| {
        p.header.as_mut().expect("header").error = Some(true);
    });
    frames.push(("publish-forged-ack".to_owned(), forged_ack));
    frames.push(("publish-forged-error".to_owned(), forged_error));
    frames.push(("publish-oversize".to_owned(), common::publish(&ch, "m-big", vec![0; MAX_PAYLOAD + 1])));

    let mut corpus =
        Corpus { mls_framing: BTreeMap::new(), relay_frames: BTreeMap::new(), client_delivery: BTreeMap::new() };
    for (name, blob) in messages {
        corpus.mls_framing.insert(name.to_owned(), (blob.clone(), framing(&blob)));
    }
    let mut encoded: Vec<(String, Vec<u8>)> =
        frames.into_iter().map(|(name, frame)| (name, frame.encode_to_vec())).collect();
    // A publish cut short: an undecodable frame.
    let cut = encoded.iter().find(|(name, _)| name == "publish-private-application").expect("seed").1.clone();
    encoded.push(("undecodable".to_owned(), cut[..cut.len() / 2].to_vec()));
    for (name, bytes) in encoded {
        let handled = client_frame(&bytes);
        for (i, reply) in handled.replies.iter().enumerate() {
            corpus.client_delivery.insert(format!("reply-{i}-to-{name}"), reply.to_vec());
        }
        if let Some(delivered) = &handled.delivery {
            corpus.client_delivery.insert(format!("delivery-of-{name}"), delivered.frame.to_vec());
        }
        corpus.relay_frames.insert(name, (bytes, handled.kind));
    }
    corpus
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

#[test]
fn fresh_seeds_are_handled_as_expected() {
    let corpus = corpus();
    let expected_framing = [
        ("public-proposal", "Public Proposal epoch 0"),
        ("public-commit", "Public Commit epoch 0"),
        ("public-commit-adding-a-member", "Public Commit epoch 1"),
        ("private-application", "Private Application epoch 2"),
        ("private-proposal", "Private Proposal epoch 0"),
        ("private-commit", "Private Commit epoch 0"),
        ("welcome", "refused: UnsupportedWireFormat(3)"),
        ("key-package", "refused: UnsupportedWireFormat(5)"),
    ];
    let framing: Vec<(&str, &str)> = corpus.mls_framing.iter().map(|(n, (_, f))| (n.as_str(), f.as_str())).collect();
    let mut expected: Vec<(&str, &str)> = expected_framing.to_vec();
    expected.sort();
    assert_eq!(framing, expected);

    let kinds: BTreeMap<&str, &str> = corpus.relay_frames.iter().map(|(n, (_, k))| (n.as_str(), k.as_str())).collect();
    let expected = BTreeMap::from([
        ("link-negotiation", "link"),
        ("token-refresh", "refresh"),
        ("token-refresh-for-another-account", "refresh refused unauthorized"),
        ("subscribe-live", "subscribe"),
        ("subscribe-from-seq", "subscribe"),
        ("subscribe-from-epoch", "subscribe"),
        ("subscribe-another-org", "subscribe refused unauthorized"),
        ("unsubscribe", "unsubscribe"),
        ("head-query", "head"),
        ("head-query-from-epoch", "head"),
        ("publish-public-proposal", "append"),
        ("publish-public-commit", "append"),
        ("publish-public-commit-adding-a-member", "append"),
        ("publish-private-application", "append"),
        ("publish-private-proposal", "append"),
        ("publish-private-commit", "append"),
        ("publish-welcome", "append refused bad_message"),
        ("publish-key-package", "append refused bad_message"),
        ("publish-forged-ack", "append refused bad_request"),
        ("publish-forged-error", "append refused bad_request"),
        ("publish-oversize", "append refused payload_too_large"),
        ("undecodable", "append refused bad_request"),
    ]);
    assert_eq!(kinds, expected);
    assert_eq!(corpus.client_delivery.keys().filter(|n| n.starts_with("delivery-of-")).count(), 6);

    if let Some(dir) = std::env::var_os("SKYTALE_FUZZ_SEEDS") {
        let dir = PathBuf::from(dir);
        for (name, (bytes, _)) in &corpus.mls_framing {
            write(&dir, "mls_framing", name, bytes);
        }
        for (name, (bytes, _)) in &corpus.relay_frames {
            write(&dir, "relay_frames", name, bytes);
        }
        for (name, bytes) in &corpus.client_delivery {
            write(&dir, "client_delivery", name, bytes);
        }
    }
}

/// Every committed seed is still what its name says (the relay's frames are checked by the client's test), and
/// every seed the generator makes is committed. Other files (reproducers of fixed crashes) must not crash.
#[test]
fn the_committed_corpus_is_handled_as_its_names_say() {
    let fresh = corpus();
    for target in ["mls_framing", "relay_frames", "client_delivery"] {
        let dir = corpus_dir().join(target);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).expect("seed");
            match target {
                "mls_framing" => {
                    let got = framing(&bytes);
                    if let Some((_, expected)) = fresh.mls_framing.get(&name) {
                        // The epoch of a fresh group's messages is the same every time.
                        assert_eq!(&got, expected, "{}", path.display());
                    }
                }
                "relay_frames" => {
                    let got = client_frame(&bytes).kind;
                    if let Some((_, expected)) = fresh.relay_frames.get(&name) {
                        assert_eq!(&got, expected, "{}", path.display());
                    }
                }
                _ => {}
            }
            names.push(name);
        }
        let expected: Vec<&String> = match target {
            "mls_framing" => fresh.mls_framing.keys().collect(),
            "relay_frames" => fresh.relay_frames.keys().collect(),
            _ => fresh.client_delivery.keys().collect(),
        };
        for name in expected {
            assert!(names.contains(name), "{target}/{name} is not committed: regenerate fuzz/corpus (scripts/fuzz.sh)");
        }
    }
}
