//! `skytale`: runs Skytale's services (relay, API server, local dev stack) and provisions API keys. Exports go
//! to stdout, logs to stderr (`RUST_LOG` filters them; default `info`).

mod announce;
mod args;
mod commands;
mod dev_key;
mod duration;
mod hangup;
mod org;
mod shutdown;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a terminal: escape codes in a log file are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let result = match cli.command {
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
