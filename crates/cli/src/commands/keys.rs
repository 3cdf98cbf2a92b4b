//! `skytale keys create|revoke`: provisioning straight in the API's database, so the first key of an org can be
//! made before anyone holds a credential the HTTP API would accept. Works while the API server runs. The signing-key
//! subcommands are `signing_keys`'.

use skytale_api::{create_account_with_key, Storage};

use super::{api_data_dir, signing_keys, sqlite_url_in, CommandError, API_DB_FILE};
use crate::announce;
use crate::args::{DatabaseArgs, KeysCommand};

pub async fn run(command: KeysCommand) -> Result<(), CommandError> {
    match command {
        KeysCommand::Create { org, name, database } => create(&org, &name, database).await,
        KeysCommand::Revoke { key_id, database } => revoke(&key_id, database).await,
        KeysCommand::RotateSigningKey { key_file } => signing_keys::rotate(key_file),
        KeysCommand::RetireSigningKey { kid, key_file } => signing_keys::retire(&kid, key_file),
    }
}

async fn open(database: DatabaseArgs) -> Result<Storage, CommandError> {
    let url = match (database.database_url, database.data_dir) {
        (Some(url), _) => url,
        (None, Some(dir)) => sqlite_url_in(&dir),
        // A key in a database no server reads would look valid and be refused everywhere.
        (None, None) => {
            let dir = api_data_dir(None)?;
            if !dir.join(API_DB_FILE).exists() {
                return Err(CommandError::NoApiDatabase(dir.join(API_DB_FILE)));
            }
            sqlite_url_in(&dir)
        }
    };
    Ok(Storage::open(&url).await?)
}

/// Prints `export SKYTALE_API_KEY=...` (so `eval` picks it up) and a shell comment with the key id to revoke it.
async fn create(org: &str, name: &str, database: DatabaseArgs) -> Result<(), CommandError> {
    let storage = open(database).await?;
    let created = create_account_with_key(&storage, org, name).await;
    storage.close().await;
    let key = created?;
    announce::export("SKYTALE_API_KEY", &key.secret).map_err(CommandError::Stdout)?;
    announce::comment(&format!(
        "key id {} (account {} in org {}); revoke with: skytale keys revoke {}",
        key.key_id, key.account.id, key.account.org, key.key_id
    ))
    .map_err(CommandError::Stdout)
}

async fn revoke(key_id: &str, database: DatabaseArgs) -> Result<(), CommandError> {
    let storage = open(database).await?;
    let revoked = storage.revoke_api_key(key_id).await;
    storage.close().await;
    if !revoked? {
        return Err(CommandError::UnknownKey(key_id.to_owned()));
    }
    tracing::info!(key_id, "API key revoked; tokens already issued stay valid until they expire");
    Ok(())
}
