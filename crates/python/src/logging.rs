//! The client's `tracing` events, forwarded to Python's `logging`.
//!
//! Each event goes to the logger named after its Rust module under `skytale_sdk.native`: an event of
//! `skytale_client::transport::link` to `skytale_sdk.native.skytale_client.transport.link`, so `logging`
//! configuration (levels, handlers, filters) applies to it as to any Python logger. The record carries the Rust
//! file and line, and the event's fields after its message (`relay link lost reason=...`).
//!
//! The GIL is never taken for an event Python would not emit: the lowest level any logger under
//! `skytale_sdk.native` would emit is read from `logging` (when the module loads, when a client starts, and at most
//! once a second while records are forwarded) and kept as `tracing`'s own filter, so an event below it costs a comparison.
//! Events above it are formatted where they happen and handed to Python by [`dispatch`].

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::dispatch;

/// The parent of every logger this module logs to.
const ROOT_LOGGER: &str = "skytale_sdk.native";

/// Python's level for `TRACE` (registered with `logging` by `skytale_sdk._logging`); the others are Python's own.
const PYTHON_TRACE: u8 = 5;

/// The most verbose level forwarded, as a [`Level`] rank (see [`rank`]); 0 forwards nothing.
static THRESHOLD: AtomicU8 = AtomicU8::new(0);

/// Records dropped because Python's `logging` fell behind; reported by the next record that gets through.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Makes this module the process's `tracing` subscriber, with the threshold `logging` sets now. An embedding
/// program that installed its own subscriber first keeps it.
pub fn install(py: Python<'_>) -> PyResult<()> {
    let subscriber = tracing_subscriber::registry().with(ToPython);
    let _ = tracing::subscriber::set_global_default(subscriber);
    refresh_threshold(py)
}

/// Reads the threshold from `logging` again: the lowest effective level of `skytale_sdk.native` and of every
/// logger configured below it, unless `logging.disable` covers it.
pub fn refresh_threshold(py: Python<'_>) -> PyResult<()> {
    let logging = py.import("logging")?;
    let manager = logging.getattr("Logger")?.getattr("manager")?;
    let mut lowest: u32 =
        logging.call_method1("getLogger", (ROOT_LOGGER,))?.call_method0("getEffectiveLevel")?.extract()?;
    let logger_type = logging.getattr("Logger")?;
    let prefix = format!("{ROOT_LOGGER}.");
    for item in manager.getattr("loggerDict")?.call_method0("items")?.try_iter()? {
        let (name, logger): (String, Bound<'_, PyAny>) = item?.extract()?;
        if name.starts_with(&prefix) && logger.is_instance(&logger_type)? {
            lowest = lowest.min(logger.call_method0("getEffectiveLevel")?.extract()?);
        }
    }
    let disabled_up_to: u32 = manager.getattr("disable")?.extract()?;
    let threshold = if lowest <= disabled_up_to { None } else { level_at_or_above(lowest) };
    let rank = threshold.map_or(0, rank);
    if THRESHOLD.swap(rank, Ordering::Relaxed) != rank {
        // `tracing` caches the most verbose level any subscriber wants (our `max_level_hint`).
        tracing::callsite::rebuild_interest_cache();
    }
    Ok(())
}

/// [`refresh_threshold`], unless it ran less than a second ago: `logging` has no hook to say its configuration
/// changed, and reading it costs a walk over every logger.
fn refresh_threshold_now_and_then(py: Python<'_>) -> PyResult<()> {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
        return Ok(());
    }
    *last = Some(Instant::now());
    refresh_threshold(py)
}

/// The most verbose `tracing` level a Python logger at `level` emits.
fn level_at_or_above(level: u32) -> Option<Level> {
    match level {
        0..=5 => Some(Level::TRACE),
        6..=10 => Some(Level::DEBUG),
        11..=20 => Some(Level::INFO),
        21..=30 => Some(Level::WARN),
        31..=40 => Some(Level::ERROR),
        _ => None,
    }
}

fn python_level(level: Level) -> u8 {
    match level {
        Level::TRACE => PYTHON_TRACE,
        Level::DEBUG => 10,
        Level::INFO => 20,
        Level::WARN => 30,
        Level::ERROR => 40,
    }
}

/// ERROR = 1 ... TRACE = 5: larger is more verbose.
fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn forwarded(level: Level) -> bool {
    rank(level) <= THRESHOLD.load(Ordering::Relaxed)
}

struct ToPython;

impl<S: Subscriber> Layer<S> for ToPython {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The threshold changes at run time: ask `enabled` each time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.is_event() && forwarded(*metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match THRESHOLD.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut text = Text::default();
        event.record(&mut text);
        let record = Record {
            logger: format!("{ROOT_LOGGER}.{}", metadata.target().replace("::", ".")),
            level: python_level(*metadata.level()),
            file: metadata.file().unwrap_or("<unknown>").to_owned(),
            line: metadata.line().unwrap_or(0),
            message: text.finish(),
        };
        if !dispatch::call_soon_bounded(move |py| forward(py, record)) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One event, ready for `logging`.
struct Record {
    logger: String,
    level: u8,
    file: String,
    line: u32,
    message: String,
}

fn forward(py: Python<'_>, record: Record) {
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let notice = Record {
            logger: ROOT_LOGGER.to_owned(),
            level: python_level(Level::WARN),
            file: file!().to_owned(),
            line: line!(),
            message: format!("{dropped} log records were dropped: Python's logging fell behind the client's threads"),
        };
        emit(py, notice);
    }
    emit(py, record);
}

fn emit(py: Python<'_>, record: Record) {
    let emitted = (|| -> PyResult<()> {
        let logger = py.import("logging")?.call_method1("getLogger", (&record.logger,))?;
        if logger.call_method1("isEnabledFor", (record.level,))?.is_truthy()? {
            let args = PyTuple::empty(py);
            let made = (&record.logger, record.level, &record.file, record.line, &record.message, args, py.None());
            let made = logger.call_method1("makeRecord", made)?;
            logger.call_method1("handle", (made,))?;
        }
        refresh_threshold_now_and_then(py)
    })();
    if let Err(error) = emitted {
        error.write_unraisable(py, None);
    }
}

/// An event's message followed by its other fields, as `message key=value ...`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        self.message + &self.fields
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
