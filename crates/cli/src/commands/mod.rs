//! One module per subcommand.

pub mod api;
pub mod dev;
pub mod keys;
pub mod mcp;
pub mod relay;
pub mod signing_keys;

use std::path::PathBuf;

use crate::dev_key::DevKeyError;

/// Errors a command reports before exiting with status 1.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Relay(#[from] skytale_relay::RelayError),
    #[error("API server: {0}")]
    Api(#[from] skytale_api::ServeError),
    #[error(transparent)]
    AdminListener(#[from] skytale_admin::AdminError),
    #[error("API database: {0}")]
    Storage(#[from] skytale_api::StorageError),
    #[error(transparent)]
    Admin(#[from] skytale_api::AdminError),
    #[error(transparent)]
    Jwks(#[from] skytale_relay::JwksError),
    #[error("cannot load the token verification key: {0}")]
    VerificationKey(#[from] skytale_relay::KeyError),
    #[error(transparent)]
    DevKey(#[from] DevKeyError),
    #[error(
        "--auth jwt needs the API's public key: pass --jwks-url URL (the API's /.well-known/jwks.json) or \
         --jwt-key-file PATH (the API's signing key file), or --auth none for local development"
    )]
    NoKeySource,
    #[error("--jwks-url and --jwt-key-file only apply to --auth jwt")]
    KeySourceWithoutAuth,
    #[error("no live API key with id {0}")]
    UnknownKey(String),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("HOME is not set: pass {flag} explicitly")]
    NoHome { flag: &'static str },
    #[error("{0}: stop the other skytale dev on it, or pass another --dir")]
    DevDirInUse(skytale_dir_lock::LockError),
    #[error(
        "{error}: the port is taken (by another skytale dev, or another program); pass {flag} 0 for any free port"
    )]
    PortTaken { flag: &'static str, error: String },
    #[error(
        "no API database at {} (the default): pass --data-dir with the directory of the skytale api that is to \
         know the key (for skytale dev --dir D: D/api), or --database-url; to provision before its first start, \
         pass --data-dir explicitly",
        .0.display()
    )]
    NoApiDatabase(PathBuf),
    #[error(transparent)]
    Mcp(#[from] mcp::McpError),
    #[error("skytale dev --tls: {0}")]
    LocalCa(#[from] skytale_tls_server::LocalCaError),
    #[error(
        "skytale dev --tls: {error}; delete {} and {} to have new ones created",
        ca_file.display(),
        tls_dir.display()
    )]
    DevCertificate { error: skytale_tls_server::TlsError, ca_file: PathBuf, tls_dir: PathBuf },
    #[error(
        "no signing-key file at {}: pass the --key-file or --data-dir that skytale api runs with (it creates the \
         file on its first start)",
        .0.display()
    )]
    NoSigningKeyFile(PathBuf),
    /// A signing-key file that could not be read or changed (`keys rotate-signing-key`, `retire-signing-key`); the
    /// error names the file.
    #[error(transparent)]
    SigningKeys(skytale_auth::KeyError),
}

/// `~/.skytale/<name>`, the default location of a command's data.
pub fn default_dir(name: &str, flag: &'static str) -> Result<PathBuf, CommandError> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(CommandError::NoHome { flag })?;
    Ok(PathBuf::from(home).join(".skytale").join(name))
}

/// The API's data directory: `--data-dir`, or `~/.skytale/api`.
pub fn api_data_dir(data_dir: Option<PathBuf>) -> Result<PathBuf, CommandError> {
    match data_dir {
        Some(dir) => Ok(dir),
        None => default_dir("api", "--data-dir"),
    }
}

/// The SQLite database an API started with `--data-dir DIR` uses by default, in DIR.
pub const API_DB_FILE: &str = "api.db";

/// `sqlite://DIR/api.db`, the database an API started with `--data-dir DIR` uses by default.
pub fn sqlite_url_in(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join(API_DB_FILE).display())
}
