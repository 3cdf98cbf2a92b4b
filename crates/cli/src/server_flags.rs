//! The server commands' flags by the names they go by outside the command line: `SKYTALE_RELAY_MAX_PAYLOAD` in
//! the environment, `max-payload` in a config file's `[relay]` table. One rule for every flag, so a new one needs
//! no code of its own.

use clap::{Arg, ArgAction, Command};

/// The commands whose flags have environment variables and a config-file table, named as the table is.
pub const SERVER_COMMANDS: [&str; 3] = ["relay", "api", "dev"];

/// The environment variable of a server command's flag: `SKYTALE_<COMMAND>_<FLAG>`, upper case, dashes as
/// underscores. The client's variables (`SKYTALE_RELAY`, `SKYTALE_API_URL`, `SKYTALE_API_KEY`, ...) are none of
/// these (a test checks it), so a shell set up for the SDK does not change a server.
pub fn env_name(command: &str, long: &str) -> String {
    format!("SKYTALE_{command}_{long}").to_uppercase().replace('-', "_")
}

/// The flags of a server command that hold a setting, by long name: all but `--help`.
pub fn flags(command: &Command) -> impl Iterator<Item = (&str, &Arg)> {
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong))
        .filter_map(|arg| arg.get_long().map(|long| (long, arg)))
}

/// The keys a config-file table may have: the command's flags but `--config`.
pub fn file_settings(command: &Command) -> impl Iterator<Item = (&str, &Arg)> {
    flags(command).filter(|(long, _)| *long != "config")
}
