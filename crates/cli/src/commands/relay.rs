//! `skytale relay`: runs the relay alone until SIGINT/SIGTERM, then drains it (docs/operations.md, "Graceful
//! drain"); SIGHUP learns the trusted keys again.

use skytale_relay::{ChannelQuota, JwksFollow, LogStore, LogStreamConfig, Relay, RelayAuth, RelayConfig};

use super::{default_dir, CommandError};
use crate::announce;
use crate::args::{Auth, RelayArgs};
use crate::hangup::Hangups;
use crate::shutdown::termination;

pub async fn run(args: RelayArgs) -> Result<(), CommandError> {
    let auth = stream_auth(&args).await?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_dir("relay", "--data-dir")?,
    };
    let mut config = RelayConfig::new(args.listen, data_dir);
    if let Some(servers) = args.store {
        let stream = LogStreamConfig {
            stream: args.nats_stream,
            replicas: args.nats_replicas,
            duplicate_window: args.nats_duplicate_window,
            ..LogStreamConfig::default()
        };
        config.store = LogStore::JetStream { servers, stream };
    }
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
    config.max_streams_per_account = args.account_quotas.max_streams_per_account;
    config.publish_rate = args.account_quotas.publish_rate();
    config.admin_listen = args.admin_listen;
    config.tls = args.tls.files();
    config.drain_timeout = args.drain_timeout;
    if matches!(config.auth, RelayAuth::None) {
        tracing::warn!("--auth none: every stream may use every channel; for local development only");
    }

    // Listen for signals before announcing, so a signal sent right after the announcement is not missed.
    let terminated = termination().map_err(CommandError::Signals)?;
    let tls = config.tls.is_some();
    let hangups = Hangups::register().map_err(CommandError::Signals)?;
    let relay = Relay::start(config).await?;
    announce::export("SKYTALE_RELAY", &announce::url_for(relay.local_addr(), tls)).map_err(CommandError::Stdout)?;
    hangups
        .reload_until(terminated, || async {
            // A failure is logged by the relay, which keeps the keys it has.
            if let Ok(kids) = relay.reload_keys().await {
                tracing::info!(keys = kids.join(" "), "trusted keys read again");
            }
        })
        .await;
    relay.shutdown().await;
    Ok(())
}

/// The authentication the flags ask for. A key source given with `--auth none` is refused rather than ignored:
/// it means the operator expected tokens to be checked.
async fn stream_auth(args: &RelayArgs) -> Result<RelayAuth, CommandError> {
    match (args.auth, &args.jwks_url, &args.jwt_key_file) {
        (Auth::None, None, None) => Ok(RelayAuth::None),
        (Auth::None, _, _) => Err(CommandError::KeySourceWithoutAuth),
        (Auth::Jwt, Some(url), _) => {
            let follow = JwksFollow {
                refresh_interval: args.jwks_refresh_interval,
                ca_file: args.jwks_ca_file.clone(),
                ..JwksFollow::new(url)
            };
            Ok(RelayAuth::jwks(follow).await?)
        }
        (Auth::Jwt, None, Some(path)) => Ok(RelayAuth::key_file(path)?),
        (Auth::Jwt, None, None) => Err(CommandError::NoKeySource),
    }
}
