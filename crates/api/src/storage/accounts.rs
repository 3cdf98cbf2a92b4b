//! Accounts and their API keys.

use sqlx::Row;

use super::{now_ms, Storage, StorageError};
use crate::secrets::{hash_secret, new_api_key, new_id};

/// An account: the principal tokens are issued to. Each belongs to one org, which owns the channels `org/*/*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub org: String,
    pub name: String,
}

/// An API key as created: the secret is only ever available here, the database keeps its hash.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// Public id used to revoke the key (safe to log).
    pub key_id: String,
    /// The secret `sk_live_…` value to hand to the user.
    pub secret: String,
    pub account: Account,
}

/// Who an API key belongs to, and whether it still works.
#[derive(Clone, Debug)]
pub struct KeyOwner {
    pub account: Account,
    pub revoked: bool,
}

impl Storage {
    /// Creates an account in `org` (an org exists as soon as one account names it). `org` must be a valid first
    /// component of a channel name; the caller validates it.
    pub async fn create_account(&self, org: &str, name: &str) -> Result<Account, StorageError> {
        let account = Account { id: new_id("acct"), org: org.to_owned(), name: name.to_owned() };
        sqlx::query("INSERT INTO accounts (id, org, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&account.id)
            .bind(&account.org)
            .bind(&account.name)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(account)
    }

    /// Issues a new API key for `account`.
    pub async fn create_api_key(&self, account: &Account) -> Result<NewApiKey, StorageError> {
        let key = NewApiKey { key_id: new_id("key"), secret: new_api_key(), account: account.clone() };
        sqlx::query("INSERT INTO api_keys (id, key_hash, account_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.key_id)
            .bind(hash_secret(&key.secret))
            .bind(&account.id)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(key)
    }

    /// Revokes the key with id `key_id`; returns false if no such live key exists.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(key_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Looks up the owner of an API key secret.
    pub(crate) async fn key_owner(&self, secret: &str) -> Result<Option<KeyOwner>, StorageError> {
        let row = sqlx::query(
            "SELECT a.id, a.org, a.name, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id \
             WHERE k.key_hash = $1",
        )
        .bind(hash_secret(secret))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(KeyOwner {
                account: Account { id: row.try_get(0)?, org: row.try_get(1)?, name: row.try_get(2)? },
                revoked: row.try_get::<Option<i64>, _>(3)?.is_some(),
            })
        })
        .transpose()
    }
}
