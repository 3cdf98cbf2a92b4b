//! Running client calls from Python: off the GIL, and with panics contained.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use skytale_client::Error;

use crate::errors;

/// Runs `call` with the GIL released and converts its outcome for Python.
///
/// Client calls block on network round trips and disk writes; holding the GIL meanwhile would freeze every other
/// Python thread (including the one that would read the reply). A panic inside the client is caught here and
/// raised as `SkytaleError("runtime error: ...")`, so it never unwinds into the interpreter.
pub fn detached<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, Error> + Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(call))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(errors::from_client(py, &error)),
        Err(panic) => Err(errors::from_panic(py, panic.as_ref())),
    }
}
