//! Provisioning without the HTTP API, for the CLI (`skytale keys create --org ORG`, `skytale dev`).

use skytale_proto::ChannelName;

use crate::storage::{NewApiKey, Storage, StorageError};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("invalid org {0:?}: must be a valid channel name component ([A-Za-z0-9._-], 1-64 chars)")]
    InvalidOrg(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates an account named `account_name` in `org` and an API key for it.
pub async fn create_account_with_key(
    storage: &Storage,
    org: &str,
    account_name: &str,
) -> Result<NewApiKey, AdminError> {
    if !is_valid_org(org) {
        return Err(AdminError::InvalidOrg(org.to_owned()));
    }
    let account = storage.create_account(org, account_name).await?;
    Ok(storage.create_api_key(&account).await?)
}

/// An org is valid exactly when it can be the first component of a channel name, since it owns `org/*/*`.
fn is_valid_org(org: &str) -> bool {
    ChannelName::parse(&format!("{org}/ns/service")).is_ok()
}
