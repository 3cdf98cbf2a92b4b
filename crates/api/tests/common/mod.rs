//! Test harness: a real API server on loopback over a real database (SQLite file or a fresh PostgreSQL database),
//! driven over HTTP with reqwest.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use skytale_api::{create_account_with_key, Api, ApiConfig, ApiHandle, NewApiKey, Storage};
use tempfile::TempDir;

/// Env var holding a PostgreSQL URL (printed by `scripts/postgres.sh`) for the PostgreSQL variant of the suite.
pub const POSTGRES_URL_VAR: &str = "SKYTALE_TEST_POSTGRES_URL";
/// Set to 1 to make a missing PostgreSQL a test failure instead of a skip.
pub const REQUIRE_POSTGRES_VAR: &str = "SKYTALE_REQUIRE_POSTGRES";

/// Where a test's server keeps its state. The temp dir (key file, SQLite file) lives as long as this.
pub struct Backend {
    pub dir: TempDir,
    pub database_url: String,
}

impl Backend {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("api.db").display());
        Self { dir, database_url }
    }

    /// A fresh database on the PostgreSQL named by `SKYTALE_TEST_POSTGRES_URL`, or `None` (after saying so) when
    /// the variable is unset. Panics if it is unset but `SKYTALE_REQUIRE_POSTGRES=1`.
    pub async fn postgres(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set (run scripts/postgres.sh)");
            }
            eprintln!("PostgreSQL variant of {test} NOT RUN: {POSTGRES_URL_VAR} is not set (see scripts/postgres.sh)");
            return None;
        };
        let database = format!("skytale_test_{}", hex::encode(rand::random::<[u8; 8]>()));
        sqlx::any::install_default_drivers();
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("connect to SKYTALE_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let (base, query) = admin_url.split_once('?').map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
        let server = base.rsplit_once('/').map_or(base, |(server, _db)| server);
        let database_url = match query {
            Some(q) => format!("{server}/{database}?{q}"),
            None => format!("{server}/{database}"),
        };
        Some(Self { dir: tempfile::tempdir().expect("temp dir"), database_url })
    }

    /// A connection of the test's own to its database.
    pub async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url).await.expect("connect to the database")
    }

    pub fn config(&self) -> ApiConfig {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: self.database_url.clone(),
            key_file: self.dir.path().join("api-signing-key.pem"),
            token_lifetime: skytale_auth::TOKEN_LIFETIME,
            admin_listen: None,
            quotas: skytale_api::ApiQuotas::default(),
            tls: None,
        }
    }
}

/// A running server and an HTTP client for it.
pub struct TestApi {
    pub handle: ApiHandle,
    pub client: ApiClient,
}

impl TestApi {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server with `configure` applied to the backend's configuration.
    pub async fn start_with(backend: &Backend, configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let mut config = backend.config();
        configure(&mut config);
        let handle = Api::start(config).await.expect("API starts");
        let client = ApiClient::new(handle.local_addr());
        Self { handle, client }
    }

    pub fn storage(&self) -> &Storage {
        self.handle.storage()
    }

    /// A new account in `org` with an API key.
    pub async fn account(&self, org: &str, name: &str) -> NewApiKey {
        create_account_with_key(self.storage(), org, name).await.expect("provision account")
    }
}

impl std::ops::Deref for TestApi {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.client
    }
}

/// HTTP access to one server; independent of the server handle so it can outlive a shutdown.
#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    pub http: reqwest::Client,
}

impl ApiClient {
    fn new(addr: SocketAddr) -> Self {
        // Shorter than the 60 s waits the tests ask for: a long-poll that is never woken fails the test instead
        // of passing late.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
        Self { base: format!("http://{addr}"), http }
    }

    /// Sends a request with an optional bearer credential and JSON body; returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: impl Into<String>,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{}", self.base, path.into()));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request completes");
        let status = response.status();
        let text = response.text().await.expect("response body");
        let json =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, json)
    }

    pub async fn post(&self, path: impl Into<String>, bearer: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(bearer), Some(body)).await
    }

    pub async fn get(&self, path: impl Into<String>, bearer: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(bearer), None).await
    }
}

/// The `error.code` of an error body.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
