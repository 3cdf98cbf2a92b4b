//! Running client calls from Python: off the GIL, and with panics contained.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, ThreadId};

use pyo3::prelude::*;
use skytale_client::Error;

use crate::errors;

/// Runs `call` with the GIL released and converts its outcome for Python. On the main thread, a signal handler
/// that raises (Ctrl-C) interrupts the call within 50 ms, and its exception is raised instead.
///
/// Client calls block on network round trips and disk writes; holding the GIL meanwhile would freeze every other
/// Python thread (including the one that would read the reply). A panic inside the client is caught here and
/// raised as `SkytaleError("runtime error: ...")`, so it never unwinds into the interpreter.
///
/// The GIL is only taken back through [`ExitGate`], which parks the thread for good once the interpreter exits.
pub fn detached<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, Error> + Send,
{
    let on_main_thread = MAIN_THREAD.get() == Some(&thread::current().id());
    let (outcome, reacquiring) = py.detach(|| {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if on_main_thread {
                skytale_client::while_checking(signal_handler_raised, call)
            } else {
                call()
            }
        }));
        (outcome, EXIT_GATE.pass_or_park())
    });
    // The GIL is held again.
    drop(reacquiring);
    // The call was cut short by a signal handler's exception (Ctrl-C's KeyboardInterrupt): raise that.
    if let Some(error) = SIGNAL_HANDLER_ERROR.with_borrow_mut(Option::take) {
        return Err(error);
    }
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(errors::from_client(py, &error)),
        Err(panic) => Err(errors::from_panic(py, panic.as_ref())),
    }
}

/// Runs `call` with the GIL on a thread Python did not start, through [`ExitGate`]: once the interpreter exits,
/// the thread parks for good instead.
pub fn attach_from_native<T>(call: impl FnOnce(Python<'_>) -> T) -> T {
    let reacquiring = EXIT_GATE.pass_or_park();
    Python::attach(|py| {
        drop(reacquiring);
        call(py)
    })
}

/// Whether the interpreter is exiting: threads Python did not start can no longer take the GIL.
pub fn interpreter_exiting_began() -> bool {
    EXIT_GATE.is_closed()
}

/// The thread Python runs signal handlers on, once known (see [`record_main_thread`]).
static MAIN_THREAD: OnceLock<ThreadId> = OnceLock::new();

thread_local! {
    /// The exception a signal handler raised during a blocking call of this thread, to be raised in its place.
    static SIGNAL_HANDLER_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Records the main thread, if the module is imported on it. Python runs signal handlers (KeyboardInterrupt for
/// Ctrl-C) only there, so only its blocking calls check for them; other threads never take the GIL back
/// mid-call, which they must not do while the interpreter finalizes (see [`ExitGate`]).
pub fn record_main_thread(py: Python<'_>) -> PyResult<()> {
    let threading = py.import("threading")?;
    if threading.call_method0("current_thread")?.is(&threading.call_method0("main_thread")?) {
        let _ = MAIN_THREAD.set(thread::current().id());
    }
    Ok(())
}

/// Runs Python's pending signal handlers, with the GIL taken back for the moment; `true` if one raised, which
/// interrupts the blocking call (`skytale_client::while_checking`).
fn signal_handler_raised() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(error) => {
            SIGNAL_HANDLER_ERROR.with_borrow_mut(|pending| *pending = Some(error));
            true
        }
    })
}

/// Registered with `atexit` when the module is imported, so it runs after every `atexit` hook registered later
/// (e.g. the manager's, which closes and joins its listener threads) and before the interpreter finalizes.
#[pyfunction(name = "_interpreter_exiting")]
pub fn interpreter_exiting(py: Python<'_>) {
    py.detach(|| EXIT_GATE.close());
}

/// Keeps daemon threads from taking the GIL back while the interpreter finalizes.
///
/// CPython (before 3.14) ends a thread that asks for the GIL during finalization with `pthread_exit`, whose
/// forced unwind through Rust frames aborts the process ("FATAL: exception not rethrown"). So a thread returning
/// from a client call passes this gate first: once it is closed, the thread parks for good instead (as CPython
/// 3.14 itself does) and the process exits normally around it.
///
/// Checking a flag is not enough: a thread that saw the gate open may still be waiting for the GIL when
/// finalization starts. So every thread between the gate and the GIL is counted, and closing the gate waits,
/// with the GIL released, until each of them has the GIL back.
struct ExitGate {
    state: Mutex<GateState>,
    all_through: Condvar,
}

struct GateState {
    /// Set once the `atexit` hooks are done, by the thread finalizing the interpreter (which keeps going).
    closed_by: Option<ThreadId>,
    /// Threads past the gate that have not taken the GIL back yet.
    reacquiring: usize,
}

/// Proof that this thread passed the gate; dropped once it holds the GIL again.
#[must_use]
struct Reacquiring;

static EXIT_GATE: ExitGate =
    ExitGate { state: Mutex::new(GateState { closed_by: None, reacquiring: 0 }), all_through: Condvar::new() };

impl ExitGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pass_or_park(&self) -> Reacquiring {
        let mut state = self.lock();
        match state.closed_by {
            Some(finalizer) if finalizer != thread::current().id() => {
                drop(state);
                loop {
                    thread::park();
                }
            }
            _ => {
                state.reacquiring += 1;
                Reacquiring
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed_by.is_some()
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed_by.get_or_insert(thread::current().id());
        while state.reacquiring > 0 {
            state = self.all_through.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Reacquiring {
    fn drop(&mut self) {
        EXIT_GATE.lock().reacquiring -= 1;
        EXIT_GATE.all_through.notify_all();
    }
}
