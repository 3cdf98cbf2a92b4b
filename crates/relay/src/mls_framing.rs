//! Reads the clear-text framing of an MLS message (RFC 9420 §6): the relay needs the group id, epoch and
//! content type to enforce one commit per epoch, and all of them are readable without any key for both
//! PublicMessage and PrivateMessage; a channel's creation is the creator's GroupInfo, whose group context starts
//! with the same two fields. This is the cheap first look every message gets: only handshake messages are then
//! validated further (`membership`), and the relay never decrypts.
//!
//! ```text
//! MLSMessage     = version u16 (1 = mls10) | wire_format u16 | body
//! PublicMessage  = group_id<V> | epoch u64 | sender | authenticated_data<V> | content_type u8 | ...
//! PrivateMessage = group_id<V> | epoch u64 | content_type u8 | authenticated_data<V>
//!                  | encrypted_sender_data<V> | ciphertext<V>
//! GroupInfo      = version u16 | cipher_suite u16 | group_id<V> | epoch u64 | ...
//! sender         = sender_type u8 | leaf_index u32 (member) / sender_index u32 (external) / nothing (new member)
//! ```
//! `<V>` is a vector with a QUIC-style variable-length size prefix (RFC 9420 §2.1.2).

/// The only protocol version defined so far: `mls10`.
const MLS10: u16 = 1;

/// Which wire format a blob uses (Welcome and KeyPackage are refused: they are not channel traffic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    Public,
    Private,
    GroupInfo,
}

/// What the message carries, as declared in its framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Application,
    Proposal,
    Commit,
    /// A GroupInfo: not an RFC 9420 content type, but what such a blob carries (the group's public state).
    GroupInfo,
}

/// The parts of an MLS message header the Delivery Service acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsHeader {
    pub wire_format: WireFormat,
    pub group_id: Vec<u8>,
    pub epoch: u64,
    pub content_type: ContentType,
    /// The sender's leaf index, for a PublicMessage sent by a member (the only sender whose key the relay can
    /// look up before verifying the signature).
    pub member_sender: Option<u32>,
}

