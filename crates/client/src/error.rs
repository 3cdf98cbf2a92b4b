//! The one error type of the client core.
//!
//! Every variant's `Display` starts with the prefix the SDK contract promises (`MLS engine error:`,
//! `transport error:`, ...), because the Python layer maps variants to exception classes and users match on
//! messages; the text after the prefix names the concrete problem.

use skytale_proto::NameError;

/// Everything that can go wrong in a client call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The channel name is not `org/namespace/service`.
    #[error("{0}")]
    InvalidName(#[from] NameError),
    /// The channel is unknown, already held, removed, or refused the request.
    #[error("channel error: {0}")]
    Channel(String),
    /// The MLS engine rejected an input or could not process a message.
    #[error("MLS engine error: {0}")]
    Mls(String),
    /// The relay could not be reached or did not answer in time.
    #[error("transport error: {0}")]
    Transport(String),
    /// The relay refused the credentials of this client.
    #[error("auth error: {0}")]
    Auth(String),
    /// An account limit was hit.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// The data_dir cannot be used: held by another client, made for another identity, unreadable.
    #[error("data_dir error: {0}")]
    DataDir(String),
    /// Local failure: storage, runtime, misuse from an async context.
    #[error("runtime error: {0}")]
    Runtime(String),
}

impl Error {
    /// A stable, machine-readable code for the variant (exposed to Python as `.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidName(_) => "invalid_name",
            Error::Channel(_) => "channel",
            Error::Mls(_) => "mls",
            Error::Transport(_) => "transport",
            Error::Auth(_) => "auth",
            Error::Quota(_) => "quota",
            Error::DataDir(_) => "data_dir",
            Error::Runtime(_) => "runtime",
        }
    }

    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Error::Runtime(format!("local storage failure: {e}"))
    }
}

/// An error with its causes: reqwest's and tonic's own messages omit them, and the cause (e.g. "invalid peer
/// certificate: UnknownIssuer") is what the user needs.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        // Some wrappers already repeat their cause's message; say it once.
        let message = e.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefixes_match_the_sdk_contract() {
        let name = skytale_proto::ChannelName::parse("bad").unwrap_err();
        assert_eq!(Error::from(name).to_string(), "invalid channel name: bad (expected org/namespace/service)");
        let cases = [
            (Error::Channel("x".into()), "channel error: x", "channel"),
            (Error::Mls("x".into()), "MLS engine error: x", "mls"),
            (Error::Transport("x".into()), "transport error: x", "transport"),
            (Error::Auth("x".into()), "auth error: x", "auth"),
            (Error::Quota("x".into()), "quota exceeded: x", "quota"),
            (Error::Runtime("x".into()), "runtime error: x", "runtime"),
        ];
        for (err, text, code) in cases {
            assert_eq!(err.to_string(), text);
            assert_eq!(err.code(), code);
        }
    }
}
