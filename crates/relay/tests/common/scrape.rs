//! Reading an admin listener over HTTP: `/metrics` parsed from the text format into series and values, and a
//! bounded wait for a scrape to show something. Shared by the relay's, the API's and the CLI's tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;

/// How long [`eventually`] waits.
const WAIT: Duration = Duration::from_secs(30);

/// A series: its name and its labels, sorted by label name.
pub type Series = (String, Vec<(String, String)>);

/// GET `path` on the admin listener: status and body.
pub async fn get(admin: SocketAddr, path: &str) -> (StatusCode, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client");
    let response = client.get(format!("http://{admin}{path}")).send().await.expect("admin listener answers");
    let status = response.status();
    (status, response.text().await.expect("admin response body"))
}

/// One `/metrics` scrape: every sample line's series and value.
pub struct Scrape(BTreeMap<Series, f64>);

impl Scrape {
    pub async fn take(admin: SocketAddr) -> Self {
        let (status, text) = get(admin, "/metrics").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        Self::parse(&text)
    }

    /// Parses the text format: `# ...` lines are metadata, every other line is `name{label="value",...} value`.
    pub fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
        for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                None => (series, Vec::new()),
                Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').expect("labels end with }"))),
            };
            let previous = samples.insert((name.to_owned(), labels), value);
            assert!(previous.is_none(), "series {series} twice");
        }
        Self(samples)
    }

    /// The value of a series; 0 for a series not (yet) exported, as for a counter that never moved.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        labels.sort();
        self.0.get(&(name.to_owned(), labels)).copied().unwrap_or(0.0)
    }

    /// How much a series grew since `earlier`.
    pub fn delta(&self, earlier: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels) - earlier.value(name, labels)
    }

    /// Every series exported.
    pub fn series(&self) -> Vec<&Series> {
        self.0.keys().collect()
    }

    /// The series of one metric name.
    pub fn series_named(&self, name: &str) -> Vec<&Series> {
        self.0.keys().filter(|(series, _)| series == name).collect()
    }
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels {text:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => panic!("bad escape in {text:?}"),
                },
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text:?}"),
            }
        };
        labels.push((name.to_owned(), value));
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    labels.sort();
    labels
}

/// Polls `check` until it yields a value, for at most [`WAIT`]; fails the test naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited {WAIT:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
