//! What a token says about its bearer.

use serde::{Deserialize, Serialize};
use skytale_proto::ChannelName;

/// The claims of a Skytale access token.
///
/// Channel grants (invites redeemed by this account for channels of other orgs) are carried in the token itself,
/// so the relay can authorise a subscribe or publish without calling back to the API. A grant recorded after a
/// token was issued takes effect with the next token (clients refresh every few minutes anyway).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always [`crate::ISSUER`].
    pub iss: String,
    /// Audience, always [`crate::AUDIENCE`].
    pub aud: String,
    /// The account id of the bearer.
    pub sub: String,
    /// The org the account belongs to; every channel `org/*/*` is the account's to use.
    pub org: String,
    /// Channels outside `org` that the account was granted by redeeming an invite.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

impl Claims {
    /// Whether the bearer may subscribe and publish to `channel`: it is under the bearer's org, or it was granted.
    pub fn may_use_channel(&self, channel: &ChannelName) -> bool {
        let [org, _, _] = channel.components();
        org == self.org || self.channels.iter().any(|granted| granted == channel.as_str())
    }
}
