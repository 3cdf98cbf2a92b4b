//! The exception hierarchy and the one place where Rust errors become Python exceptions.
//!
//! Every exception is a `SkytaleError`, itself a `RuntimeError` (the reference SDK documents `RuntimeError`, so
//! existing `except RuntimeError` code keeps working). The message keeps the spec's prefix, which the client's
//! `Display` already carries, and `.code` gives a stable machine-readable reason.

use std::any::Any;

use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use skytale_client::Error;

create_exception!(
    skytale_sdk._native,
    SkytaleError,
    PyRuntimeError,
    "Base class of every Skytale error; `.code` names the reason."
);
create_exception!(
    skytale_sdk._native,
    MlsError,
    SkytaleError,
    "MLS protocol failure (bad key package or Welcome, undecryptable message): `MLS engine error: ...`."
);
create_exception!(
    skytale_sdk._native,
    TransportError,
    SkytaleError,
    "The relay is unreachable or the stream failed: `transport error: ...`."
);
create_exception!(
    skytale_sdk._native,
    ChannelError,
    SkytaleError,
    "Invalid channel name (`invalid channel name: ...`) or a channel-state problem (unknown channel, removed, ...)."
);
create_exception!(skytale_sdk._native, AuthError, SkytaleError, "The API key or token was refused: `auth error: ...`.");
create_exception!(skytale_sdk._native, QuotaExceededError, SkytaleError, "The account's quota is exhausted.");
create_exception!(
    skytale_sdk._native,
    DataDirError,
    SkytaleError,
    "The data_dir cannot be used (held by another client, made for another identity): `data_dir error: ...`."
);

/// `.code` of a `SkytaleError` that did not come from the client (a contained panic).
const RUNTIME_CODE: &str = "runtime";

/// Adds the exception classes to the module, each with a class-level `code` so that `.code` also exists on an
/// exception a user raises directly.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes = [
        ("SkytaleError", py.get_type::<SkytaleError>(), RUNTIME_CODE),
        ("MlsError", py.get_type::<MlsError>(), "mls"),
        ("TransportError", py.get_type::<TransportError>(), "transport"),
        ("ChannelError", py.get_type::<ChannelError>(), "channel"),
        ("AuthError", py.get_type::<AuthError>(), "auth"),
        ("QuotaExceededError", py.get_type::<QuotaExceededError>(), "quota"),
        ("DataDirError", py.get_type::<DataDirError>(), "data_dir"),
    ];
    for (name, class, code) in classes {
        class.setattr("code", code)?;
        m.add(name, class)?;
    }
    Ok(())
}

/// Maps a client error to the matching exception class, with the client's message and code.
pub fn from_client(py: Python<'_>, error: &Error) -> PyErr {
    let message = error.to_string();
    let exception = match error {
        Error::InvalidName(_) | Error::Channel(_) => ChannelError::new_err(message),
        Error::Mls(_) => MlsError::new_err(message),
        Error::Transport(_) => TransportError::new_err(message),
        Error::Auth(_) => AuthError::new_err(message),
        Error::Quota(_) => QuotaExceededError::new_err(message),
        Error::DataDir(_) => DataDirError::new_err(message),
        Error::Runtime(_) => SkytaleError::new_err(message),
    };
    with_code(py, exception, error.code())
}

/// Turns a panic caught in the client into a `SkytaleError`, so a bug surfaces as an ordinary exception
/// instead of tearing through the interpreter.
pub fn from_panic(py: Python<'_>, payload: &(dyn Any + Send)) -> PyErr {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    let exception = SkytaleError::new_err(format!("runtime error: internal failure in skytale-client: {detail}"));
    with_code(py, exception, RUNTIME_CODE)
}

fn with_code(py: Python<'_>, exception: PyErr, code: &str) -> PyErr {
    // Setting an attribute on a fresh exception instance cannot fail short of memory exhaustion; if it does, the
    // exception still carries the class-level code and the right type and message.
    let _ = exception.value(py).setattr("code", code);
    exception
}
