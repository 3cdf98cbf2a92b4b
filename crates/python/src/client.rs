//! `SkytaleClient`: one identity, one data_dir, one stream to the relay.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyType};
use skytale_client::{Client, ClientConfig};

use crate::blocking::detached;
use crate::channel::Channel;
use crate::{dispatch, logging, seconds};

/// How long `close` waits for the calls into Python the client queued (log records, connection callbacks).
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// The entry point: connects to a relay and creates, joins or reopens encrypted channels. `endpoint` is one relay
/// URL or several separated by commas (failover, see docs/client.md).
#[pyclass(module = "skytale_sdk._native", frozen)]
pub struct SkytaleClient {
    inner: Client,
}

#[pymethods]
impl SkytaleClient {
    #[new]
    #[pyo3(signature = (endpoint, data_dir, identity, api_key=None, api_url=None))]
    fn new(
        py: Python<'_>,
        endpoint: String,
        data_dir: PathBuf,
        identity: &Bound<'_, PyAny>,
        api_key: Option<String>,
        api_url: Option<String>,
    ) -> PyResult<Self> {
        let identity = identity_bytes(identity)?;
        // Logging is typically configured before a client is made: pick up its levels.
        logging::refresh_threshold(py)?;
        let config = ClientConfig { endpoint, data_dir, identity, api_key, api_url };
        let inner = detached(py, || Client::connect(config))?;
        Ok(Self { inner })
    }

    /// This client's identity bytes.
    #[getter]
    fn identity(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        detached(py, || Ok(self.inner.identity()))
    }

    /// Whether the client has a stream to the relay right now (it reconnects on its own when not).
    #[getter]
    fn connected(&self, py: Python<'_>) -> PyResult<bool> {
        detached(py, || Ok(self.inner.is_connected()))
    }

    /// Calls `callback(connected)` each time the stream to the relay comes up or goes down, in place of the
    /// previous callback; `None` removes it. The call comes from a thread of the SDK's own, in order.
    fn on_connection_change(&self, py: Python<'_>, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let notify = callback.map(|callback| {
            let callback = Arc::new(callback);
            Box::new(move |connected: bool| {
                let callback = callback.clone();
                dispatch::call_soon(move |py| {
                    if let Err(error) = callback.call1(py, (connected,)) {
                        error.write_unraisable(py, Some(callback.bind(py)));
                    }
                });
            }) as Box<dyn Fn(bool) + Send>
        });
        detached(py, || self.inner.on_connection_change(notify))
    }

    /// The relay's limit on one encrypted message, in bytes; the largest payload `send` accepts is smaller by the
    /// encryption's overhead.
    #[getter]
    fn max_payload(&self, py: Python<'_>) -> PyResult<usize> {
        detached(py, || Ok(self.inner.max_payload()))
    }

    fn create_channel(&self, py: Python<'_>, name: &str) -> PyResult<Channel> {
        detached(py, || self.inner.create_channel(name)).map(Channel::from)
    }

    /// Creates an invite token (`skt_inv_...`) for a channel this client holds, redeemable `max_uses` times
    /// within `ttl` seconds. This client then admits the joiners that redeem it, in the background.
    #[pyo3(signature = (channel, max_uses=1, ttl=3600))]
    fn invite(&self, py: Python<'_>, channel: &str, max_uses: u32, ttl: u64) -> PyResult<String> {
        detached(py, || self.inner.invite(channel, max_uses, Duration::from_secs(ttl)))
    }

    /// Joins `channel` with an invite token; waits up to `timeout` seconds for the owner to admit this client.
    #[pyo3(signature = (channel, token, timeout=60.0))]
    fn join_with_token(&self, py: Python<'_>, channel: &str, token: &str, timeout: f64) -> PyResult<Channel> {
        let timeout = seconds::to_duration("timeout", timeout)?;
        detached(py, || self.inner.join_with_token(channel, token, timeout)).map(Channel::from)
    }

    fn generate_key_package(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        detached(py, || self.inner.generate_key_package())
    }

    fn join_channel(&self, py: Python<'_>, name: &str, welcome: &[u8]) -> PyResult<Channel> {
        detached(py, || self.inner.join_channel(name, welcome)).map(Channel::from)
    }

    fn channels(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        detached(py, || Ok(self.inner.channels()))
    }

    fn open_channel(&self, py: Python<'_>, name: &str) -> PyResult<Channel> {
        detached(py, || self.inner.open_channel(name)).map(Channel::from)
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || {
            self.inner.close();
            // What the client's threads queued for Python (log records, callbacks) runs before close returns.
            dispatch::wait_idle(CLOSE_FLUSH);
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc_value=None, _traceback=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.close(py)
    }
}

/// An identity as bytes, or as str (UTF-8), as the manager takes it.
fn identity_bytes(identity: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = identity.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    if let Ok(text) = identity.cast::<PyString>() {
        return Ok(text.to_cow()?.as_bytes().to_vec());
    }
    let type_name = identity.get_type().name()?;
    Err(PyTypeError::new_err(format!("identity must be bytes or str, not {type_name}")))
}
