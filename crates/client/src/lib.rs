//! Skytale client core: identity, MLS channels (mls-rs), durable data_dir, relay transport.

mod error;
mod identity;
mod mls;
mod store;

pub use error::Error;
mod frames;
mod transport;