/// Why a blob is not an MLS PublicMessage or PrivateMessage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("message ends inside {0}")]
    Truncated(&'static str),
    #[error("unsupported MLS protocol version {0}")]
    UnsupportedVersion(u16),
    #[error("wire format {0} is not a PublicMessage (1), PrivateMessage (2) or GroupInfo (4)")]
    UnsupportedWireFormat(u16),
    #[error("invalid variable-length size prefix in {0}")]
    InvalidLength(&'static str),
    #[error("unknown sender type {0}")]
    UnknownSenderType(u8),
    #[error("unknown content type {0}")]
    UnknownContentType(u8),
    #[error("{0} unexpected bytes after the PrivateMessage")]
    TrailingBytes(usize),
}

/// Parses the header of `blob`, which must hold exactly one MLSMessage.
pub fn parse_header(blob: &[u8]) -> Result<MlsHeader, FramingError> {
    let mut r = Reader { rest: blob };
    let version = r.u16("version")?;
    if version != MLS10 {
        return Err(FramingError::UnsupportedVersion(version));
    }
    let wire_format = match r.u16("wire_format")? {
        1 => WireFormat::Public,
        2 => WireFormat::Private,
        4 => WireFormat::GroupInfo,
        other => return Err(FramingError::UnsupportedWireFormat(other)),
    };
    if wire_format == WireFormat::GroupInfo {
        // The group context's own version and cipher suite come first; the rest is checked with the signature.
        r.u16("group_context.version")?;
        r.u16("group_context.cipher_suite")?;
    }
    let group_id = r.vector("group_id")?.to_vec();
    let epoch = r.u64("epoch")?;
    let mut member_sender = None;
    let content_type = match wire_format {
        WireFormat::GroupInfo => ContentType::GroupInfo,
        WireFormat::Public => {
            member_sender = sender(&mut r)?;
            r.vector("authenticated_data")?;
            content_type(r.u8("content_type")?)?
        }
        WireFormat::Private => {
            let content_type = content_type(r.u8("content_type")?)?;
            r.vector("authenticated_data")?;
            r.vector("encrypted_sender_data")?;
            r.vector("ciphertext")?;
            if !r.rest.is_empty() {
                return Err(FramingError::TrailingBytes(r.rest.len()));
            }
            content_type
        }
    };
    Ok(MlsHeader { wire_format, group_id, epoch, content_type, member_sender })
}

fn content_type(value: u8) -> Result<ContentType, FramingError> {
    match value {
        1 => Ok(ContentType::Application),
        2 => Ok(ContentType::Proposal),
        3 => Ok(ContentType::Commit),
        other => Err(FramingError::UnknownContentType(other)),
    }
}

/// Reads a PublicMessage's sender: the leaf index of a member, `None` for any other kind of sender.
fn sender(r: &mut Reader<'_>) -> Result<Option<u32>, FramingError> {
    match r.u8("sender_type")? {
        1 => {
            let b = r.take(4, "sender index")?;
            Ok(Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        }
        // external (sender_index)
        2 => r.take(4, "sender index").map(|_| None),
        // new_member_proposal, new_member_commit: no index
        3 | 4 => Ok(None),
        other => Err(FramingError::UnknownSenderType(other)),
    }
}

/// A forward-only cursor over the blob; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FramingError> {
        if self.rest.len() < n {
            return Err(FramingError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FramingError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, FramingError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, FramingError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_be_bytes(bytes))
    }

    /// A vector with an RFC 9420 §2.1.2 length: the top two bits of the first byte give the prefix size
    /// (00: 1 byte, 01: 2 bytes, 10: 4 bytes; 11 is invalid), and the length must use the shortest prefix.
    fn vector(&mut self, what: &'static str) -> Result<&'a [u8], FramingError> {
        let first = self.u8(what)?;
        let (prefix_len, min_value) = match first >> 6 {
            0 => (1, 0),
            1 => (2, 64),
            2 => (4, 16384),
            _ => return Err(FramingError::InvalidLength(what)),
        };
        let mut len = u64::from(first & 0x3F);
        for &b in self.take(prefix_len - 1, what)? {
            len = (len << 8) | u64::from(b);
        }
        if len < min_value {
            return Err(FramingError::InvalidLength(what));
        }
        let len = usize::try_from(len).map_err(|_| FramingError::InvalidLength(what))?;
        self.take(len, what)
    }
}

#[cfg(test)]
#[path = "../tests/common/mls_group.rs"]
mod mls_group;

#[cfg(test)]
mod tests {
    use super::mls_group::new_group;
    use super::*;

    #[test]
    fn reads_public_messages() {
        let mut group = new_group(false);
        let proposal = parse_header(&group.proposal()).unwrap();
        assert_eq!(proposal.wire_format, WireFormat::Public);
        assert_eq!(proposal.content_type, ContentType::Proposal);
        assert_eq!(proposal.epoch, 0);
        assert_eq!(proposal.group_id, group.group_id());

        assert_eq!(proposal.member_sender, Some(0));

        let commit = parse_header(&group.commit()).unwrap();
        assert_eq!(commit.wire_format, WireFormat::Public);
        assert_eq!(commit.content_type, ContentType::Commit);
        assert_eq!(commit.epoch, 0);
        assert_eq!(commit.member_sender, Some(0));
        assert_eq!(group.epoch(), 1);
    }

    #[test]
    fn reads_group_infos() {
        let mut group = new_group(false);
        group.commit();
        let info = parse_header(&group.group_info()).unwrap();
        assert_eq!(info.wire_format, WireFormat::GroupInfo);
        assert_eq!(info.content_type, ContentType::GroupInfo);
        assert_eq!(info.epoch, 1);
        assert_eq!(info.group_id, group.group_id());
        assert_eq!(info.member_sender, None);
    }

    #[test]
    fn reads_private_messages() {
        let mut group = new_group(true);
        let commit = parse_header(&group.commit()).unwrap();
        assert_eq!(commit.wire_format, WireFormat::Private);
        assert_eq!(commit.content_type, ContentType::Commit);
        assert_eq!(commit.epoch, 0);

        let app = parse_header(&group.application(b"hello")).unwrap();
        assert_eq!(app.wire_format, WireFormat::Private);
        assert_eq!(app.content_type, ContentType::Application);
        assert_eq!(app.epoch, 1);
        assert_eq!(app.group_id, group.group_id());
        assert_eq!(app.member_sender, None);

        let proposal = parse_header(&group.proposal()).unwrap();
        assert_eq!(proposal.wire_format, WireFormat::Private);
        assert_eq!(proposal.content_type, ContentType::Proposal);
    }

    #[test]
    fn every_truncation_of_a_real_message_is_refused() {
        let mut group = new_group(false);
        for msg in [group.application(b"payload"), group.commit()] {
            let header_end = header_len(&msg);
            for cut in 0..header_end {
                assert!(
                    matches!(parse_header(&msg[..cut]), Err(FramingError::Truncated(_))),
                    "cut at {cut} of {}",
                    msg.len()
                );
            }
        }
    }

    /// Shortest prefix that still parses: for a PrivateMessage that is the whole message.
    fn header_len(msg: &[u8]) -> usize {
        (0..=msg.len()).find(|&n| parse_header(&msg[..n]).is_ok()).unwrap()
    }

    #[test]
    fn refuses_other_wire_formats_versions_and_garbage() {
        let mut group = new_group(false);
        let mut msg = group.application(b"x");
        msg[3] = 5; // key_package
        assert_eq!(parse_header(&msg), Err(FramingError::UnsupportedWireFormat(5)));
        msg[1] = 2;
        assert_eq!(parse_header(&msg), Err(FramingError::UnsupportedVersion(2)));
        assert!(parse_header(b"").is_err());
        assert!(parse_header(b"hello, relay").is_err());
        assert!(parse_header(&[0xFF; 64]).is_err());
    }

    #[test]
    fn refuses_trailing_bytes_after_private_message() {
        let mut group = new_group(false);
        let mut msg = group.application(b"x");
        msg.push(0);
        assert_eq!(parse_header(&msg), Err(FramingError::TrailingBytes(1)));
    }

    #[test]
    fn refuses_bad_length_prefixes() {
        // version 1, PrivateMessage, then a group_id length with prefix bits 11.
        assert_eq!(parse_header(&[0, 1, 0, 2, 0xC0, 0, 0, 0]), Err(FramingError::InvalidLength("group_id")));
        // A two-byte prefix encoding 5, which fits in one byte: not minimal.
        assert_eq!(parse_header(&[0, 1, 0, 2, 0x40, 5, 1, 2, 3, 4, 5]), Err(FramingError::InvalidLength("group_id")));
    }

    #[test]
    fn reads_multi_byte_lengths() {
        // PrivateMessage, 100-byte group id (2-byte prefix), epoch 7, commit, empty aad/sender data/ciphertext.
        let mut msg = vec![0, 1, 0, 2, 0x40, 100];
        msg.extend([9u8; 100]);
        msg.extend(7u64.to_be_bytes());
        msg.extend([3, 0, 0, 0]);
        let header = parse_header(&msg).unwrap();
        assert_eq!(header.group_id, vec![9u8; 100]);
        assert_eq!(header.epoch, 7);
        assert_eq!(header.content_type, ContentType::Commit);
    }
}
