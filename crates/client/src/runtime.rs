//! The running client behind every `Client` and `Channel` handle: its tokio runtime, the shared [`Context`]
//! and the table of open channels.
//!
//! Every public method of the handles blocks on this runtime ([`ClientCore::block_on`]), so callers (the Python
//! bindings) can use them from any thread without an event loop. Ownership runs one way: the core owns the
//! context and the channel table, a channel's state holds only the context, and no task or state holds the core.
//! Dropping the last handle therefore drops the core, which stops the runtime; its tasks, the channels and the
//! store go with it.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use skytale_dir_lock::DirLock;

use crate::context::Context;
use crate::error::Error;
use crate::interrupt;
use crate::state::ChannelTable;

/// How long `close` waits for blocking calls still running on other threads (they were all woken by the close)
/// and then for the runtime's tasks, before it stops waiting.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The client's own runtime: two worker threads named `skytale-client`, with I/O and timers.
pub(crate) fn new_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("skytale-client")
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start runtime: {e}")))
}

/// Runs `future` to completion on `handle` from a plain thread, unless this thread's installed check (see
/// `interrupt`) stops it first.
pub(crate) fn block_on_interruptible<T>(
    handle: &tokio::runtime::Handle,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match interrupt::installed() {
        None => handle.block_on(future),
        Some(check) => handle.block_on(async {
            tokio::select! {
                biased;
                outcome = future => outcome,
                () = interrupt::requested(check) => Err(interrupt::interrupted()),
            }
        }),
    }
}

/// One client's runtime, context and channel table, shared by all its handles.
pub(crate) struct ClientCore {
    /// The data_dir's lock, released by `close` (or when the core is dropped).
    data_dir_lock: Mutex<Option<DirLock>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    calls: Calls,
    pub ctx: Arc<Context>,
    /// The task reporting connection changes to the user's callback, if one is set.
    connection_watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The open channels by name. Only the core holds it (see `ChannelTable`).
    pub channels: ChannelTable,
}

impl ClientCore {
    /// The core of a client whose relay link (in `ctx`) was connected on `runtime`, holding its data_dir's lock.
    pub fn new(runtime: tokio::runtime::Runtime, ctx: Arc<Context>, data_dir_lock: DirLock) -> Self {
        let handle = runtime.handle().clone();
        Self {
            data_dir_lock: Mutex::new(Some(data_dir_lock)),
            runtime: Mutex::new(Some(runtime)),
            handle,
            calls: Calls::default(),
            ctx,
            connection_watch: Mutex::new(None),
            channels: ChannelTable::default(),
        }
    }

    /// Runs `future` to completion on the client's runtime from a plain (non-async) thread.
    pub fn block_on<T>(&self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime(
                "blocking client call made from inside an async runtime; call it from a plain thread".into(),
            ));
        }
        let _call = self.calls.enter().ok_or_else(|| Error::Runtime("client is closed".into()))?;
        block_on_interruptible(&self.handle, future)
    }

    /// Starts `future` on the client's runtime without waiting for it.
    pub fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        self.handle.spawn(future)
    }

    /// Runs `watch` (on the runtime) in place of the previous connection watch, which is stopped; `None` stops it.
    pub fn replace_connection_watch(&self, watch: Option<impl Future<Output = ()> + Send + 'static>) {
        let mut current = self.connection_watch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(previous) = current.take() {
            previous.abort();
        }
        *current = watch.map(|watch| self.handle.spawn(watch));
    }

    /// Whether `close` has begun: calls are refused from then on.
    pub fn is_closing(&self) -> bool {
        self.calls.state.lock().unwrap_or_else(|p| p.into_inner()).closing
    }

    /// Wakes every waiter, lets in-flight calls return, then stops the runtime and joins its threads.
    pub fn close(&self) {
        self.ctx.closed.send_replace(true);
        self.ctx.relay.shutdown();
        self.calls.close(CLOSE_GRACE);
        if let Some(runtime) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Joining threads is not allowed from async code; let them wind down on their own.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(CLOSE_GRACE);
            }
        }
        self.ctx.store.stop_checkpoints();
        // A closed client keeps no channel: `channels()` is empty and the groups are freed while handles live.
        self.channels.clear();
        // Nothing of this client writes to the data_dir any more: another client may open it.
        self.data_dir_lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Drop for ClientCore {
    fn drop(&mut self) {
        self.ctx.relay.shutdown();
        if let Some(runtime) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            // Never blocks, so dropping the last handle is safe from any context.
            runtime.shutdown_background();
        }
    }
}

/// Blocking calls in flight on the runtime. `close` must not shut the runtime down under a running `block_on`
/// (its timers would fail inside the caller's thread), so it waits for them to drain, and no call starts once
/// closing began.
#[derive(Default)]
struct Calls {
    state: Mutex<CallState>,
    drained: Condvar,
}

#[derive(Default)]
struct CallState {
    active: usize,
    closing: bool,
}

/// Marks one blocking call as finished when dropped (also on unwind).
struct CallGuard<'a>(&'a Calls);

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.active -= 1;
        if state.active == 0 {
            self.0.drained.notify_all();
        }
    }
}

impl Calls {
    /// Registers a call, or `None` once the client is closing.
    fn enter(&self) -> Option<CallGuard<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.closing {
            return None;
        }
        state.active += 1;
        Some(CallGuard(self))
    }

    /// Refuses new calls, then waits up to `grace` for the running ones to return.
    fn close(&self, grace: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closing = true;
        let deadline = Instant::now() + grace;
        while state.active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.drained.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}
