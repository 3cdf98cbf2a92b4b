//! The public, blocking handle to one channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;
use crate::mls::{member_identity, mls_err, parse_key_package};
use crate::runtime::ClientCore;
use crate::state::{ChannelState, Lifecycle};
use crate::store::InboxItem;

/// A decrypted message from another member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub payload: Vec<u8>,
    /// The sender's identity bytes.
    pub sender: Vec<u8>,
    /// The relay's sequence number of this message in the channel.
    pub seq: u64,
    /// The MLS epoch the message was sent in.
    pub epoch: u64,
    /// When the relay stored the message, in milliseconds since the Unix epoch (the relay's clock, the same for
    /// every member); `None` if the relay did not say.
    pub stored_at_ms: Option<u64>,
}

/// The outcome of [`Channel::recv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recv {
    Message(Message),
    /// The timeout passed without a message.
    Timeout,
    /// The channel handle or the client was closed, or the channel was left.
    Closed,
}

/// The outcome of [`Channel::recv_many`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// At least one message, in channel order.
    Messages(Vec<Message>),
    /// The timeout passed without a message.
    Timeout,
    /// The channel handle or the client was closed, or the channel was left.
    Closed,
}

/// A `sync` whose head query is already on its way (see [`Channel::start_sync`]).
pub struct SyncRequest {
    channel: Channel,
    head: tokio::task::JoinHandle<Result<u64, Error>>,
}

impl SyncRequest {
    /// Waits until this member has applied everything up to the head the relay answered, as [`Channel::sync`].
    pub fn wait(self, timeout: Option<Duration>) -> Result<bool, Error> {
        let SyncRequest { channel, head } = self;
        match channel.client.block_on(channel.catch_up(head, timeout.map(|t| Instant::now() + t))) {
            Err(_) if channel.client.is_closing() => Ok(false),
            result => result,
        }
    }
}

/// A channel this client is a member of. Cheap to clone; clones share the same "closed" flag, while every
/// `open_channel` call returns an independent handle.
#[derive(Clone)]
pub struct Channel {
    client: Arc<ClientCore>,
    state: Arc<ChannelState>,
    closed: Arc<watch::Sender<bool>>,
}

impl Channel {
    pub(crate) fn new(client: Arc<ClientCore>, state: Arc<ChannelState>) -> Self {
        Self { client, state, closed: Arc::new(watch::Sender::new(false)) }
    }

    /// `org/namespace/service`.
    pub fn name(&self) -> String {
        self.state.name.to_string()
    }

    /// Fails with the channel's error if it can no longer be used: removed by another member, left, gone from the
    /// relay (whose data was reset), or its client closed. Every operation checks this first; a script that finds
    /// the channel already held (a re-run) checks it to know the channel is still good.
    pub fn ensure_active(&self) -> Result<(), Error> {
        self.state.ensure_active()
    }

    /// The MLS epoch of the channel as applied locally.
    pub fn epoch(&self) -> u64 {
        self.state.progress.borrow().epoch
    }

    /// Adds the owner of `key_package` (MLSMessage-encoded) and returns the Welcome (MLSMessage bytes) it joins
    /// with. Returns once the commit is applied.
    pub fn add_member(&self, key_package: &[u8]) -> Result<Vec<u8>, Error> {
        self.add_members(&[key_package.to_vec()])
    }

    /// Adds the owners of all `key_packages` in ONE commit (one epoch change) and returns the single Welcome
    /// (MLSMessage bytes) every one of them joins with. Returns once the commit is applied.
    pub fn add_members(&self, key_packages: &[Vec<u8>]) -> Result<Vec<u8>, Error> {
        let key_packages = key_packages.iter().map(|bytes| parse_key_package(bytes)).collect::<Result<Vec<_>, _>>()?;
        self.client.block_on(self.state.add_members(&key_packages))
    }

