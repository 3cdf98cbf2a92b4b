//! `skytale`: runs Skytale's services (relay, API server, local dev stack) and provisions API keys. Exports go
//! to stdout, logs to stderr (`logging`). The servers' settings also come from environment variables and a
//! config file (`settings`).

mod announce;
mod args;
mod commands;
mod config_file;
mod dev_key;
mod duration;
mod hangup;
mod logging;
mod org;
mod server_flags;
mod settings;
mod shutdown;

use std::process::ExitCode;

use args::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = settings::parse_from(std::env::args_os().collect()).unwrap_or_else(|error| error.exit());
    logging::init(settings.log_format);
    let result = match settings.cli.command {
        Command::Relay(args) => commands::relay::run(args).await,
        Command::Dev(args) => commands::dev::run(args).await,
        Command::Api(args) => commands::api::run(args).await,
        Command::Keys(args) => commands::keys::run(args.command).await,
        Command::Mcp(args) => commands::mcp::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
