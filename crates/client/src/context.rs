//! What every part of a running client shares: storage, the MLS client, the relay link and the open channels.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::api::ApiClient;
use crate::error::Error;
use crate::mls::MlsClient;
use crate::state::ChannelState;
use crate::store::Store;
use crate::transport::Relay;

pub(crate) struct Context {
    pub identity: Vec<u8>,
    pub store: Arc<Store>,
    pub mls: MlsClient,
    pub relay: Arc<Relay>,
    /// The API server, when `api_url` and `api_key` are configured (invites, joins, tokens).
    pub api: Option<Arc<ApiClient>>,
    /// Channels whose admission task (see `admission`) is running.
    pub admissions: Mutex<HashSet<String>>,
    channels: Mutex<HashMap<String, Arc<ChannelState>>>,
    /// Set once by `Client::close`; every `recv` then returns `Recv::Closed`.
    pub closed: watch::Sender<bool>,
}

impl Context {
    pub fn new(
        identity: Vec<u8>,
        store: Arc<Store>,
        mls: MlsClient,
        relay: Arc<Relay>,
        api: Option<Arc<ApiClient>>,
    ) -> Self {
        Self {
            identity,
            store,
            mls,
            relay,
            api,
            admissions: Mutex::new(HashSet::new()),
            channels: Mutex::new(HashMap::new()),
            closed: watch::Sender::new(false),
        }
    }

    pub fn channels(&self) -> Result<MutexGuard<'_, HashMap<String, Arc<ChannelState>>>, Error> {
        self.channels.lock().map_err(|_| Error::Runtime("channel table lock poisoned".into()))
    }

    pub fn channel(&self, name: &str) -> Result<Option<Arc<ChannelState>>, Error> {
        Ok(self.channels()?.get(name).cloned())
    }

    /// Empties the channel table. Each channel's state points back at this context, so until the table lets go
    /// of them the context, its store (SQLite connections) and the MLS client would keep each other alive after
    /// the client is closed or dropped.
    pub fn release_channels(&self) {
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}
