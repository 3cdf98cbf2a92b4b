//! `skytale relay`: runs the relay alone until SIGINT/SIGTERM.

use skytale_relay::{Relay, RelayConfig};

use super::{default_dir, CommandError};
use crate::announce;
use crate::args::RelayArgs;
use crate::shutdown::termination;

pub async fn run(args: RelayArgs) -> Result<(), CommandError> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_dir("relay", "--data-dir")?,
    };
    let mut config = RelayConfig::new(args.listen, data_dir);
    config.max_payload = args.max_payload;
    config.retention = args.retention;
    config.retention_bytes = args.retention_bytes;
    config.sync = args.sync.into();
    tracing::info!(auth = ?args.auth, "stream authentication");

    // Listen for signals before announcing, so a signal sent right after the announcement is not missed.
    let terminated = termination().map_err(CommandError::Signals)?;
    let relay = Relay::start(config).await?;
    announce::export("SKYTALE_RELAY", &announce::url_for(relay.local_addr()))
        .map_err(CommandError::Stdout)?;
    terminated.await;
    relay.shutdown().await;
    Ok(())
}
