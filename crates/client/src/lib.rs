//! Skytale client core: identity, MLS channels (mls-rs), durable data_dir, relay transport.
//!
//! The public API is blocking and thread-safe: [`Client`] and [`Channel`] are cheap `Clone + Send + Sync`
//! handles over one tokio runtime per client. See `docs/client.md` for the data_dir layout and recovery rules,
//! and `docs/protocol.md` for the wire protocol.

mod admission;
mod api;
mod channel;
mod client;
mod context;
mod credentials;
mod error;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
mod identity;
mod inbound;
mod interrupt;
mod joining;
mod message_size;
mod mls;
mod operations;
mod ratchet_gap;
mod runtime;
mod signing;
mod state;
mod store;
mod tls;
mod transport;

pub use channel::{Channel, Message, Received, Recv, SyncRequest};
pub use client::{Client, ClientConfig};
pub use error::Error;
pub use interrupt::while_checking;
pub use tls::CA_FILE_ENV;
