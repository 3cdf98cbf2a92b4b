//! `--config FILE`: a TOML file with one table per server command (`[relay]`, `[api]`, `[dev]`) whose keys are
//! that command's flags without the leading dashes (`max-payload = 1048576`). The running command's table becomes
//! command-line flags placed before the user's own (see `settings`), so clap checks them exactly as it checks the
//! command line; every table is checked, so a mistake is found whichever command reads the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Command;
use toml::{Table, Value};

use crate::server_flags::{env_name, file_settings, SERVER_COMMANDS};

/// A config file that cannot be used; each names the file, and the table and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the config file {} is not valid TOML: {source}", path.display())]
    Syntax { path: PathBuf, source: Box<toml::de::Error> },
    #[error(
        "{}: `{key}` is outside a table: put each setting under the table of its command, {}",
        path.display(),
        tables()
    )]
    OutsideTable { path: PathBuf, key: String },
    #[error("{}: unknown table [{table}]: the tables are {}, one per command", path.display(), tables())]
    UnknownTable { path: PathBuf, table: String },
    #[error(
        "{}: [{table}] has no setting `{key}`: its settings are the flags of `skytale {table}` without the \
         leading dashes: {known}",
        path.display()
    )]
    UnknownKey { path: PathBuf, table: String, key: String, known: String },
    #[error("{}: [{table}] {key} is {found}, but it takes {expected}", path.display())]
    WrongType { path: PathBuf, table: String, key: String, found: String, expected: &'static str },
    #[error("{}: [{table}] {key}: {message}", path.display())]
    BadValue { path: PathBuf, table: String, key: String, message: String },
}

/// The tables a config file may have, for messages: `[relay], [api] or [dev]`.
fn tables() -> String {
    let names: Vec<String> = SERVER_COMMANDS.iter().map(|name| format!("[{name}]")).collect();
    names.join(", ")
}

/// Reads and checks the config file at `path`, and returns the table of `command_name` as command-line flags
/// (`--max-payload=1048576`). `root` is the whole `skytale` command without environment variables attached, so a
/// value is checked on its own, as written in the file. Settings whose environment variable is set are left
/// out: the environment outranks the file.
pub fn flags(path: &Path, root: &Command, command_name: &str) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let file: Table =
        text.parse().map_err(|source| ConfigError::Syntax { path: path.into(), source: Box::new(source) })?;
    let mut chosen = Vec::new();
    for (table, settings) in &file {
        let Value::Table(settings) = settings else {
            return Err(ConfigError::OutsideTable { path: path.into(), key: table.clone() });
        };
        let command = SERVER_COMMANDS
            .contains(&table.as_str())
            .then(|| root.find_subcommand(table))
            .flatten()
            .ok_or_else(|| ConfigError::UnknownTable { path: path.into(), table: table.clone() })?;
        let table_flags = table_flags(path, command, table, settings)?;
        if table == command_name {
            chosen = table_flags;
        }
    }
    Ok(chosen)
}

/// Checks one table against its command's flags and turns it into command-line flags.
fn table_flags(path: &Path, command: &Command, table: &str, settings: &Table) -> Result<Vec<OsString>, ConfigError> {
    let mut flags = Vec::new();
    for (key, value) in settings {
        let arg = file_settings(command).find(|(long, _)| long == key).map(|(_, arg)| arg).ok_or_else(|| {
            let known: Vec<&str> = file_settings(command).map(|(long, _)| long).collect();
            ConfigError::UnknownKey {
                path: path.into(),
                table: table.into(),
                key: key.clone(),
                known: known.join(", "),
            }
        })?;
        let wrong_type = |expected| ConfigError::WrongType {
            path: path.into(),
            table: table.into(),
            key: key.clone(),
            found: describe(value),
            expected,
        };
        let flag = if arg.get_action().takes_values() {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Integer(number) => number.to_string(),
                _ => return Err(wrong_type("a string or a whole number, as the flag takes on the command line")),
            };
            Some(format!("--{key}={text}"))
        } else {
            match value {
                Value::Boolean(on) => on.then(|| format!("--{key}")),
                _ => return Err(wrong_type("true or false")),
            }
        };
        let Some(flag) = flag else { continue };
        check_value(command, &flag).map_err(|message| ConfigError::BadValue {
            path: path.into(),
            table: table.into(),
            key: key.clone(),
            message,
        })?;
        if std::env::var_os(env_name(table, key)).is_none() {
            flags.push(flag.into());
        }
    }
    Ok(flags)
}

/// Runs clap's own parsing of `flag` alone, so a bad value gets the message the command line would give. Only
/// errors about the value count: a flag that needs another one (`--tls-cert` needs `--tls-key`) is judged with
/// the whole command line.
fn check_value(command: &Command, flag: &str) -> Result<(), String> {
    match command.clone().no_binary_name(true).try_get_matches_from([flag]) {
        Ok(_) => Ok(()),
        Err(error) => match error.kind() {
            clap::error::ErrorKind::MissingRequiredArgument | clap::error::ErrorKind::ArgumentConflict => Ok(()),
            _ => Err(error_text(&error)),
        },
    }
}

/// A clap error's message without its `error: ` prefix and the `--help` hint that follows it.
pub fn error_text(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    let message = message.split("\n\nFor more information").next().unwrap_or(message);
    message.split("\n\nUsage:").next().unwrap_or(message).trim_end().to_owned()
}

/// How a TOML value reads in a message, without repeating it (it could be a database URL with a password).
fn describe(value: &Value) -> String {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "a whole number",
        Value::Float(_) => "a decimal number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
    .to_owned()
}
