//! How large an application message is once MLS has encrypted it, so that `send` refuses a payload the relay
//! would not take before anything is encrypted or sent, and says how much would fit.
//!
//! The relay's limit (`skytale-max-payload`, docs/protocol.md "Stream open") is on `app_payload.blob`: the whole
//! MLSMessage, not the plaintext. With this client's configuration (`mls.rs`: ciphersuite
//! MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, mls-rs's default padding, no authenticated data) an application
//! payload of N bytes becomes (RFC 9420 §6.3):
//!
//! ```text
//! MLSMessage      version (2) + wire_format (2) + PrivateMessage
//! PrivateMessage  group_id<V> + epoch (8) + content_type (1) + authenticated_data<V> (empty: 1)
//!                 + encrypted_sender_data<V> (leaf index, generation, reuse guard: 12, + AEAD tag 16)
//!                 + ciphertext<V> (the padded content + AEAD tag 16)
//! content         application_data<V> (N) + signature<V> (Ed25519: 64)
//! ```
//!
//! where `<V>` adds a 1, 2 or 4 byte length (RFC 9420 §2.1.2). The padding hides all but the 3 most significant
//! bits of the content's length, so it costs up to a quarter of the payload: with the default 1 MiB limit the
//! largest payload is 917 433 bytes. The unit tests hold this model to what mls-rs actually produces.

use std::fmt;

/// Ed25519 signature.
const SIGNATURE: usize = 64;
/// AES-128-GCM tag.
const AEAD_TAG: usize = 16;
/// SenderData: leaf index (u32), generation (u32), reuse guard (4 bytes).
const SENDER_DATA: usize = 12;
/// MLSMessage version and wire format, PrivateMessage epoch and content type, the empty authenticated data.
const FIXED: usize = 2 + 2 + 8 + 1 + 1;
/// MLS vectors carry at most 2^30 - 1 bytes: nothing longer can be encrypted at all.
const MAX_VECTOR: usize = (1 << 30) - 1;

/// Length of the length prefix of an MLS vector of `len` bytes.
fn prefix(len: usize) -> usize {
    match len {
        0..=63 => 1,
        64..=16_383 => 2,
        _ => 4,
    }
}

/// mls-rs `PaddingMode::StepFunction` (its default, which `mls.rs` keeps): the content is zero-padded to the next
/// multiple of an eighth of the power of two above it (at least 32 bytes).
fn padded(content: usize) -> usize {
    let blind = (content + 1).next_power_of_two().max(256) >> 3;
    (content | (blind - 1)) + 1
}

/// The encoded size of the MLS message carrying an application payload of `payload` bytes in a group whose id has
/// `group_id` bytes.
pub(crate) fn application_message(payload: usize, group_id: usize) -> usize {
    let content = prefix(payload) + payload + prefix(SIGNATURE) + SIGNATURE;
    let ciphertext = padded(content) + AEAD_TAG;
    let sender_data = SENDER_DATA + AEAD_TAG;
    FIXED + prefix(group_id) + group_id + prefix(sender_data) + sender_data + prefix(ciphertext) + ciphertext
}

/// The largest application payload whose message fits in `limit` bytes; `None`: not even an empty one does.
pub(crate) fn max_application_payload(limit: usize, group_id: usize) -> Option<usize> {
    if application_message(0, group_id) > limit {
        return None;
    }
    // The message grows with the payload, so bisect: `fits` always fits, `too_large` never does.
    let (mut fits, mut too_large) = (0, limit.min(MAX_VECTOR) + 1);
    while too_large - fits > 1 {
        let middle = fits + (too_large - fits) / 2;
        if application_message(middle, group_id) <= limit {
            fits = middle;
        } else {
            too_large = middle;
        }
    }
    Some(fits)
}

/// Why a payload does not fit under the relay's limit once encrypted; its `Display` completes "payload of N bytes
/// ..." with both sizes and what to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Oversize {
    encrypted: usize,
    limit: usize,
    group_id: usize,
}

