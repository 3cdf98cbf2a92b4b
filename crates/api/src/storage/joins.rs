//! Join requests: an invite redeemed with a key package, waiting for a member to add it and post the Welcome.

use skytale_proto::ChannelName;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{now_ms, Storage, StorageError};
use crate::secrets::{hash_secret, new_id};

/// Where a join request stands, as stored in `join_requests.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinStatus {
    Pending,
    Welcomed,
    Rejected,
}

impl JoinStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Welcomed => "welcomed",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "pending" => Ok(Self::Pending),
            "welcomed" => Ok(Self::Welcomed),
            "rejected" => Ok(Self::Rejected),
            other => Err(StorageError::Database(sqlx::Error::Decode(format!("unknown join status {other:?}").into()))),
        }
    }
}

/// A join request waiting for a member to add it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingJoin {
    pub join_id: String,
    /// Base64 of the joiner's identity.
    pub identity: String,
    /// Base64 of the joiner's MLS KeyPackage.
    pub key_package: String,
    pub created_at_ms: i64,
}

/// A join request as its joiner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinState {
    pub status: JoinStatus,
    /// Base64 Welcome, once welcomed.
    pub welcome: Option<String>,
}

/// Why an invite could not be redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinRefusal {
    /// No invite has this token.
    UnknownInvite,
    /// The invite is for a different channel than the one asked for.
    WrongChannel,
    /// The invite's TTL has passed.
    Expired,
    /// Every use of the invite has been consumed.
    UsedUp,
}

/// Why a Welcome (or a rejection) could not be recorded for a join request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WelcomeRefusal {
    /// No join request with this id exists for the channel.
    UnknownJoin(String),
    /// The join request was already welcomed or rejected.
    NotPending(String),
}

/// A join to record: the joiner's account, the invite it presents and its MLS material (base64).
pub(crate) struct JoinRequest<'a> {
    pub account_id: &'a str,
    pub channel: &'a ChannelName,
    pub invite_token: &'a str,
    pub identity: &'a str,
    pub key_package: &'a str,
}

impl Storage {
    /// Redeems an invite: consumes one use, grants the joiner the channel and records a pending join request,
    /// all in one transaction. The use is taken by a single conditional UPDATE, so concurrent joiners can never
    /// consume more uses than the invite has.
    pub(crate) async fn redeem_invite(
        &self,
        request: JoinRequest<'_>,
    ) -> Result<Result<String, JoinRefusal>, StorageError> {
        let now = now_ms();
        let token_hash = hash_secret(request.invite_token);
        let channel = request.channel.as_str();
        let mut tx = self.pool().begin().await?;
        let consumed = sqlx::query(
            "UPDATE invites SET uses_left = uses_left - 1 \
             WHERE token_hash = $1 AND channel = $2 AND uses_left > 0 AND expires_at > $3",
        )
        .bind(&token_hash)
        .bind(channel)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if consumed.rows_affected() != 1 {
            let refusal = refusal_reason(&mut tx, &token_hash, channel, now).await?;
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
        sqlx::query(
            "INSERT INTO grants (account_id, channel, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, channel) DO NOTHING",
        )
        .bind(request.account_id)
        .bind(channel)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let join_id = new_id("join");
        sqlx::query(
            "INSERT INTO join_requests \
             (id, channel, account_id, identity, key_package, status, welcome, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)",
        )
        .bind(&join_id)
        .bind(channel)
        .bind(request.account_id)
        .bind(request.identity)
        .bind(request.key_package)
        .bind(JoinStatus::Pending.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(join_id))
    }

    /// Pending join requests of `channel`, oldest first.
    pub(crate) async fn pending_joins(&self, channel: &ChannelName) -> Result<Vec<PendingJoin>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, identity, key_package, created_at FROM join_requests \
             WHERE channel = $1 AND status = $2 ORDER BY created_at, id",
        )
        .bind(channel.as_str())
        .bind(JoinStatus::Pending.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(pending_join).collect()
    }

    /// The state of join request `join_id` if it belongs to `account_id` (others' requests are invisible).
    pub(crate) async fn join_state(
        &self,
        join_id: &str,
        account_id: &str,
    ) -> Result<Option<(ChannelName, JoinState)>, StorageError> {
        let row = sqlx::query("SELECT channel, status, welcome FROM join_requests WHERE id = $1 AND account_id = $2")
            .bind(join_id)
            .bind(account_id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let channel: String = row.try_get(0)?;
        let channel =
            ChannelName::parse(&channel).map_err(|e| StorageError::Database(sqlx::Error::Decode(Box::new(e))))?;
        let status = JoinStatus::parse(&row.try_get::<String, _>(1)?)?;
        Ok(Some((channel, JoinState { status, welcome: row.try_get(2)? })))
    }

    /// Settles the pending join requests `join_ids` of `channel` as welcomed (with one shared Welcome, since one
    /// MLS commit can add several members) or rejected (`welcome` = None). All or nothing.
    pub(crate) async fn settle_joins(
        &self,
        channel: &ChannelName,
        join_ids: &[String],
        welcome: Option<&str>,
    ) -> Result<Result<(), WelcomeRefusal>, StorageError> {
        let status = if welcome.is_some() { JoinStatus::Welcomed } else { JoinStatus::Rejected };
        let mut tx = self.pool().begin().await?;
        for join_id in join_ids {
            let done = sqlx::query(
                "UPDATE join_requests SET status = $1, welcome = $2, updated_at = $3 \
                 WHERE id = $4 AND channel = $5 AND status = $6",
            )
            .bind(status.as_str())
            .bind(welcome)
            .bind(now_ms())
            .bind(join_id)
            .bind(channel.as_str())
            .bind(JoinStatus::Pending.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                let exists = sqlx::query("SELECT 1 FROM join_requests WHERE id = $1 AND channel = $2")
                    .bind(join_id)
                    .bind(channel.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                tx.rollback().await?;
                return Ok(Err(if exists {
                    WelcomeRefusal::NotPending(join_id.clone())
                } else {
                    WelcomeRefusal::UnknownJoin(join_id.clone())
                }));
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }
}

/// Explains a failed invite redemption, by reading the invite inside the same transaction.
async fn refusal_reason(
    tx: &mut Transaction<'static, Any>,
    token_hash: &str,
    channel: &str,
    now: i64,
) -> Result<JoinRefusal, StorageError> {
    let row = sqlx::query("SELECT channel, uses_left, expires_at FROM invites WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(JoinRefusal::UnknownInvite) };
    let (invite_channel, uses_left, expires_at): (String, i64, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Ok(if invite_channel != channel {
        JoinRefusal::WrongChannel
    } else if expires_at <= now {
        JoinRefusal::Expired
    } else {
        // Right channel, not expired: the remaining condition of the UPDATE is `uses_left > 0`.
        debug_assert!(uses_left <= 0);
        JoinRefusal::UsedUp
    })
}

fn pending_join(row: &AnyRow) -> Result<PendingJoin, StorageError> {
    Ok(PendingJoin {
        join_id: row.try_get(0)?,
        identity: row.try_get(1)?,
        key_package: row.try_get(2)?,
        created_at_ms: row.try_get(3)?,
    })
}
