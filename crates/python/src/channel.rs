//! `Channel`: one MLS group, seen from one member.

use pyo3::prelude::*;

use crate::blocking::detached;
use crate::messages::MessageIterator;
use crate::seconds;
use crate::sync::SyncRequest;

/// An encrypted channel. Every method may be called from any thread, including while another thread iterates
/// `messages()`.
#[pyclass(module = "skytale_sdk._native", frozen)]
pub struct Channel {
    inner: skytale_client::Channel,
}

impl From<skytale_client::Channel> for Channel {
    fn from(inner: skytale_client::Channel) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl Channel {
    /// The channel name, `org/namespace/service`.
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        detached(py, || Ok(self.inner.name()))
    }

    /// The MLS epoch this member is at.
    #[getter]
    fn epoch(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || Ok(self.inner.epoch()))
    }

    /// Raises the channel's `ChannelError` if it can no longer be used (removed, left, or gone from the relay).
    fn ensure_active(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.ensure_active())
    }

    fn add_member(&self, py: Python<'_>, key_package: &[u8]) -> PyResult<Vec<u8>> {
        detached(py, || self.inner.add_member(key_package))
    }

    /// Adds the owners of all `key_packages` in one commit (one epoch change); every one of them joins with the
    /// single Welcome returned.
    fn add_members(&self, py: Python<'_>, key_packages: Vec<Vec<u8>>) -> PyResult<Vec<u8>> {
        detached(py, || self.inner.add_members(&key_packages))
    }

    fn remove_member(&self, py: Python<'_>, identity: &[u8]) -> PyResult<()> {
        detached(py, || self.inner.remove_member(identity))
    }

    fn leave(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.leave())
    }

    fn members(&self, py: Python<'_>) -> PyResult<Vec<Vec<u8>>> {
        detached(py, || self.inner.members())
    }

    fn rotate_key(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.rotate_key())
    }

    fn send(&self, py: Python<'_>, payload: &[u8]) -> PyResult<()> {
        detached(py, || self.inner.send(payload))
    }

    /// Sends every payload, in order, with one state write and the publishes pipelined on the stream; returns
    /// once the relay durably stored all of them. An oversized payload fails the call before anything is sent;
    /// a later failure's message says how many of the batch were stored.
    fn send_many(&self, py: Python<'_>, payloads: Vec<Vec<u8>>) -> PyResult<()> {
        detached(py, || self.inner.send_many(&payloads))
    }

    /// An iterator over incoming messages; `timeout` (seconds) bounds each wait and is the only way it raises
    /// `TimeoutError`.
    #[pyo3(signature = (with_meta=false, timeout=None))]
    fn messages(&self, with_meta: bool, timeout: Option<f64>) -> PyResult<MessageIterator> {
        let timeout = timeout.map(|t| seconds::to_duration("timeout", t)).transpose()?;
        Ok(MessageIterator::new(self.inner.clone(), with_meta, timeout))
    }

    /// Waits until every message the relay held for this channel when `sync` was called is applied here (in
    /// the inbox `messages()` reads, or for this member's own messages, in the group state). Returns `False` if
    /// `timeout` (seconds) passed first or the channel or client was closed meanwhile.
    #[pyo3(signature = (timeout=None))]
    fn sync(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = timeout.map(|t| seconds::to_duration("timeout", t)).transpose()?;
        detached(py, || self.inner.sync(timeout))
    }

    /// Sends `sync()`'s head query now and returns at once; `SyncRequest.wait(timeout)` finishes it. The head
    /// covers what the relay held when this was called.
    fn start_sync(&self, py: Python<'_>) -> PyResult<SyncRequest> {
        detached(py, || Ok(SyncRequest::from(self.inner.start_sync())))
    }

    /// Sequence number of the newest message delivered to this member's inbox, already read from `messages()`
    /// or still waiting (0: none). After `sync()` returned `True`, a reader has every message the relay held at
    /// that call once it has read the one with this seq.
    #[getter]
    fn delivered_seq(&self, py: Python<'_>) -> PyResult<u64> {
        detached(py, || self.inner.delivered_seq())
    }

    /// Stops this channel's deliveries in this process: running iterators end with `StopIteration`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || {
            self.inner.close();
            Ok(())
        })
    }
}
