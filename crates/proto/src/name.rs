//! Channel names and their SLIM encoding.
//!
//! A channel is named `org/namespace/service`. On the wire it is a SLIM [`Name`](crate::pb::Name): the three
//! strings (kept for logs and for SLIM peers) plus each component hashed the way SLIM hashes it, which is what
//! routing uses. SLIM hashes a component with `XxHash64` (seed 0) through Rust's `Hash for str`, which feeds the
//! string's bytes followed by a `0xFF` terminator; channels carry `name_id` 0.

use std::fmt;

use crate::pb;

/// Longest allowed component, in bytes.
pub const MAX_COMPONENT_LEN: usize = 64;

/// A validated channel name: three non-empty components of `[A-Za-z0-9._-]`, each at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName {
    full: String,
}

/// Why a string is not a channel name. `Display` gives the exact message of the SDK contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    /// The rejected input.
    pub name: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid channel name: {} (expected org/namespace/service)", self.name)
    }
}

impl std::error::Error for NameError {}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= MAX_COMPONENT_LEN
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl ChannelName {
    /// Validates `name` as `org/namespace/service`.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() == 3 && parts.iter().all(|c| valid_component(c)) {
            Ok(Self { full: name.to_owned() })
        } else {
            Err(NameError { name: name.to_owned() })
        }
    }

    /// The name as given, `org/namespace/service`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The three components.
    pub fn components(&self) -> [&str; 3] {
        let mut it = self.full.splitn(3, '/');
        // parse() guarantees exactly three components.
        [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
    }

    /// The routing key: the SLIM hash of each component.
    pub fn encoded(&self) -> [u64; 3] {
        self.components().map(slim_component_hash)
    }

    /// The SLIM `Name` for this channel (`name_id` 0).
    pub fn to_slim(&self) -> pb::Name {
        let [c0, c1, c2] = self.components();
        let [h0, h1, h2] = self.encoded();
        pb::Name {
            name: Some(pb::EncodedName {
                component_0: h0,
                component_1: h1,
                component_2: h2,
                name_id: Some(pb::NameId { id_0: 0, id_1: 0 }),
            }),
            str_name: Some(pb::StringName {
                str_component_0: c0.to_owned(),
                str_component_1: c1.to_owned(),
                str_component_2: c2.to_owned(),
            }),
        }
    }

    /// Reads a channel name back from a SLIM `Name`: the strings must form a valid name and, when the encoded
    /// form is present, agree with it (a frame whose two forms disagree would route one way and log another).
    pub fn from_slim(name: &pb::Name) -> Result<Self, NameError> {
        let s = name.str_name.as_ref().ok_or_else(|| NameError { name: String::new() })?;
        let full = format!("{}/{}/{}", s.str_component_0, s.str_component_1, s.str_component_2);
        let parsed = Self::parse(&full)?;
        if let Some(enc) = &name.name {
            if [enc.component_0, enc.component_1, enc.component_2] != parsed.encoded() {
                return Err(NameError { name: full });
            }
        }
        Ok(parsed)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for ChannelName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::parse(s)
    }
}

/// SLIM's hash of one name component: XxHash64, seed 0, over the bytes and a trailing `0xFF`
/// (exactly what `<str as Hash>::hash` feeds a `twox_hash::XxHash64` hasher).
pub fn slim_component_hash(component: &str) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    h.update(component.as_bytes());
    h.update(&[0xFF]);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_known_values() {
        // xxh64(seed 0) of `org`, `default` and the empty string, each followed by 0xFF, computed independently with
        // the Python `xxhash` package.
        assert_eq!(slim_component_hash("org"), KNOWN_ORG);
        assert_eq!(slim_component_hash("default"), KNOWN_DEFAULT);
        assert_eq!(slim_component_hash(""), KNOWN_EMPTY);
    }

    const KNOWN_ORG: u64 = 9745323415579563579;
    const KNOWN_DEFAULT: u64 = 2419281581437851240;
    const KNOWN_EMPTY: u64 = 10764519495013463364;

    #[test]
    fn hash_is_std_hash_of_str_through_xxhash64() {
        // SLIM's own path: `<str as Hash>::hash` into an XxHash64 hasher.
        use std::hash::{Hash, Hasher};
        for s in ["org", "a2a", "myorg", "team", "general", ""] {
            let mut h = xxhash_rust::xxh64::Xxh64::new(0);
            s.hash(&mut h);
            assert_eq!(h.finish(), slim_component_hash(s), "{s}");
        }
    }

    #[test]
    fn valid_names() {
        for n in ["a/b/c", "my-org/team.x/general_1", &format!("{}/b/c", "x".repeat(64))] {
            let c = ChannelName::parse(n).unwrap();
            assert_eq!(c.as_str(), n);
        }
    }

    #[test]
    fn invalid_names_each_rule() {
        let long = format!("{}/b/c", "x".repeat(65));
        for n in ["", "a", "a/b", "a/b/c/d", "/b/c", "a//c", "a/b/", "a b/c/d", "a/b/c!", "é/b/c", &long] {
            let err = ChannelName::parse(n).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid channel name: {n} (expected org/namespace/service)"));
        }
    }

    #[test]
    fn slim_round_trip_and_mismatch() {
        let c = ChannelName::parse("myorg/team/general").unwrap();
        let slim = c.to_slim();
        assert_eq!(ChannelName::from_slim(&slim).unwrap(), c);
        let mut forged = slim.clone();
        forged.name.as_mut().unwrap().component_0 ^= 1;
        assert!(ChannelName::from_slim(&forged).is_err());
    }
}
