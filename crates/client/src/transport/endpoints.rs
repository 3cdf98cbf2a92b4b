//! The relay endpoints a client may link to, parsed once from the configured string (the `endpoint` argument, or
//! `SKYTALE_RELAY`): one URL (a relay, or a load balancer in front of several), or several separated by commas,
//! which the link supervisor tries in turn (see `link`). Every entry is checked before anything connects, so a
//! typo fails the client's construction naming the entry, not a reconnect minutes later.

use std::fmt;

use tonic::transport::Endpoint;

use crate::error::Error;

/// What a configured list should look like, said after the error naming the problem.
const LIST_HINT: &str = "give the relay's URL, e.g. http://127.0.0.1:5000, or several separated by commas (the \
     endpoint argument, or the SKYTALE_RELAY environment variable)";

/// One relay URL, checked: its gRPC endpoint is built once, and configured (timeouts, TLS) for each link.
#[derive(Clone, Debug)]
pub(crate) struct RelayEndpoint {
    url: String,
    grpc: Endpoint,
}

impl RelayEndpoint {
    fn parse(url: &str, entry: usize, configured: &str) -> Result<Self, Error> {
        let invalid = |why: String| {
            Error::Transport(format!("invalid relay endpoint {url:?} (entry {entry} of {configured:?}): {why}"))
        };
        let grpc = Endpoint::from_shared(url.to_owned()).map_err(|e| invalid(format!("{e}; {LIST_HINT}")))?;
        let uri = grpc.uri();
        if !uri.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https")) {
            return Err(invalid(format!(
                "it must start with http:// (plain, for loopback) or https:// (TLS); {LIST_HINT}"
            )));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid(format!("it names no host; {LIST_HINT}")));
        }
        Ok(Self { url: url.to_owned(), grpc })
    }

    /// The URL as configured (trimmed), for messages and logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh copy of the gRPC endpoint, to configure for one link.
    pub fn grpc(&self) -> Endpoint {
        self.grpc.clone()
    }
}

/// The configured endpoints, in their configured order; never empty.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints(Vec<RelayEndpoint>);

impl Endpoints {
    /// Parses `configured`: comma-separated URLs, whitespace around each ignored. An empty list, or an empty entry
    /// (a stray comma), is refused rather than skipped: it is more likely a mangled setting than a wish.
    pub fn parse(configured: &str) -> Result<Self, Error> {
        if configured.trim().is_empty() {
            return Err(Error::Transport(format!("no relay endpoint given ({configured:?}): {LIST_HINT}")));
        }
        let entries = configured.split(',').map(str::trim).enumerate().map(|(index, url)| {
            let entry = index + 1;
            if url.is_empty() {
                return Err(Error::Transport(format!(
                    "relay endpoint list {configured:?} has an empty entry (entry {entry}): remove the stray comma or \
                     put a URL there; {LIST_HINT}"
                )));
            }
            RelayEndpoint::parse(url, entry, configured)
        });
        Ok(Self(entries.collect::<Result<_, _>>()?))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The endpoint at `index` (below [`len`](Self::len)).
    pub fn get(&self, index: usize) -> &RelayEndpoint {
        &self.0[index]
    }

    /// "relay URL", or "relays URL, URL", for messages about all of them.
    pub fn describe(&self) -> String {
        match self.0.as_slice() {
            [one] => format!("relay {}", one.url),
            _ => format!("relays {self}"),
        }
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, endpoint) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&endpoint.url)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(endpoints: &Endpoints) -> Vec<&str> {
        endpoints.0.iter().map(RelayEndpoint::url).collect()
    }

    fn refusal(configured: &str) -> String {
        let error = Endpoints::parse(configured).expect_err(configured);
        assert!(matches!(error, Error::Transport(_)), "{error}");
        let text = error.to_string();
        assert!(text.contains("SKYTALE_RELAY") && text.contains("http://127.0.0.1:5000"), "{text}");
        text
    }

    #[test]
    fn one_url_is_one_endpoint() {
        let endpoints = Endpoints::parse("https://relay.skytale.sh:5000").unwrap();
        assert_eq!(urls(&endpoints), ["https://relay.skytale.sh:5000"]);
        assert_eq!(endpoints.describe(), "relay https://relay.skytale.sh:5000");
        assert_eq!((endpoints.len(), endpoints.get(0).url()), (1, "https://relay.skytale.sh:5000"));
    }

    #[test]
    fn a_list_is_split_on_commas_and_trimmed_in_order() {
        let endpoints = Endpoints::parse(" http://127.0.0.1:5000 ,\thttps://b.example:443,HTTP://c:1 ").unwrap();
        assert_eq!(urls(&endpoints), ["http://127.0.0.1:5000", "https://b.example:443", "HTTP://c:1"]);
        assert_eq!(endpoints.to_string(), "http://127.0.0.1:5000, https://b.example:443, HTTP://c:1");
        assert_eq!(endpoints.describe(), "relays http://127.0.0.1:5000, https://b.example:443, HTTP://c:1");
        assert_eq!((endpoints.len(), endpoints.get(1).url()), (3, "https://b.example:443"));
    }

    #[test]
    fn an_empty_list_is_refused() {
        for configured in ["", "  "] {
            assert!(refusal(configured).starts_with("transport error: no relay endpoint given"), "{configured:?}");
        }
    }

    #[test]
    fn an_empty_entry_is_refused_naming_it() {
        let text = refusal("http://a:1,,http://b:2");
        assert!(text.contains(r#"list "http://a:1,,http://b:2" has an empty entry (entry 2)"#), "{text}");
        let text = refusal("http://a:1, ");
        assert!(text.contains("empty entry (entry 2)"), "{text}");
        assert!(refusal(",http://a:1").contains("empty entry (entry 1)"));
    }

    #[test]
    fn an_entry_that_is_no_http_url_is_refused_naming_it() {
        let text = refusal("http://a:1,127.0.0.1:5000");
        assert!(text.contains(r#"invalid relay endpoint "127.0.0.1:5000" (entry 2 of"#), "{text}");
        assert!(text.contains("must start with http:// (plain, for loopback) or https:// (TLS)"), "{text}");
        let text = refusal("ftp://a:1");
        assert!(text.contains(r#"invalid relay endpoint "ftp://a:1" (entry 1 of"#), "{text}");
        assert!(refusal("http://a b").contains(r#"invalid relay endpoint "http://a b""#));
    }
}
