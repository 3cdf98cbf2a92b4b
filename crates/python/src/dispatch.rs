//! Calls into Python made for the client's own threads: forwarded log records and connection callbacks.
//!
//! A runtime thread must never wait for the GIL: the Python thread holding it may be waiting for that very thread
//! (a call blocked on a lock the runtime thread holds). So runtime threads queue the call here and go on; one
//! thread, started when a call is queued and ending as soon as the queue is empty, takes the GIL and runs the
//! calls in order. `close()` waits for it ([`wait_idle`]), so a closed client leaves no thread behind.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::blocking;

type Call = Box<dyn FnOnce(Python<'_>) + Send>;

/// Most calls [`call_soon_bounded`] lets wait: past it, such calls are refused rather than let memory grow.
const BOUNDED_QUEUE: usize = 10_000;

struct Queue {
    calls: VecDeque<Call>,
    /// The thread running the queue, while it runs.
    runner: Option<JoinHandle<()>>,
    running: bool,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue { calls: VecDeque::new(), runner: None, running: false });
static IDLE: Condvar = Condvar::new();

thread_local! {
    static IS_RUNNER: Cell<bool> = const { Cell::new(false) };
}

fn queue() -> MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues `call` to run with the GIL, after every call queued before it.
pub fn call_soon(call: impl FnOnce(Python<'_>) + Send + 'static) {
    push(queue(), Box::new(call));
}

/// As [`call_soon`], unless [`BOUNDED_QUEUE`] calls are waiting already: then `call` is dropped and `false` returned.
pub fn call_soon_bounded(call: impl FnOnce(Python<'_>) + Send + 'static) -> bool {
    let queue = queue();
    if queue.calls.len() >= BOUNDED_QUEUE {
        return false;
    }
    push(queue, Box::new(call));
    true
}

fn push(mut queue: MutexGuard<'static, Queue>, call: Call) {
    queue.calls.push_back(call);
    if queue.running {
        return;
    }
    // The previous runner has emptied the queue and is ending; it is not waited for here, only by `wait_idle`.
    queue.runner.take();
    // Should the thread not start, the calls stay queued and the next call queued tries again.
    if let Ok(runner) = thread::Builder::new().name("skytale-python-calls".into()).spawn(run) {
        queue.runner = Some(runner);
        queue.running = true;
    }
}

fn run() {
    IS_RUNNER.set(true);
    loop {
        let calls: Vec<Call> = {
            let mut queue = queue();
            if queue.calls.is_empty() {
                queue.running = false;
                IDLE.notify_all();
                return;
            }
            queue.calls.drain(..).collect()
        };
        blocking::attach_from_native(|py| {
            for call in calls {
                // A panic costs that call, not the ones after it (nor a runner stuck as `running`).
                let _ = catch_unwind(AssertUnwindSafe(|| call(py)));
            }
        });
    }
}

/// Waits, at most `timeout`, until every queued call has run and the thread that ran them has ended. Does not
/// wait when called from one of those calls (a callback that closes its client), nor once the interpreter is
/// exiting (the calls can no longer run).
pub fn wait_idle(timeout: Duration) {
    if IS_RUNNER.get() || blocking::interpreter_exiting_began() {
        return;
    }
    let deadline = Instant::now() + timeout;
    let mut queue = queue();
    while queue.running {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { return };
        queue = IDLE.wait_timeout(queue, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    let runner = queue.runner.take();
    drop(queue);
    if let Some(runner) = runner {
        let _ = runner.join();
    }
}
