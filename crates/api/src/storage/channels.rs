//! Channel registrations, membership and invites.

use skytale_proto::ChannelName;
use sqlx::Row;

use super::{now_ms, Storage, StorageError};
use crate::secrets::{hash_secret, new_invite_token};

/// Outcome of registering a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRegistration {
    /// The channel is new and now owned by the caller.
    Created,
    /// It was already registered (by an account of the same org, since the org is part of the name).
    AlreadyRegistered,
}

impl Storage {
    /// Registers `channel` as owned by `account_id`.
    pub(crate) async fn register_channel(
        &self,
        channel: &ChannelName,
        account_id: &str,
    ) -> Result<ChannelRegistration, StorageError> {
        let [org, _, _] = channel.components();
        let done = sqlx::query(
            "INSERT INTO channels (name, org, owner_account, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(org)
        .bind(account_id)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(if done.rows_affected() == 1 {
            ChannelRegistration::Created
        } else {
            ChannelRegistration::AlreadyRegistered
        })
    }

    /// Whether `channel` is registered.
    pub(crate) async fn channel_exists(&self, channel: &ChannelName) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT 1 FROM channels WHERE name = $1")
            .bind(channel.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Whether the account may act on `channel`: the channel is in its org, or it holds a grant for it.
    pub(crate) async fn is_member(
        &self,
        account_id: &str,
        org: &str,
        channel: &ChannelName,
    ) -> Result<bool, StorageError> {
        let [channel_org, _, _] = channel.components();
        if channel_org == org {
            return Ok(true);
        }
        let row = sqlx::query("SELECT 1 FROM grants WHERE account_id = $1 AND channel = $2")
            .bind(account_id)
            .bind(channel.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Channels the account was granted through invites (these go into its tokens).
    pub(crate) async fn granted_channels(&self, account_id: &str) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT channel FROM grants WHERE account_id = $1 ORDER BY channel")
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| row.try_get(0).map_err(StorageError::from)).collect()
    }

    /// Creates an invite to `channel` usable `max_uses` times until `expires_at_ms`; returns the secret token.
    pub(crate) async fn create_invite(
        &self,
        channel: &ChannelName,
        created_by: &str,
        max_uses: i64,
        expires_at_ms: i64,
    ) -> Result<String, StorageError> {
        let token = new_invite_token();
        sqlx::query(
            "INSERT INTO invites (token_hash, channel, created_by, uses_left, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash_secret(&token))
        .bind(channel.as_str())
        .bind(created_by)
        .bind(max_uses)
        .bind(expires_at_ms)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(token)
    }
}
