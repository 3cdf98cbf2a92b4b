//! Where the settings of a server command (`skytale relay`, `api`, `dev`) come from, the first that has one:
//! the command line, an environment variable, the `--config` file, the built-in default. Every flag of those
//! commands gets its environment variable (`SKYTALE_RELAY_MAX_PAYLOAD` for `skytale relay --max-payload`) and
//! its config key (`max-payload` in `[relay]`) here, by rule, so a flag added to `args` needs nothing more.
//!
//! The file's settings become flags placed before the user's own, on commands whose flags override themselves:
//! the command line wins over the file, and clap checks the file's values, and how they combine with the rest
//! (`--tls-cert` needs `--tls-key`), exactly as it checks the command line. A setting whose environment
//! variable is set is left out of the file's flags, so clap reads the variable instead.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches};

use crate::args::Cli;
use crate::config_file::{self, ConfigError};
use crate::logging::LogFormat;
use crate::server_flags::{self, env_name, SERVER_COMMANDS};

/// Ids of the flags every server command has besides its own.
const CONFIG: &str = "config";
const LOG_FORMAT: &str = "log_format";

/// The parsed command line, with the log format of a server command (text for the others).
#[derive(Debug)]
pub struct Settings {
    pub cli: Cli,
    pub log_format: LogFormat,
}

/// Why `skytale` cannot start with these settings.
#[derive(Debug)]
pub enum SettingsError {
    /// Clap's own error (or `--help`/`--version`), with notes saying which flags the environment or the config
    /// file set.
    Clap {
        error: clap::Error,
        notes: Vec<String>,
    },
    Config(ConfigError),
}

impl SettingsError {
    /// Prints the error (help and version on stdout, as clap does) and exits: 0 for help, 2 for a usage error.
    pub fn exit(&self) -> ! {
        match self {
            Self::Clap { error, notes } if notes.is_empty() || !error.use_stderr() => error.exit(),
            Self::Clap { error, notes } => {
                eprint!("{}", error.render());
                for note in notes {
                    eprintln!("note: {note}");
                }
                std::process::exit(error.exit_code())
            }
            Self::Config(error) => {
                eprintln!("error: {error}");
                std::process::exit(2)
            }
        }
    }
}

/// `skytale`'s command with `--config` and `--log-format` on every server command, whose flags override
/// themselves (so the user's come after the file's and win), without environment variables: a config file's
/// values are checked against it alone.
pub fn without_environment() -> Command {
    SERVER_COMMANDS.into_iter().fold(Cli::command(), |root, name| {
        root.mut_subcommand(name, |command| {
            command.args_override_self(true).arg(config_arg(name)).arg(log_format_arg())
        })
    })
}

/// [`without_environment`] with every server flag reading its environment variable when not on the command
/// line. The variables' values are hidden from `--help`: `--database-url` may hold a password.
fn with_environment(root: Command) -> Command {
    SERVER_COMMANDS.into_iter().fold(root, |root, name| {
        root.mut_subcommand(name, |command| {
            let named: Vec<String> = server_flags::flags(&command).map(|(long, _)| long.to_owned()).collect();
            command.mut_args(|arg| match arg.get_long() {
                Some(long) if named.iter().any(|n| n == long) => {
                    let variable = env_name(name, long);
                    arg.env(variable).hide_env_values(true)
                }
                _ => arg,
            })
        })
    })
}

fn config_arg(command: &str) -> Arg {
    Arg::new(CONFIG).long("config").value_name("FILE").value_parser(clap::value_parser!(PathBuf)).help(format!(
        "Read settings from the [{command}] table of this TOML file, keys spelled like the flags \
         (docs/skytale.example.toml); the command line and environment variables override it"
    ))
}

fn log_format_arg() -> Arg {
    Arg::new(LOG_FORMAT)
        .long("log-format")
        .value_name("FORMAT")
        .value_parser(clap::value_parser!(LogFormat))
        .default_value("text")
        .help("Log lines on stderr: `text` for people, `json` one object per line, with the fields of its spans")
}

/// Parses `args` (the program name first) with the environment and the config file the command names.
pub fn parse_from(args: Vec<OsString>) -> Result<Settings, SettingsError> {
    let plain = without_environment();
    let root = with_environment(plain.clone());
    let sources = with_config_file(&plain, &root, args).map_err(SettingsError::Config)?;
    let matches = root
        .try_get_matches_from(&sources.args)
        .map_err(|error| SettingsError::Clap { notes: sources.notes(&error), error })?;
    let log_format = matches
        .subcommand()
        .and_then(|(_, command)| command.try_get_one::<LogFormat>(LOG_FORMAT).ok().flatten().copied())
        .unwrap_or_default();
    let cli = Cli::from_arg_matches(&matches).map_err(|error| SettingsError::Clap { error, notes: Vec::new() })?;
    Ok(Settings { cli, log_format })
}

/// The command line as clap parses it, with the config file's flags spliced in, and what set which flag.
struct Sources {
    args: Vec<OsString>,
    /// The server command being run, if one is.
    command: Option<String>,
    /// The config file read, and the keys of its table it applied.
    file: Option<(PathBuf, Vec<String>)>,
}

