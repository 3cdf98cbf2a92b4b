//! The API over HTTPS (docs/operations.md, "TLS"): requests are served to a client trusting the server's CA, a
//! client trusting another CA is told why it is refused, and a certificate replaced on disk reaches new
//! connections while an established one goes on. Certificates come from `LocalCa`s in temporary directories.

mod common;

use std::error::Error as _;
use std::path::Path;
use std::time::Duration;

use common::{Backend, TestApi};
use reqwest::StatusCode;
use skytale_api::TlsFiles;
use skytale_tls_server::LocalCa;
use tempfile::TempDir;

fn local_ca() -> (TempDir, LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::load_or_create(dir.path()).unwrap();
    (dir, ca)
}

/// An HTTP client trusting only the CA in `ca_file` (no web roots).
fn client_trusting(ca_file: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `GET /.well-known/jwks.json` over `client`: the status, or the error with its causes.
async fn get_jwks(client: &reqwest::Client, api: &TestApi) -> Result<StatusCode, String> {
    let url = format!("https://127.0.0.1:{}/.well-known/jwks.json", api.handle.local_addr().port());
    match client.get(url).send().await {
        Ok(response) => Ok(response.status()),
        Err(error) => {
            let mut text = error.to_string();
            let mut cause = error.source();
            while let Some(error) = cause {
                text.push_str(&format!(": {error}"));
                cause = error.source();
            }
            Err(text)
        }
    }
}

async fn tls_api(backend: &Backend, files: &TlsFiles) -> TestApi {
    TestApi::start_with(backend, |config| config.tls = Some(files.clone())).await
}

#[tokio::test]
async fn https_requests_are_served_and_a_client_trusting_another_ca_is_told_why_it_is_refused() {
    let (_ca_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let backend = Backend::sqlite();
    let api = tls_api(&backend, &ca.server).await;

    assert_eq!(get_jwks(&client_trusting(&ca.ca_file), &api).await, Ok(StatusCode::OK));
    let refused = get_jwks(&client_trusting(&other.ca_file), &api).await.unwrap_err();
    assert!(refused.contains("invalid peer certificate: UnknownIssuer"), "{refused}");
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = api.http.get(format!("{}/.well-known/jwks.json", api.base)).send().await;
    assert!(plain.is_err(), "plain HTTP was answered over TLS: {plain:?}");
    api.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_reaches_new_connections_while_an_established_one_goes_on() {
    let (_ca_dir, ca) = local_ca();
    let (_other_dir, other) = local_ca();
    let backend = Backend::sqlite();
    let files = TlsFiles { reload_interval: Duration::from_millis(50), ..ca.server.clone() };
    let api = tls_api(&backend, &files).await;
    // Its connection stays in the client's pool between requests.
    let established = client_trusting(&ca.ca_file);
    assert_eq!(get_jwks(&established, &api).await, Ok(StatusCode::OK));

    for (from, to) in [(&other.server.key, &files.key), (&other.server.cert, &files.cert)] {
        let temporary = to.with_extension("new");
        std::fs::copy(from, &temporary).unwrap();
        std::fs::rename(&temporary, to).unwrap();
    }
    let renewed = client_trusting(&other.ca_file);
    let mut reloaded = false;
    for _ in 0..600 {
        if get_jwks(&renewed, &api).await == Ok(StatusCode::OK) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "new connections never got the renewed certificate");

    // A new connection trusting the first CA is refused now, so the established client is answered only over
    // the connection it opened before the renewal.
    let refused = get_jwks(&client_trusting(&ca.ca_file), &api).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    assert_eq!(get_jwks(&established, &api).await, Ok(StatusCode::OK));
    api.handle.shutdown().await.unwrap();
}
