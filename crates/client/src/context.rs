//! What every part of a running client shares: storage, the MLS client, the relay link and the API.
//!
//! Every channel's state holds the context, so the context holds no channel: the table of open channels belongs
//! to the client's core. Nothing reachable from here leads back to a channel, so once the client's handles and
//! its runtime's tasks are gone, so are the store, the MLS client and the groups.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::api::ApiClient;
use crate::mls::MlsClient;
use crate::store::Store;
use crate::transport::Relay;

pub(crate) struct Context {
    pub identity: Vec<u8>,
    /// Named in errors whose remedy is another data_dir.
    pub data_dir: PathBuf,
    pub store: Arc<Store>,
    pub mls: MlsClient,
    pub relay: Arc<Relay>,
    /// The API server, when `api_url` and `api_key` are configured (invites, joins, tokens).
    pub api: Option<Arc<ApiClient>>,
    /// Channels whose admission task (see `admission`) is running.
    pub admissions: Mutex<HashSet<String>>,
    /// Set once by `Client::close`; every `recv` then returns `Recv::Closed`.
    pub closed: watch::Sender<bool>,
}

impl Context {
    pub fn new(
        identity: Vec<u8>,
        data_dir: PathBuf,
        store: Arc<Store>,
        mls: MlsClient,
        relay: Arc<Relay>,
        api: Option<Arc<ApiClient>>,
    ) -> Self {
        Self {
            identity,
            data_dir,
            store,
            mls,
            relay,
            api,
            admissions: Mutex::new(HashSet::new()),
            closed: watch::Sender::new(false),
        }
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}
