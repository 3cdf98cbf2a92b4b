//! Command-line interface of `skytale`, declared with clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "skytale",
    version,
    about = "Skytale: encrypted channels for AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (SLIM data plane + MLS Delivery Service).
    Relay(RelayArgs),
    /// Run a local development stack on 127.0.0.1 with embedded stores.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,
    /// Directory for the message log [default: ~/.skytale/relay].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Largest accepted MLS message, in bytes.
    #[arg(long, default_value_t = skytale_relay::DEFAULT_MAX_PAYLOAD)]
    pub max_payload: usize,
    /// How long messages are kept, e.g. 7d, 12h, 30m, 45s.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Keep at most this many bytes of messages per channel (oldest dropped first).
    #[arg(long)]
    pub retention_bytes: Option<u64>,
    /// Durability of acknowledged messages: `normal` survives a relay crash, `full` also a power loss.
    #[arg(long, value_enum, default_value_t = Sync::Normal)]
    pub sync: Sync,
    /// Stream authentication. Only `none` (accept anonymous streams, local development) exists so far;
    /// JWT verification comes with the API server.
    #[arg(long, value_enum, default_value_t = Auth::None)]
    pub auth: Auth,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory for every local store [default: ~/.skytale/dev].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Relay port on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 5000)]
    pub relay_port: u16,
    /// API server port on 127.0.0.1 (reserved: the API server is not part of this build yet).
    #[arg(long)]
    pub api_port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sync {
    Normal,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Auth {
    None,
}

impl From<Sync> for skytale_relay::SyncMode {
    fn from(sync: Sync) -> Self {
        match sync {
            Sync::Normal => skytale_relay::SyncMode::Normal,
            Sync::Full => skytale_relay::SyncMode::Full,
        }
    }
}
