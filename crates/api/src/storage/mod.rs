//! The API's durable state, behind one type for both SQLite and PostgreSQL.
//!
//! sqlx's `Any` driver picks the backend from the URL at run time, and every query is written in the SQL subset
//! both engines accept (`$n` placeholders, `ON CONFLICT DO NOTHING`, TEXT/BIGINT columns), so there is exactly one
//! code path to test. All state lives here; the server keeps nothing in memory that a restart would lose.

mod accounts;
mod channels;
mod joins;

mod migrate;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use accounts::{Account, NewApiKey};
pub use channels::ChannelRegistration;
pub(crate) use joins::JoinRequest;
pub(crate) use joins::{JoinRefusal, JoinStatus, PendingJoin, WelcomeRefusal};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL is neither `sqlite://…` nor `postgres://…`.
    #[error("unsupported database url {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// Creating the SQLite file's directory failed.
    #[error("creating database directory {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    /// The database refused or failed a query.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Handle to the API database; cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Storage {
    pool: AnyPool,
    postgres: bool,
}

impl Storage {
    /// Connects to `database_url` (`sqlite://PATH`, created if missing, or `postgres://…`) and applies pending
    /// migrations.
    pub async fn open(database_url: &str) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let url = connect_url(database_url)?;
        let postgres = url.starts_with("postgres");
        let pool = AnyPoolOptions::new().max_connections(8).connect(&url).await?;
        migrate::apply(&pool).await?;
        Ok(Self { pool, postgres })
    }

    /// Whether the database answers a trivial query (the API's readiness).
    pub async fn check(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; pending queries finish first.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database is PostgreSQL, which other API instances may share.
    pub(crate) fn is_postgres(&self) -> bool {
        self.postgres
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The URL handed to sqlx: SQLite files are created on first use (`mode=rwc`) inside a directory made here.
fn connect_url(database_url: &str) -> Result<String, StorageError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok(database_url.to_owned());
    }
    let Some(rest) = database_url.strip_prefix("sqlite://") else {
        return Err(StorageError::UnsupportedUrl(database_url.to_owned()));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StorageError::CreateDir { path: dir.display().to_string(), source })?;
    }
    Ok(match query {
        "" => format!("sqlite://{path}?mode=rwc"),
        q if q.contains("mode=") => database_url.to_owned(),
        q => format!("sqlite://{path}?{q}&mode=rwc"),
    })
}

/// Current time in Unix milliseconds, the unit of every timestamp column.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
