//! The embedded channel log, the default: one SQLite database (WAL) under the relay's data directory. One thread
//! ([`writer`]) owns the write connection and decides every sequence number and epoch, batching concurrent
//! appends into one transaction; readers use a pool of their own connections ([`store::ReadPool`]), which WAL
//! lets run alongside the writer. Channel groups, roster spans and creators live in the same database and change
//! in the same transaction as the messages that changed them ([`groups`]).

mod groups;
mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::{self, BoxFuture};
use skytale_admin::AtomicHistogram;
use skytale_proto::ChannelName;
use tokio::sync::oneshot;

use crate::append::AppendResult;
use crate::channel::{ChannelFeed, ChannelHub};
use crate::config::SyncMode;
use crate::error::RelayError;
use crate::log::{AppendRequest, ChannelLog, WriteRules};
use crate::stored::{Expiry, Membership, ReadLimit, StoreError, StoredMessage};
use store::ReadPool;
use writer::LogWriter;

pub use store::DB_FILE;

/// The log in one SQLite file.
pub struct SqliteLog {
    writer: LogWriter,
    reads: Arc<ReadPool>,
    /// Fed by the writer after each commit.
    hub: Arc<ChannelHub>,
    path: PathBuf,
}

impl SqliteLog {
    /// Opens (or creates) the log in `data_dir` and starts its writer, which records each append's latency in
    /// `append_latency`.
    pub fn open(
        data_dir: &Path,
        sync: SyncMode,
        rules: WriteRules,
        append_latency: AtomicHistogram,
    ) -> Result<Self, RelayError> {
        let path = data_dir.join(DB_FILE);
        let hub = Arc::new(ChannelHub::default());
        let writer = LogWriter::start(&path, sync, Arc::clone(&hub), rules, append_latency)?;
        Ok(Self { writer, reads: Arc::new(ReadPool::new(path.clone())), hub, path })
    }
}

impl ChannelLog for SqliteLog {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<oneshot::Receiver<AppendResult>, RelayError>> {
        Box::pin(self.writer.submit(request))
    }

    fn feed(&self, channel: &ChannelName) -> BoxFuture<'_, Result<Arc<ChannelFeed>, StoreError>> {
        Box::pin(future::ready(Ok(self.hub.feed(channel))))
    }

    fn read_from(
        &self,
        channel: &ChannelName,
        from_seq: u64,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<StoredMessage>, StoreError>> {
        let name = channel.to_string();
        Box::pin(self.reads.read(move |pool| pool.read_from(&name, from_seq, limit)))
    }

    fn first_seq_from_epoch(
        &self,
        channel: &ChannelName,
        epoch: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        let name = channel.to_string();
        Box::pin(self.reads.read(move |pool| pool.first_seq_from_epoch(&name, epoch)))
    }

    fn membership(&self, channel: &ChannelName, member: &[u8]) -> BoxFuture<'_, Result<Membership, StoreError>> {
        let (name, member) = (channel.to_string(), member.to_vec());
        Box::pin(self.reads.read(move |pool| pool.membership(&name, &member)))
    }

    fn expire(&self, cutoff_ms: i64, max_bytes: Option<u64>) -> BoxFuture<'_, Result<Vec<Expiry>, RelayError>> {
        Box::pin(self.writer.expire(cutoff_ms, max_bytes))
    }

    /// Opens the file afresh, so that a log removed or replaced under the running relay is noticed.
    fn probe(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store::probe(&path))
                .await
                .map_err(|e| StoreError::ReadAborted(e.to_string()))?
        })
    }

    fn channels_in_memory(&self) -> usize {
        self.hub.channels_in_memory()
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.writer.stop())
    }
}
