//! `SkytaleClient`: one identity, one data_dir, one stream to the relay.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyType;
use skytale_client::{Client, ClientConfig};

use crate::blocking::detached;
use crate::channel::Channel;
use crate::seconds;

/// The entry point: connects to a relay and creates, joins or reopens encrypted channels.
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
        identity: &[u8],
        api_key: Option<String>,
        api_url: Option<String>,
    ) -> PyResult<Self> {
        let config = ClientConfig { endpoint, data_dir, identity: identity.to_vec(), api_key, api_url };
        let inner = detached(py, || Client::connect(config))?;
        Ok(Self { inner })
    }

    /// This client's identity bytes.
    #[getter]
    fn identity(&self, py: Python<'_>) -> PyResult<Vec<u8>> {
        detached(py, || Ok(self.inner.identity()))
    }

    /// The largest payload the relay accepts, in bytes.
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
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}
