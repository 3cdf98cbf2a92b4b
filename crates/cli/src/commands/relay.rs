//! `skytale relay`: runs the relay alone until SIGINT/SIGTERM.

use skytale_relay::{ChannelQuota, Relay, RelayAuth, RelayConfig, TokenVerifier};

use super::{default_dir, CommandError};
use crate::announce;
use crate::args::{Auth, RelayArgs};
use crate::shutdown::termination;

pub async fn run(args: RelayArgs) -> Result<(), CommandError> {
    let auth = stream_auth(&args).await?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_dir("relay", "--data-dir")?,
    };
    let mut config = RelayConfig::new(args.listen, data_dir);
    config.max_payload = args.max_payload;
    config.retention = args.retention;
    config.retention_bytes = args.retention_bytes;
    config.sync = args.sync.into();
    config.auth = auth;
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = args.max_connections_per_ip;
    config.max_streams_per_connection = args.max_streams_per_connection;
    config.handshake_timeout = args.handshake_timeout;
    config.channel_quota =
        ChannelQuota { per_account: args.max_channels_per_account, per_org: args.max_channels_per_org };
    config.max_subscriptions_per_stream = args.max_subscriptions_per_stream;
    config.max_names_per_stream = args.max_names_per_stream;
    config.idle_stream_timeout = args.idle_stream_timeout;
    config.token_grace = args.token_grace;
    config.max_in_flight_per_connection = args.max_in_flight_per_connection;
    config.max_in_flight_per_account = args.max_in_flight_per_account;
    config.admin_listen = args.admin_listen;
    config.tls = args.tls.files();
    if matches!(config.auth, RelayAuth::None) {
        tracing::warn!("--auth none: every stream may use every channel; for local development only");
    }

    // Listen for signals before announcing, so a signal sent right after the announcement is not missed.
    let terminated = termination().map_err(CommandError::Signals)?;
    let tls = config.tls.is_some();
    let relay = Relay::start(config).await?;
    announce::export("SKYTALE_RELAY", &announce::url_for(relay.local_addr(), tls)).map_err(CommandError::Stdout)?;
    terminated.await;
    relay.shutdown().await;
    Ok(())
}

/// The authentication the flags ask for. A key source given with `--auth none` is refused rather than ignored:
/// it means the operator expected tokens to be checked.
async fn stream_auth(args: &RelayArgs) -> Result<RelayAuth, CommandError> {
    let verifier = match (args.auth, &args.jwks_url, &args.jwt_key_file) {
        (Auth::None, None, None) => return Ok(RelayAuth::None),
        (Auth::None, _, _) => return Err(CommandError::KeySourceWithoutAuth),
        (Auth::Jwt, Some(url), _) => skytale_relay::fetch_verifier(url).await?,
        (Auth::Jwt, None, Some(path)) => TokenVerifier::from_key_file(path)?,
        (Auth::Jwt, None, None) => return Err(CommandError::NoKeySource),
    };
    Ok(RelayAuth::Jwt(Box::new(verifier)))
}
