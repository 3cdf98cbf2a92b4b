//! `skytale api`: runs the API server alone until SIGINT/SIGTERM; SIGHUP reads the signing keys again.

use skytale_api::{Api, ApiConfig, ApiQuotas};

use super::{api_data_dir, CommandError};
use crate::announce;
use crate::args::ApiArgs;
use crate::hangup::Hangups;
use crate::shutdown::termination;

pub async fn run(args: ApiArgs) -> Result<(), CommandError> {
    let data_dir = api_data_dir(args.data_dir)?;
    let mut config = ApiConfig::in_data_dir(&data_dir, args.listen);
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    if let Some(key_file) = args.key_file {
        config.key_file = key_file;
    }
    config.token_lifetime = args.token_lifetime;
    config.admin_listen = args.admin_listen;
    config.quotas = ApiQuotas {
        requests_per_second: args.requests_per_second,
        request_burst: args.request_burst,
        invites_per_hour: args.invites_per_hour,
    };
    config.tls = args.tls.files();

    // Listen for signals before announcing, so a signal sent right after the announcement is not missed.
    let terminated = termination().map_err(CommandError::Signals)?;
    let tls = config.tls.is_some();
    let hangups = Hangups::register().map_err(CommandError::Signals)?;
    let api = Api::start(config).await?;
    announce::export("SKYTALE_API_URL", &announce::url_for(api.local_addr(), tls)).map_err(CommandError::Stdout)?;
    hangups
        .reload_until(terminated, || async {
            // The API logs the keys it read, or the error naming the file.
            let _ = api.reload_signing_keys();
        })
        .await;
    api.shutdown().await?;
    Ok(())
}
