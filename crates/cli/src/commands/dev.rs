//! `skytale dev`: the local development stack in one process, on 127.0.0.1, with every store under one
//! directory. For now that is the relay (authentication off, log under `DIR/relay`); the API server joins it
//! with its own issue, started after the relay and announcing `SKYTALE_API_URL` / `SKYTALE_API_KEY` likewise.

use std::net::{Ipv4Addr, SocketAddr};

use skytale_relay::{Relay, RelayConfig};

use super::{default_dir, CommandError};
use crate::announce;
use crate::args::DevArgs;
use crate::shutdown::termination;

pub async fn run(args: DevArgs) -> Result<(), CommandError> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => default_dir("dev", "--dir")?,
    };
    if let Some(port) = args.api_port {
        tracing::warn!(
            port,
            "the API server is not part of this build yet; --api-port is ignored"
        );
    }
    let terminated = termination().map_err(CommandError::Signals)?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, args.relay_port));
    let relay = Relay::start(RelayConfig::new(listen, dir.join("relay"))).await?;
    announce::export("SKYTALE_RELAY", &announce::url_for(relay.local_addr()))
        .map_err(CommandError::Stdout)?;
    tracing::info!(dir = %dir.display(), "dev stack running; Ctrl-C to stop");
    terminated.await;
    relay.shutdown().await;
    Ok(())
}
