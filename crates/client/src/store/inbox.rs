//! The inbox: decrypted messages and errors waiting for `recv`, in channel order, each handed out once.

use rusqlite::{params, Transaction};

use super::{execute_cached, sql, to_i64, to_u64, Store};
use crate::error::Error;

/// Something `recv` hands to the application, in channel order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InboxItem {
    Message {
        payload: Vec<u8>,
        sender: Vec<u8>,
        seq: u64,
        epoch: u64,
        /// When the relay stored it (ms since the Unix epoch), if it said.
        stored_at_ms: Option<u64>,
    },
    /// A message at `seq` that could not be processed: reported, never skipped silently.
    MlsFailure { seq: u64, reason: String },
    /// The relay refused to deliver this channel (e.g. retention expired).
    ChannelFailure { reason: String },
}

impl InboxItem {
    /// The channel seq the item stands at, if it stands at one.
    fn seq(&self) -> Option<u64> {
        match self {
            InboxItem::Message { seq, .. } | InboxItem::MlsFailure { seq, .. } => Some(*seq),
            InboxItem::ChannelFailure { .. } => None,
        }
    }
}

impl Store {
    /// Removes the oldest undelivered inbox items of `channel`, at most `max`, in ONE transaction and returns
    /// them in order (each item is handed out once). Messages are taken together; a failure row is taken alone,
    /// so the caller reports it at its position.
    ///
    /// `mark_taken` gets the seq of the newest item taken while the store is still locked, so a reader of
    /// [`newest_inbox_seq`](Self::newest_inbox_seq) and that mark (`delivered_seq`) never sees the rows gone
    /// without the mark moved: it would undercount, and `receive()` would return before the last message.
    pub fn take_inbox(&self, channel: &str, max: usize, mark_taken: impl FnOnce(u64)) -> Result<Vec<InboxItem>, Error> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(sql)?;
        let mut taken = Vec::new();
        let mut last_id = None;
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, kind, seq, epoch, sender, body, stored_at_ms FROM inbox WHERE channel = ?1 ORDER BY id LIMIT ?2",
                )
                .map_err(sql)?;
            let mut rows = stmt.query(params![channel, to_i64(max as u64)?]).map_err(sql)?;
            while let Some(row) = rows.next().map_err(sql)? {
                let item = inbox_item(
                    row.get(1).map_err(sql)?,
                    row.get(2).map_err(sql)?,
                    row.get(3).map_err(sql)?,
                    row.get(4).map_err(sql)?,
                    row.get(5).map_err(sql)?,
                    row.get(6).map_err(sql)?,
                )?;
                let is_message = matches!(item, InboxItem::Message { .. });
                if !is_message && !taken.is_empty() {
                    break;
                }
                last_id = Some(row.get::<_, i64>(0).map_err(sql)?);
                taken.push(item);
                if !is_message {
                    break;
                }
            }
        }
        let Some(last_id) = last_id else { return Ok(taken) };
        // The taken rows are exactly this channel's rows up to `last_id`: they were the oldest, in id order.
        tx.execute("DELETE FROM inbox WHERE channel = ?1 AND id <= ?2", params![channel, last_id]).map_err(sql)?;
        tx.commit().map_err(sql)?;
        if let Some(seq) = taken.iter().filter_map(InboxItem::seq).max() {
            mark_taken(seq);
        }
        drop(conn);
        self.checkpointer.committed();
        Ok(taken)
    }

    /// Sequence number of the newest message (or undecryptable message) waiting in `channel`'s inbox, if any.
    pub fn newest_inbox_seq(&self, channel: &str) -> Result<Option<u64>, Error> {
        let conn = self.conn()?;
        let newest: Option<i64> = conn
            .query_row("SELECT MAX(seq) FROM inbox WHERE channel = ?1 AND kind != 'channel_failure'", [channel], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        newest.map(to_u64).transpose()
    }
}

fn inbox_item(
    kind: String,
    seq: i64,
    epoch: i64,
    sender: Vec<u8>,
    body: Vec<u8>,
    stored_at_ms: Option<i64>,
) -> Result<InboxItem, Error> {
    let (seq, epoch, stored_at_ms) = (to_u64(seq)?, to_u64(epoch)?, stored_at_ms.map(to_u64).transpose()?);
    let text = || String::from_utf8_lossy(&body).into_owned();
    Ok(match kind.as_str() {
        "message" => InboxItem::Message { payload: body.clone(), sender, seq, epoch, stored_at_ms },
        "mls_failure" => InboxItem::MlsFailure { seq, reason: text() },
        "channel_failure" => InboxItem::ChannelFailure { reason: text() },
        other => return Err(Error::storage(format!("unknown inbox kind {other:?}"))),
    })
}

/// Appends `item` to `channel`'s inbox, inside the caller's transaction.
pub(super) fn insert_inbox(tx: &Transaction<'_>, channel: &str, item: &InboxItem) -> Result<(), Error> {
    let (kind, seq, epoch, sender, body, stored_at_ms): (&str, u64, u64, &[u8], Vec<u8>, Option<u64>) = match item {
        InboxItem::Message { payload, sender, seq, epoch, stored_at_ms } => {
            ("message", *seq, *epoch, sender, payload.clone(), *stored_at_ms)
        }
        InboxItem::MlsFailure { seq, reason } => ("mls_failure", *seq, 0, &[], reason.clone().into_bytes(), None),
        InboxItem::ChannelFailure { reason } => ("channel_failure", 0, 0, &[], reason.clone().into_bytes(), None),
    };
    execute_cached(
        tx,
        "INSERT INTO inbox (channel, kind, seq, epoch, sender, body, stored_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![channel, kind, to_i64(seq)?, to_i64(epoch)?, sender, body, stored_at_ms.map(to_i64).transpose()?],
    )
    .map_err(sql)?;
    Ok(())
}
