//! Bytes in flight: deliveries a cursor has read from the log (or taken from a feed's cache) and that are not
//! yet written to the client's socket, bounded per connection and per account (docs/relay.md, "Memory and
//! backpressure").
//!
//! A delivery's bytes are shared by every subscriber, so fan-out to many readers costs little. What sharing
//! cannot bound is many subscribers that never read, each holding different messages (catch-up reads from
//! SQLite are a private copy per cursor). So a cursor reserves room in its connection's budget and its account's
//! before it reads a batch, and each delivery carries its share of that reservation until HTTP/2 has written it
//! to the socket (or dropped it with the stream): a subscriber over budget waits, its cursor stops reading the
//! log, and it catches up from the durable log once its client reads. Nothing is ever dropped to stay in budget.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A semaphore counts at most `u32::MAX` permits in one acquisition, so a budget is at most that many bytes.
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// A budget's size in permits: at least one byte, since an empty budget would stop every delivery for good.
fn budget_size(bytes: usize) -> u32 {
    permits(bytes).max(1)
}

/// The budget of one connection, shared by all its streams. Created when the connection is accepted, so that
/// every stream on it draws from the same one.
#[derive(Clone, Debug)]
pub struct ConnectionBudget {
    semaphore: Arc<Semaphore>,
    capacity: u32,
}

impl ConnectionBudget {
    pub fn new(bytes: usize) -> Self {
        let capacity = budget_size(bytes);
        Self { semaphore: Arc::new(Semaphore::new(capacity as usize)), capacity }
    }
}

type AccountTable = HashMap<String, Weak<AccountBudget>>;

/// Every account's budget while one of its streams is open or its bytes are in flight, and the relay's total.
pub struct InFlight {
    per_account: usize,
    accounts: Arc<Mutex<AccountTable>>,
    total: Arc<AtomicUsize>,
}

