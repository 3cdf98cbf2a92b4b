//! The log on stderr: `RUST_LOG` filters it (default `info`); `--log-format` picks text for people or JSON for
//! log collectors. Spans carry the context of a line (the relay's `stream` span: `stream`, `account`, `org`); in
//! JSON they are the `spans` list, outermost first, and the event's own fields (`message`, `channel`, ...) sit at
//! the top level of the object.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, as people read it; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Sends the log to stderr in `format`, from now on.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        // Colours only for a terminal: escape codes in a log file are noise.
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().flatten_event(true).with_current_span(false).with_span_list(true).init(),
    }
}
