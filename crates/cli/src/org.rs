//! Org names on the command line.

use skytale_proto::ChannelName;

/// Accepts an org exactly when it can be the first component of a channel name (the org owns `org/*/*`). Checked
/// at parse time because `skytale dev` also uses the org in a file name.
pub fn parse_org(text: &str) -> Result<String, String> {
    ChannelName::parse(&format!("{text}/ns/service"))
        .map(|_| text.to_owned())
        .map_err(|_| format!("{text:?} is not an org name: use 1-64 characters from A-Z a-z 0-9 . _ -"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_channel_components_only() {
        assert_eq!(parse_org("myorg"), Ok("myorg".to_owned()));
        for bad in ["", "a/b", "../x", "with space"] {
            assert!(parse_org(bad).is_err(), "{bad:?}");
        }
    }
}