    /// Removes the member with `identity`.
    pub fn remove_member(&self, identity: &[u8]) -> Result<(), Error> {
        self.client.block_on(async {
            self.state
                .commit(|group| {
                    let member = group.member_with_identity(identity).map_err(|_| {
                        Error::Channel(format!(
                            "no member with identity {} in channel {}",
                            hex::encode(identity),
                            self.state.name
                        ))
                    })?;
                    if member.index == group.current_member_index() {
                        return Err(Error::Channel("a member cannot remove itself; use leave()".into()));
                    }
                    group
                        .commit_builder()
                        .remove_member(member.index)
                        .and_then(|b| b.build())
                        .map_err(mls_err("cannot remove member"))
                })
                .await
                .map(drop)
        })
    }

    /// Leaves the channel: proposes this member's removal (the others commit it) and forgets the channel.
    pub fn leave(&self) -> Result<(), Error> {
        self.client.block_on(self.state.leave(&self.client.channels))
    }

    /// Identities of the current members.
    pub fn members(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.client.block_on(async {
            let core = self.state.core.lock().await;
            Ok(core.group.roster().members_iter().map(|m| member_identity(&m)).collect())
        })
    }

    /// Commits an update of this member's leaf (new epoch, fresh key material).
    pub fn rotate_key(&self) -> Result<(), Error> {
        self.client.block_on(async {
            self.state.commit(|group| group.commit(Vec::new()).map_err(mls_err("cannot rotate key"))).await.map(drop)
        })
    }

    /// Encrypts and sends `payload`; returns once the relay has durably stored it. Concurrent calls from several
    /// threads overlap their relay round trips.
    pub fn send(&self, payload: &[u8]) -> Result<(), Error> {
        self.client.block_on(self.state.send(payload))
    }

    /// Sends `payloads` in this order: encrypts all of them (one state write), publishes them back to back on the
    /// stream and returns once the relay has durably stored every one. A payload over the relay's limit fails the
    /// call before anything is sent. On a failure after publishing began, the error says how many of the
    /// batch the relay had acknowledged (always the first ones, in order).
    pub fn send_many(&self, payloads: &[Vec<u8>]) -> Result<(), Error> {
        self.client.block_on(self.state.send_many(payloads))
    }