/// Finds the config file the command line or environment names (a first, forgiving parse: a flag the file
/// supplies may be missing yet) and splices its table's flags in right after the command's name.
fn with_config_file(plain: &Command, root: &Command, args: Vec<OsString>) -> Result<Sources, ConfigError> {
    let first = root.clone().ignore_errors(true).try_get_matches_from(&args).ok();
    let running = first.as_ref().and_then(ArgMatches::subcommand);
    let command = running.map(|(name, _)| name.to_owned()).filter(|name| SERVER_COMMANDS.contains(&name.as_str()));
    let path = running.and_then(|(_, matches)| matches.try_get_one::<PathBuf>(CONFIG).ok().flatten()).cloned();
    let (Some(name), Some(path)) = (&command, path) else {
        return Ok(Sources { args, command, file: None });
    };
    // Right after the command's name, the argument after the program's: `skytale` has no options of its own
    // but --help and --version, which end the parse before any command.
    let position = 2;
    let flags = config_file::flags(&path, plain, name)?;
    let keys = flags.iter().map(|flag| flag_name(&flag.to_string_lossy()).to_owned()).collect();
    let mut spliced = args[..position].to_vec();
    spliced.extend(flags);
    spliced.extend_from_slice(&args[position..]);
    Ok(Sources { args: spliced, command, file: Some((path, keys)) })
}

/// `max-payload` of `--max-payload=1`, `--max-payload <MAX_PAYLOAD>` or `--tls`.
fn flag_name(flag: &str) -> &str {
    let name = flag.trim_start_matches('-');
    name.split([' ', '=']).next().unwrap_or(name)
}

impl Sources {
    /// For each flag a clap error names, where its value came from if not the command line: its environment
    /// variable (named, its value not repeated) or the config file.
    fn notes(&self, error: &clap::Error) -> Vec<String> {
        let Some(command) = &self.command else { return Vec::new() };
        let named = [ContextKind::InvalidArg, ContextKind::PriorArg].into_iter().filter_map(|kind| error.get(kind));
        let flags: Vec<&str> = named
            .flat_map(|value| match value {
                ContextValue::String(flag) => vec![flag.as_str()],
                ContextValue::Strings(flags) => flags.iter().map(String::as_str).collect(),
                _ => Vec::new(),
            })
            .map(flag_name)
            .collect();
        let mut notes = Vec::new();
        for flag in flags {
            let variable = env_name(command, flag);
            if std::env::var_os(&variable).is_some() {
                notes.push(format!("--{flag} is set by the environment variable {variable}"));
            } else if let Some((path, _)) = self.file.as_ref().filter(|(_, keys)| keys.iter().any(|k| k == flag)) {
                notes.push(format!("--{flag} is set by `{flag}` in [{command}] of {}", path.display()));
            }
        }
        let combining = matches!(error.kind(), ErrorKind::MissingRequiredArgument | ErrorKind::ArgumentConflict);
        if let Some((path, keys)) =
            self.file.as_ref().filter(|(_, keys)| notes.is_empty() && combining && !keys.is_empty())
        {
            notes.push(format!("[{command}] of {} sets {}", path.display(), keys.join(", ")));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_flags::file_settings;

    /// docs/skytale.example.toml: the file `settings` promises lists every setting of every server command.
    const EXAMPLE: &str = include_str!("../../../docs/skytale.example.toml");

    /// Each table's keys in the example, with the value of those not commented out.
    fn example_keys() -> Vec<(String, String, Option<toml::Value>)> {
        let active: toml::Table = EXAMPLE.parse().expect("the example is TOML");
        let mut keys = Vec::new();
        let mut table = String::new();
        for line in EXAMPLE.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
                table = name.to_owned();
            } else if let Some((key, _)) = line
                .trim_start_matches("# ")
                .split_once(" = ")
                .filter(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            {
                let value = active.get(&table).and_then(|settings| settings.get(key)).cloned();
                keys.push((table.clone(), key.to_owned(), value));
            }
        }
        keys
    }

    #[test]
    fn the_example_config_lists_every_setting_with_its_default() {
        let mut root = without_environment();
        // Built, as for parsing: a switch's default ("false") is only set then.
        root.build();
        let keys = example_keys();
        for name in SERVER_COMMANDS {
            let command = root.find_subcommand(name).expect("a server command");
            for (long, arg) in file_settings(command) {
                let entry = keys.iter().find(|(table, key, _)| table == name && key == long);
                let (_, _, value) = entry.unwrap_or_else(|| panic!("docs/skytale.example.toml lacks [{name}] {long}"));
                let default: Vec<String> =
                    arg.get_default_values().iter().map(|value| value.to_string_lossy().into_owned()).collect();
                // A setting in force must show the default; one without a default is commented out.
                if let Some(value) = value {
                    let text = match value {
                        toml::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    assert_eq!(default, [text], "[{name}] {long} in docs/skytale.example.toml is not the default");
                }
            }
        }
        for (table, key, _) in &keys {
            let command = root.find_subcommand(table).expect("a server command's table");
            assert!(file_settings(command).any(|(long, _)| long == key), "[{table}] {key} is no flag");
        }
    }

    #[test]
    fn no_server_variable_is_one_the_sdk_or_the_quickstart_reads() {
        const CLIENT_VARIABLES: [&str; 8] = [
            "SKYTALE_RELAY",
            "SKYTALE_API_URL",
            "SKYTALE_API_KEY",
            "SKYTALE_CA_FILE",
            "SKYTALE_DATA_DIR",
            "SKYTALE_LOG",
            "SKYTALE_PYTHON",
            "SKYTALE_BIN",
        ];
        let root = without_environment();
        for name in SERVER_COMMANDS {
            for (long, _) in server_flags::flags(root.find_subcommand(name).expect("a server command")) {
                let variable = env_name(name, long);
                assert!(!CLIENT_VARIABLES.contains(&variable.as_str()), "{variable} is also a client's variable");
            }
        }
    }
}
