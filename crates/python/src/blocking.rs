//! Running client calls from Python: off the GIL, and with panics contained.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::{self, ThreadId};

use pyo3::prelude::*;
use skytale_client::Error;

use crate::errors;

/// Set by [`interpreter_exiting`] from an `atexit` hook; see [`detached`] for why.
static EXITING: AtomicBool = AtomicBool::new(false);
/// The thread that ran the `atexit` hooks (the one finalizing the interpreter): it keeps working normally.
static EXIT_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Registered with `atexit` when the module is imported, so it runs after every `atexit` hook registered later
/// (e.g. the manager's, which closes and joins its listener threads) and before the interpreter finalizes.
#[pyfunction(name = "_interpreter_exiting")]
pub fn interpreter_exiting() {
    let _ = EXIT_THREAD.set(thread::current().id());
    EXITING.store(true, Ordering::SeqCst);
}

/// Runs `call` with the GIL released and converts its outcome for Python.
///
/// Client calls block on network round trips and disk writes; holding the GIL meanwhile would freeze every other
/// Python thread (including the one that would read the reply). A panic inside the client is caught here and
/// raised as `SkytaleError("runtime error: ...")`, so it never unwinds into the interpreter.
///
/// A daemon thread still inside a call when the interpreter exits must never take the GIL back: CPython (before
/// 3.14) ends such a thread with `pthread_exit`, whose forced unwind through Rust frames aborts the process
/// ("FATAL: exception not rethrown"). Once the `atexit` hooks have run, such a thread parks for good instead
/// (as CPython 3.14 itself does), and the process exits normally around it.
pub fn detached<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, Error> + Send,
{
    let outcome = py.detach(|| {
        let outcome = catch_unwind(AssertUnwindSafe(call));
        if EXITING.load(Ordering::SeqCst) && EXIT_THREAD.get() != Some(&thread::current().id()) {
            loop {
                thread::park();
            }
        }
        outcome
    });
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(errors::from_client(py, &error)),
        Err(panic) => Err(errors::from_panic(py, panic.as_ref())),
    }
}