/// `Some` if a payload of `payload` bytes would be an MLS message larger than `limit`.
pub(crate) fn oversize(payload: usize, limit: usize, group_id: usize) -> Option<Oversize> {
    let encrypted = application_message(payload, group_id);
    (encrypted > limit || payload > MAX_VECTOR).then_some(Oversize { encrypted, limit, group_id })
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { encrypted, limit, group_id } = *self;
        write!(f, "exceeds the relay limit of {limit} bytes once encrypted (an MLS message of {encrypted} bytes); ")?;
        f.write_str(&advice(limit, group_id))
    }
}

/// What to send instead, under `limit`.
pub(crate) fn advice(limit: usize, group_id: usize) -> String {
    match max_application_payload(limit, group_id) {
        Some(fits) => format!("send at most {fits} bytes per message"),
        None => format!(
            "the relay limit is too small for any message (an empty one encrypts to {} bytes)",
            application_message(0, group_id)
        ),
    }
}

#[cfg(test)]
mod tests {
    use mls_rs::ExtensionList;

    use super::*;
    use crate::identity;
    use crate::mls::{build_client, MlsGroup};
    use crate::store::Store;

    /// A one-member group of the client's real mls-rs configuration.
    fn group() -> (MlsGroup, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let key = identity::load_or_create(dir.path(), b"sizer").unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let client = build_client(&key, &dir.path().join("keys.db"), store).unwrap();
        let group = client.create_group(ExtensionList::default(), ExtensionList::default(), None).unwrap();
        (group, dir)
    }

    fn encrypted(group: &mut MlsGroup, payload: usize) -> usize {
        let message = group.encrypt_application_message(&vec![0x5a; payload], Vec::new()).unwrap();
        message.to_bytes().unwrap().len()
    }

    #[test]
    fn the_model_matches_what_mls_rs_produces() {
        let (mut group, _dir) = group();
        let group_id = group.group_id().len();
        // Every size up to 5 000 crosses each length-prefix and several padding steps; then the edges of the
        // padding steps and length prefixes beyond, up to past the default limit.
        let mut sizes: Vec<usize> = (0..5_000).collect();
        for power in 12..=21 {
            for step in 0..=8 {
                let edge = (1usize << power) + step * (1 << (power - 3));
                sizes.extend([edge - 70, edge - 69, edge - 68, edge - 1, edge, edge + 1]);
            }
        }
        sizes.extend([16_300, 16_318, 16_319, 16_320, 917_433, 917_434, 1 << 20]);
        for payload in sizes {
            assert_eq!(application_message(payload, group_id), encrypted(&mut group, payload), "payload {payload}");
        }
    }

    #[test]
    fn the_largest_payload_fits_and_one_more_byte_does_not() {
        for limit in [200, 4_096, 65_536, 100_000, 1 << 20, 16 << 20] {
            let fits = max_application_payload(limit, 32).unwrap();
            assert!(application_message(fits, 32) <= limit, "limit {limit}");
            assert!(application_message(fits + 1, 32) > limit, "limit {limit}");
            assert_eq!(oversize(fits, limit, 32), None);
            assert!(oversize(fits + 1, limit, 32).is_some());
        }
        assert_eq!(max_application_payload(1 << 20, 32), Some(917_433));
    }

    #[test]
    fn a_limit_below_the_smallest_message_fits_nothing_and_says_so() {
        let empty = application_message(0, 32);
        assert_eq!(max_application_payload(empty - 1, 32), None);
        // The padding of an empty message leaves room for a few bytes.
        assert!(max_application_payload(empty, 32).is_some());
        let text = oversize(10, empty - 1, 32).unwrap().to_string();
        assert!(text.ends_with(&format!("too small for any message (an empty one encrypts to {empty} bytes)")));
    }

    #[test]
    fn the_message_names_both_sizes_and_what_fits() {
        let text = oversize(1 << 20, 1 << 20, 32).unwrap().to_string();
        assert_eq!(
            text,
            format!(
                "exceeds the relay limit of 1048576 bytes once encrypted (an MLS message of {} bytes); send at most \
                 917433 bytes per message",
                application_message(1 << 20, 32)
            )
        );
    }
}
