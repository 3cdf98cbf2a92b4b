//! Receiving: the blocking `MessageIterator` and the `Message` it yields with `with_meta=True`.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::types::PyList;
use skytale_client::Received;

use crate::blocking::detached;

/// How long one wait lasts before the iterator checks for pending signals. Python runs signal handlers (e.g. the
/// one raising `KeyboardInterrupt`) only on a thread that holds the GIL, so an unbounded native wait would make
/// Ctrl-C hang until the next message.
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Blocking iterator over a channel's incoming messages, in channel order, excluding the member's own.
///
/// Ends (`StopIteration`) when the channel or client is closed; raises the channel's error (e.g. `ChannelError`
/// once this member was removed); raises `TimeoutError` only when created with a timeout.
#[pyclass(module = "skytale_sdk._native", frozen)]
pub struct MessageIterator {
    channel: skytale_client::Channel,
    with_meta: bool,
    timeout: Option<Duration>,
}

impl MessageIterator {
    pub fn new(channel: skytale_client::Channel, with_meta: bool, timeout: Option<Duration>) -> Self {
        Self { channel, with_meta, timeout }
    }

    fn to_python(&self, py: Python<'_>, message: skytale_client::Message) -> PyResult<Py<PyAny>> {
        if self.with_meta {
            Ok(Py::new(py, Message::from_client(py, message))?.into_any())
        } else {
            Ok(PyBytes::new(py, &message.payload).into_any().unbind())
        }
    }
}

#[pymethods]
impl MessageIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(self.wait_for_messages(py, 1)?.and_then(|mut items| items.pop()))
    }

    /// Waits like `next()` for the next message, then returns it with up to `max - 1` more that are already
    /// waiting, taken in one store transaction: a list, in order. `[]` once the iterator has ended. Raises what
    /// `next()` raises (an error comes on its own, after the messages before it).
    #[pyo3(signature = (max=256))]
    fn next_batch<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Bound<'py, PyList>> {
        let items = self.wait_for_messages(py, max)?.unwrap_or_default();
        PyList::new(py, items)
    }
}

impl MessageIterator {
    /// Up to `max` messages once at least one is there (converted for Python), or `None` once ended.
    fn wait_for_messages(&self, py: Python<'_>, max: usize) -> PyResult<Option<Vec<Py<PyAny>>>> {
        let deadline = self.timeout.map(|timeout| Instant::now() + timeout);
        loop {
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()).min(SIGNAL_CHECK_INTERVAL),
                None => SIGNAL_CHECK_INTERVAL,
            };
            match detached(py, || self.channel.recv_many(max, Some(wait)))? {
                Received::Messages(messages) => {
                    return messages
                        .into_iter()
                        .map(|message| self.to_python(py, message))
                        .collect::<PyResult<_>>()
                        .map(Some);
                }
                Received::Closed => return Ok(None),
                Received::Timeout => {
                    py.check_signals()?;
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return Err(PyTimeoutError::new_err("no message arrived within the timeout"));
                    }
                }
            }
        }
    }
}

/// A received message with its metadata.
#[pyclass(module = "skytale_sdk._native", frozen)]
pub struct Message {
    /// The decrypted payload.
    #[pyo3(get)]
    payload: Py<PyBytes>,
    /// The sender's identity bytes.
    #[pyo3(get)]
    sender: Py<PyBytes>,
    /// The channel sequence number the relay assigned (the same for every member).
    #[pyo3(get)]
    seq: u64,
    /// The MLS epoch the message was sent in.
    #[pyo3(get)]
    epoch: u64,
    /// When the relay stored the message, in seconds since the Unix epoch (`None` if the relay did not say).
    #[pyo3(get)]
    timestamp: Option<f64>,
}

impl Message {
    fn from_client(py: Python<'_>, message: skytale_client::Message) -> Self {
        Self {
            payload: PyBytes::new(py, &message.payload).unbind(),
            sender: PyBytes::new(py, &message.sender).unbind(),
            seq: message.seq,
            epoch: message.epoch,
            timestamp: message.stored_at_ms.map(|ms| ms as f64 / 1000.0),
        }
    }
}

#[pymethods]
impl Message {
    /// `bytes(message)` is the payload, as for the plain iterator.
    fn __bytes__(&self, py: Python<'_>) -> Py<PyBytes> {
        self.payload.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Message(seq={}, epoch={}, sender={:?}, payload={} bytes)",
            self.seq,
            self.epoch,
            String::from_utf8_lossy(self.sender.as_bytes(py)),
            self.payload.as_bytes(py).len()
        )
    }
}
