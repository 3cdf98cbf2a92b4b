//! Receiving: the blocking `MessageIterator` and the `Message` it yields with `with_meta=True`.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use skytale_client::Recv;

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
        let deadline = self.timeout.map(|timeout| Instant::now() + timeout);
        loop {
            let wait = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()).min(SIGNAL_CHECK_INTERVAL),
                None => SIGNAL_CHECK_INTERVAL,
            };
            match detached(py, || self.channel.recv(Some(wait)))? {
                Recv::Message(message) => return self.to_python(py, message).map(Some),
                Recv::Closed => return Ok(None),
                Recv::Timeout => {
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
}

impl Message {
    fn from_client(py: Python<'_>, message: skytale_client::Message) -> Self {
        Self {
            payload: PyBytes::new(py, &message.payload).unbind(),
            sender: PyBytes::new(py, &message.sender).unbind(),
            seq: message.seq,
            epoch: message.epoch,
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