fn lock(table: &Mutex<AccountTable>) -> MutexGuard<'_, AccountTable> {
    table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl InFlight {
    pub fn new(per_account: usize) -> Self {
        Self { per_account, accounts: Arc::default(), total: Arc::default() }
    }

    /// The budget a stream's cursors draw from: its connection's and, for an authenticated stream, its
    /// account's (anonymous streams, on a relay without authentication, have no account to bound).
    pub fn stream_budget(&self, connection: ConnectionBudget, account: Option<&str>) -> DeliveryBudget {
        let account = account.map(|account| self.account(account));
        DeliveryBudget { connection, account, total: Arc::clone(&self.total) }
    }

    fn account(&self, account: &str) -> Arc<AccountBudget> {
        let mut table = lock(&self.accounts);
        if let Some(budget) = table.get(account).and_then(Weak::upgrade) {
            return budget;
        }
        let capacity = budget_size(self.per_account);
        let budget = Arc::new(AccountBudget {
            account: account.to_owned(),
            semaphore: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            table: Arc::downgrade(&self.accounts),
        });
        table.insert(account.to_owned(), Arc::downgrade(&budget));
        budget
    }

    /// Bytes in flight on the whole relay.
    pub fn bytes(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// One account's budget. It lives as long as a stream of the account or a delivery counted against it, so bytes
/// still in flight after their stream ended keep counting.
struct AccountBudget {
    account: String,
    semaphore: Arc<Semaphore>,
    capacity: u32,
    table: Weak<Mutex<AccountTable>>,
}

impl Drop for AccountBudget {
    /// The account's last stream and delivery are gone: forget it, unless a new budget already took its place.
    fn drop(&mut self) {
        let Some(table) = self.table.upgrade() else {
            return;
        };
        let mut table = lock(&table);
        if table.get(&self.account).is_some_and(|entry| entry.strong_count() == 0) {
            table.remove(&self.account);
        }
    }
}

/// What one stream's deliveries draw from.
#[derive(Clone)]
pub struct DeliveryBudget {
    connection: ConnectionBudget,
    account: Option<Arc<AccountBudget>>,
    total: Arc<AtomicUsize>,
}

impl DeliveryBudget {
    /// The most one reservation can get: the smaller of the two budgets.
    pub fn capacity(&self) -> u32 {
        let account = self.account.as_ref().map_or(u32::MAX, |account| account.capacity);
        self.connection.capacity.min(account)
    }

    /// Whether a [`reserve`](Self::reserve) of `bytes` would find them free in both budgets right now.
    pub fn has_room(&self, bytes: usize) -> bool {
        let bytes = permits(bytes).min(self.capacity()) as usize;
        self.connection.semaphore.available_permits() >= bytes
            && self.account.as_ref().is_none_or(|account| account.semaphore.available_permits() >= bytes)
    }

    /// Waits until `bytes` are free in the connection's budget and then in the account's, and takes them. A
    /// request larger than a whole budget gets the whole budget, so even a message larger than the budget is
    /// sent, alone. The connection is always taken first, so two waiting cursors never hold each other's half.
    pub async fn reserve(&self, bytes: usize) -> Grant {
        let capacity = self.capacity();
        let whole = permits(bytes) >= capacity;
        let bytes = permits(bytes).min(capacity);
        // The semaphores are never closed, so acquiring only ever waits.
        let connection =
            Arc::clone(&self.connection.semaphore).acquire_many_owned(bytes).await.expect("budget never closed");
        let account = match &self.account {
            Some(budget) => {
                let permit =
                    Arc::clone(&budget.semaphore).acquire_many_owned(bytes).await.expect("budget never closed");
                Some((permit, Arc::clone(budget)))
            }
            None => None,
        };
        self.total.fetch_add(bytes as usize, Ordering::Relaxed);
        Grant { bytes: bytes as usize, whole, connection, account, total: Arc::clone(&self.total) }
    }
}

/// Bytes taken from a stream's budgets; given back when dropped.
pub struct Grant {
    bytes: usize,
    /// Whether this is all a budget can give (a reservation at least as large as the budget).
    whole: bool,
    connection: OwnedSemaphorePermit,
    account: Option<(OwnedSemaphorePermit, Arc<AccountBudget>)>,
    total: Arc<AtomicUsize>,
}

impl Grant {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Splits `bytes` off this grant, or `None` if it holds fewer. A grant of a whole budget gives what it has
    /// left to a message larger than that: such a message is sent with the whole budget to itself.
    pub fn take(&mut self, bytes: usize) -> Option<Grant> {
        let bytes = if self.whole && self.bytes > 0 { bytes.min(self.bytes) } else { bytes };
        if bytes > self.bytes {
            return None;
        }
        let connection = self.connection.split(bytes)?;
        let account = match &mut self.account {
            Some((permit, budget)) => Some((permit.split(bytes)?, Arc::clone(budget))),
            None => None,
        };
        // All of a whole grant is still a whole grant.
        let whole = self.whole && bytes == self.bytes;
        self.bytes -= bytes;
        Some(Grant { bytes, whole, connection, account, total: Arc::clone(&self.total) })
    }

    /// Keeps `bytes` of this grant (all of it if it holds fewer) and gives the rest back to the budgets.
    pub fn shrink(mut self, bytes: usize) -> Grant {
        if let Some(excess) = self.bytes.checked_sub(bytes).and_then(|excess| self.take(excess)) {
            drop(excess);
        }
        self
    }

    /// Adds `other` (taken from the same stream's budget) to this grant.
    pub fn merge(&mut self, mut other: Grant) {
        let bytes = other.bytes;
        if let Some(moved) = other.connection.split(bytes) {
            self.connection.merge(moved);
        }
        if let (Some((mine, _)), Some((theirs, _))) = (&mut self.account, &mut other.account) {
            if let Some(moved) = theirs.split(bytes) {
                mine.merge(moved);
            }
        }
        other.bytes = 0;
        self.bytes += bytes;
    }

    /// `frame` counted against the budgets until the last handle to it is dropped: after HTTP/2 wrote it to the
    /// socket, or with the stream.
    pub fn attach(self, frame: Bytes) -> Bytes {
        Bytes::from_owner(Counted { frame, _grant: self })
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A frame and the grant it holds.
struct Counted {
    frame: Bytes,
    _grant: Grant,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}