    /// The next message from another member, in channel order. `None` waits until one arrives or the channel is
    /// closed. A message that could not be processed, a removal, a refused subscription or a failure to store
    /// delivered messages is an `Err`.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Recv, Error> {
        Ok(match self.recv_many(1, timeout)? {
            Received::Messages(mut messages) => Recv::Message(messages.remove(0)),
            Received::Timeout => Recv::Timeout,
            Received::Closed => Recv::Closed,
        })
    }

    /// Like [`recv`](Self::recv), but hands out up to `max` messages that are already waiting, taken from the
    /// inbox in one store transaction (a failure is reported on its own, after the messages before it).
    pub fn recv_many(&self, max: usize, timeout: Option<Duration>) -> Result<Received, Error> {
        match self.client.block_on(self.next(max.max(1), timeout.map(|t| Instant::now() + t))) {
            // A close racing this call ends it like any other close.
            Err(_) if self.client.is_closing() => Ok(Received::Closed),
            result => result,
        }
    }

    async fn next(&self, max: usize, deadline: Option<Instant>) -> Result<Received, Error> {
        let mut progress = self.state.progress.subscribe();
        let mut client_closed = self.state.ctx.closed.subscribe();
        let mut handle_closed = self.closed.subscribe();
        loop {
            if *client_closed.borrow_and_update() || *handle_closed.borrow_and_update() {
                return Ok(Received::Closed);
            }
            // Mark the progress seen before reading the inbox, so a batch landing in between wakes us.
            let lifecycle = progress.borrow_and_update().lifecycle;
            if let Some(reason) = self.state.take_failure() {
                return Err(Error::Runtime(reason));
            }
            let items =
                self.state.ctx.store.take_inbox(self.state.name.as_str(), max, |seq| self.state.note_taken(seq))?;
            if !items.is_empty() {
                return self.hand_out(items);
            }
            match lifecycle {
                Lifecycle::Active => {}
                Lifecycle::Removed => return Err(self.state.removed_error()),
                Lifecycle::Lost => return Err(self.state.lost_error()),
                Lifecycle::Left => return Ok(Received::Closed),
            }
            if !wait_for_change(&mut progress, &mut client_closed, &mut handle_closed, deadline).await {
                return Ok(Received::Timeout);
            }
        }
    }

    /// Turns taken inbox items (messages only, or one failure) into what `recv_many` returns.
    fn hand_out(&self, items: Vec<InboxItem>) -> Result<Received, Error> {
        let mut messages = Vec::with_capacity(items.len());
        for item in items {
            match item {
                InboxItem::Message { payload, sender, seq, epoch, stored_at_ms } => {
                    messages.push(Message { payload, sender, seq, epoch, stored_at_ms })
                }
                InboxItem::MlsFailure { reason, .. } => return Err(Error::Mls(reason)),
                InboxItem::ChannelFailure { reason } => return Err(Error::Channel(reason)),
            }
        }
        Ok(Received::Messages(messages))
    }

    /// Waits until every message the relay had stored for this channel when `sync` was called is applied here,
    /// i.e. is in the inbox (or, for this member's own messages and commits, in the group state). Returns
    /// `false` if `timeout` passed first, or if the handle or client was closed or the channel left or removed
    /// meanwhile (`recv` reports those). One round trip to the relay plus the deliveries still in flight: it is
    /// how a consumer tells "nothing more was sent" from "more is on its way" without guessing a delay.
    pub fn sync(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        self.start_sync().wait(timeout)
    }

    /// Sends `sync`'s head query now, without waiting; [`SyncRequest::wait`] finishes it. The head covers what
    /// the relay had stored when the query left, so a caller that starts it first and waits for something else
    /// meanwhile (the manager's `receive`) gets the guarantee of the moment it started, minus the round trip.
    pub fn start_sync(&self) -> SyncRequest {
        // A member that has applied nothing yet follows the channel from its join epoch: messages before it
        // (down to the commit that added it) are never delivered to it, so they must not count.
        let start = self.state.progress.borrow().resume_point();
        let (relay, name) = (self.state.ctx.relay.clone(), self.state.name.clone());
        let head = self.client.spawn(async move { relay.head(&name, start).await });
        SyncRequest { channel: self.clone(), head }
    }

    async fn catch_up(
        &self,
        head: tokio::task::JoinHandle<Result<u64, Error>>,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        let answered = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, head).await {
                Ok(answered) => answered,
                Err(_) => return Ok(false),
            },
            None => head.await,
        };
        let head = answered.map_err(|e| Error::Runtime(format!("head query task failed: {e}")))??;
        let mut progress = self.state.progress.subscribe();
        let mut client_closed = self.state.ctx.closed.subscribe();
        let mut handle_closed = self.closed.subscribe();
        loop {
            if *client_closed.borrow_and_update() || *handle_closed.borrow_and_update() {
                return Ok(false);
            }
            let now = *progress.borrow_and_update();
            if now.applied_seq >= head {
                return Ok(true);
            }
            if now.lifecycle != Lifecycle::Active {
                return Ok(false);
            }
            if !wait_for_change(&mut progress, &mut client_closed, &mut handle_closed, deadline).await {
                return Ok(false);
            }
        }
    }

    /// Sequence number of the newest message delivered to this member's inbox, handed out by `recv` or still
    /// waiting (0: none). After `sync` returned `true`, every message the relay held at that call has a seq at
    /// or below it: a consumer that moves messages out of `recv` elsewhere (a listener thread) knows it has
    /// moved them all once it has moved the one with this seq.
    pub fn delivered_seq(&self) -> Result<u64, Error> {
        self.state.delivered_seq()
    }

    /// Ends `recv` on this handle (and its clones) with `Recv::Closed`. The channel itself stays joined.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// Waits until the channel's progress or either closed flag changes (`true`), or `deadline` passes (`false`).
async fn wait_for_change<P>(
    progress: &mut watch::Receiver<P>,
    client_closed: &mut watch::Receiver<bool>,
    handle_closed: &mut watch::Receiver<bool>,
    deadline: Option<Instant>,
) -> bool {
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = progress.changed() => true,
        _ = client_closed.changed() => true,
        _ = handle_closed.changed() => true,
        _ = expired => false,
    }
}
