//! One module per subcommand.

pub mod dev;
pub mod relay;

use std::path::PathBuf;

/// Errors a command reports before exiting with status 1.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Relay(#[from] skytale_relay::RelayError),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("cannot listen for termination signals: {0}")]
    Signals(std::io::Error),
    #[error("HOME is not set: pass {flag} explicitly")]
    NoHome { flag: &'static str },
}

/// `~/.skytale/<name>`, the default location of a command's data.
pub fn default_dir(name: &str, flag: &'static str) -> Result<PathBuf, CommandError> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(CommandError::NoHome { flag })?;
    Ok(PathBuf::from(home).join(".skytale").join(name))
}
